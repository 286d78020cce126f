"""What keeps `resnet-gen validate` over the whole catalog fast gives the same results as the
plain way: parents shared within a run, the plan kept from validation, report totals summed from
its rows, and back-end commands imported only when they run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import ALL_SPECS, CLASSIFIER_SPECS, ROOT

import resnet_gen as rg
from resnet_gen.cli import cli, command_table
from resnet_gen.compile import compile_spec
from resnet_gen.errors import SpecError
from resnet_gen.spec.load import ParentCache, resolve


def _outcome(source: Path | str, parents: ParentCache | None = None) -> tuple[str, Any, Any]:
    try:
        mapping = resolve(source, parents=parents)
    except SpecError as exc:
        return ("error", exc.problems, None)
    return ("ok", mapping.data, mapping.locations)


def test_shared_parents_resolve_as_afresh() -> None:
    """The whole catalog through one cache gives what each spec gives on its own."""
    parents = ParentCache()
    for name in ALL_SPECS:
        assert _outcome(name, parents) == _outcome(name), name


def test_shared_parents_are_not_changed_by_their_users() -> None:
    parents = ParentCache()
    first = resolve("resnet50_d", parents=parents)
    first.data["stem"]["width"] = 3
    first.data["stages"][0]["blocks"] = 99
    first.locations.clear()
    second = resolve("resnet50_d", parents=parents)
    assert second.data == resolve("resnet50_d").data
    assert second.locations == resolve("resnet50_d").locations
    assert resolve("resnet50", parents=parents).data == resolve("resnet50").data


def _chain(folder: Path, length: int) -> list[Path]:
    """level0.yaml, and level{n}.yaml extending level{n-1}.yaml up to ``length``."""
    files = [folder / "level0.yaml"]
    files[0].write_text("stages: [{blocks: 1, width: 8}]\n", encoding="utf-8")
    for level in range(1, length + 1):
        path = folder / f"level{level}.yaml"
        path.write_text(f"extends: level{level - 1}.yaml\nhead: {{num_classes: {level}}}\n", encoding="utf-8")
        files.append(path)
    return files


def test_extends_depth_limit_holds_with_shared_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """32 levels of extends are allowed, 33 are not, however much of the chain a run has resolved."""
    monkeypatch.chdir(tmp_path)
    files = _chain(tmp_path, 35)
    assert _outcome(files[32])[0] == "ok"
    assert _outcome(files[33]) == (
        "error",
        ("level1.yaml:1:1: extends: more than 32 levels of extends; flatten the chain",),
        None,
    )
    for warm in ([], [2], [20], [31], [32], [1, 10, 20, 30], list(range(36))):
        parents = ParentCache()
        for level in warm:
            _outcome(files[level], parents)
        for level in (30, 31, 32, 33, 34, 35):
            assert _outcome(files[level], parents) == _outcome(files[level]), (warm, level)


def test_extends_cycle_found_with_shared_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text("stages: [{blocks: 1, width: 8}]\n", encoding="utf-8")
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: c.yaml\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    (tmp_path / "d.yaml").write_text("extends: base.yaml\n", encoding="utf-8")
    parents = ParentCache()
    for name in ("d", "a", "b", "c", "d", "a"):
        assert _outcome(f"{name}.yaml", parents) == _outcome(f"{name}.yaml"), name
    assert "extends goes round in a cycle (a.yaml -> b.yaml -> c.yaml -> a.yaml)" in _outcome("a.yaml")[1][0]


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    """Parsed text is cached by content, so a rewrite is seen even with the same size and time."""
    path = tmp_path / "net.yaml"
    path.write_text("stages: [{blocks: 1, width: 8}]\n", encoding="utf-8")
    stamp = path.stat()
    assert rg.load_spec(path).stages[0].width == 8
    path.write_text("stages: [{blocks: 1, width: 9}]\n", encoding="utf-8")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert rg.load_spec(path).stages[0].width == 9


def test_validate_reads_each_spec_file_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the catalog in one run, each file is read once: the layout check and the loader share
    one resolution, and a spec another extends is not read again as its parent."""
    from resnet_gen.layout_dispatch import load_with_report
    from resnet_gen.spec import load

    reads: list[Path] = []
    real = load.read_yaml_file

    def counting(path: Path, label: str) -> Any:
        reads.append(path.resolve())
        return real(path, label)

    monkeypatch.setattr(load, "read_yaml_file", counting)
    parents = ParentCache()
    for name in ALL_SPECS:
        load_with_report(name, parents=parents)
    assert len(reads) == len(set(reads)) == len(ALL_SPECS)


# load_spec_and_plan is the classifier loader; load_unet_and_plan is held to the same in test_unet_cli.py.
@pytest.mark.parametrize("name", CLASSIFIER_SPECS)
def test_plan_from_validation_and_report_totals(name: str) -> None:
    spec, plan = compile_spec(name)
    assert spec == rg.load_spec(name)
    assert plan == rg.lower(spec)
    report = rg.analyze(plan)
    assert (report.params, report.macs) == (plan.params, plan.macs)
    assert report == rg.analyze(spec)


def _run_in_a_fresh_process(args: list[str], unwanted: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """``resnet-gen ARGS`` in a new interpreter, which fails if it loaded a module named by ``unwanted``."""
    code = (
        "import sys\n"
        "from resnet_gen.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({unwanted!r}))\n"
        "assert not loaded, loaded\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run


def test_validate_imports_no_back_end() -> None:
    back_ends = ("torch", "jinja2", "graphviz", "resnet_gen.emit", "resnet_gen.diagram", "resnet_gen.live")
    report = ("resnet_gen.counting", "resnet_gen.memory_estimate", "resnet_gen.cli.commands")
    run = _run_in_a_fresh_process(["validate", "--catalog", "-v"], back_ends + report)
    lines = run.stdout.splitlines()
    assert len(lines) == len(ALL_SPECS) + 1 and lines[-1] == f"{len(ALL_SPECS)} specs: {len(ALL_SPECS)} valid"


def test_every_back_end_command_loads_on_demand() -> None:
    context = click.Context(cli)
    assert set(command_table.COMMANDS) <= set(cli.list_commands(context))
    for name in command_table.COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
        assert command.help, name


def test_a_classifier_build_imports_no_unet_module(tmp_path: Path) -> None:
    """Each command is imported when it runs, and build asks a spec's layout without the U-Net
    models, so building a classifier loads neither them nor the other commands."""
    _run_in_a_fresh_process(["build", "resnet18", "-o", str(tmp_path)], ("resnet_gen.unet", "resnet_gen.cli.commands"))
    assert (tmp_path / "resnet18.py").is_file()


@pytest.mark.parametrize("command", ["info", "validate"])
def test_info_and_validate_of_a_classifier_import_no_unet_module(command: str) -> None:
    """resnet_gen.layout_dispatch imports a U-Net module only for a U-Net spec."""
    run = _run_in_a_fresh_process(
        [command, "resnet50", "specs/resnet18.yaml"][: 2 if command == "info" else 3], ("resnet_gen.unet",)
    )
    assert ("params: 25,557,032" if command == "info" else "2 specs: 2 valid") in run.stdout


def test_info_of_a_unet_still_finds_its_modules() -> None:
    run = _run_in_a_fresh_process(["info", "unet_tiny"], ("torch",))
    assert "params: 702,499" in run.stdout and "takes skips of 64, 32" in run.stdout


def test_a_plan_lowered_without_its_digest_differs_only_there() -> None:
    """validate lowers with ``digest=False`` (it never shows the sha256): the plan is the same
    network, its totals validate prints included."""
    from dataclasses import replace

    from resnet_gen.compile import compile_resolved

    for name in CLASSIFIER_SPECS:
        _, plan = compile_spec(name)
        _, counted = compile_resolved(resolve(name), digest=False)
        assert counted.spec_hash == "" and len(plan.spec_hash) == 64, name
        assert replace(counted, spec_hash=plan.spec_hash) == plan, name
        assert (counted.params, counted.macs) == (plan.params, plan.macs), name
