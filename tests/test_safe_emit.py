"""Emitted source that cannot be turned against its users: no spec text ever becomes code, hand-
written files are never overwritten without --force, failed builds leave earlier output untouched,
and builds are byte-identical across runs and hash seeds."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from conftest import VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen.cli import main
from resnet_gen.emit import MARKER

HOSTILE = [
    '"""; __import__("os").system("echo pwned"); """',
    "'''; __import__('os').system('echo pwned'); '''",
    '\\""" + __import__(\'os\').popen(\'id\').read() + """\\',
    "end with a backslash \\",
    "{{ jinja }} {% if True %}template{% endif %} {# comment #}",
    "x\nimport os\nos.system('echo pwned')",
    "# not a comment\r\nimport os",
    "résumé — naïve ∑ ≠ 𝔣 \U0001f600",
    "if True: import os",
]


def _shape(source: str) -> str:
    """The module's syntax tree with every string constant blanked: what the code *does*."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree, include_attributes=False)


def _strings(source: str) -> str:
    """All string constants of the module, joined: where spec text is allowed to end up."""
    return "\n".join(
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


@pytest.mark.parametrize("text", HOSTILE, ids=repr)
def test_hostile_text_never_becomes_code(text: str) -> None:
    """The same network with a hostile description, family and reference gives a module whose
    syntax tree differs from the plain one only inside string constants."""
    plain = rg.load_spec("cifar_resnet20", overrides={"description": "plain words", "family": "resnet"})
    flat = " ".join(text.splitlines())  # one-line fields refuse line breaks (tests/bad_specs: text_*)
    hostile = rg.load_spec(
        "cifar_resnet20",
        overrides={
            "description": text,
            "family": flat[:40],
            "reference": {"source": flat[:200], "paper": flat, "params": 269722},
        },
    )
    plain_source = rg.emit(plain)
    hostile_source = rg.emit(hostile, source=f"specs/{text}.yaml")
    assert _shape(hostile_source) == _shape(plain_source)
    assert hostile.description in " ".join(_strings(hostile_source).split())


def test_hostile_file_names_and_overrides_stay_in_comments_and_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spec file name and --set text reach the header; neither can start a line of code."""
    monkeypatch.chdir(tmp_path)
    name = "evil\nimport os\nos.system('echo pwned') #'.yaml"
    (tmp_path / name).write_text("name: evil\nextends: cifar_resnet20\n", encoding="utf-8")
    overrides = ["description=x\nimport os", "head.num_classes=10  # '); import os"]
    argv = ["build", name, "--stdout"]
    for item in overrides:
        argv += ["--set", item]
    main(argv)
    source = capsys.readouterr().out
    # Built with --set, the network is named evil_custom (never its file's own name).
    plain = rg.emit(rg.load_spec("cifar_resnet20", overrides={"name": "evil_custom", "head.num_classes": 10}))
    assert _shape(source) == _shape(plain)
    code_lines = [line for line in source.splitlines() if line.lstrip().startswith(("import ", "os."))]
    assert "import os" not in code_lines and not any(line.startswith("os.") for line in code_lines)


@pytest.mark.parametrize("name", ["torch", "nn", "F", "ResNet", "math", "print", "__init__", "self", "x", "match"])
def test_spec_names_that_would_clash_are_refused_or_harmless(name: str) -> None:
    """A spec name becomes the factory function's name: validation (or else the build) refuses it
    with one line, or the emitted module still imports and builds the same network."""
    try:
        source = rg.emit(rg.load_spec("cifar_resnet20", overrides={"name": name}))
    except rg.SpecError as error:
        (line,) = error.problems
        assert repr(name) in line
        return
    # Imported from its file as a user would (in this process: a fresh interpreter would run the
    # same module code, only paying for another torch import).
    import torch
    from emit_support import import_source

    module = import_source(source, f"emitted_clash_{name.strip('_')}")
    model = getattr(module, name)()
    assert tuple(model(torch.zeros(1, 3, 32, 32)).shape) == (1, 10)


# --- files the build writes ---------------------------------------------------------------------


def _build(*argv: str) -> int:
    try:
        main(["build", *argv])
    except SystemExit as exited:
        return int(exited.code or 0)
    return 0


def test_a_hand_written_file_is_never_overwritten_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cifar_resnet20.py"
    target.write_text("# my own model, with edits\nMODEL = 1\n")
    assert _build("cifar_resnet20", "-o", str(tmp_path)) == 1
    _, err = capsys.readouterr()
    assert target.read_text() == "# my own model, with edits\nMODEL = 1\n"
    assert err.splitlines() == [
        f"error: {target}: exists and was not written by resnet-gen (its first line is not the '# {MARKER}'"
        " marker); not overwriting it, use --force to replace it"
    ]
    assert _build("cifar_resnet20", "-o", str(tmp_path), "--force") == 0
    assert target.read_text(encoding="utf-8").splitlines()[0].startswith(f"# {MARKER}")


def test_a_generated_file_is_replaced_and_an_unchanged_one_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _build("cifar_resnet20", "-o", str(tmp_path)) == 0
    target = tmp_path / "cifar_resnet20.py"
    first = target.read_bytes()
    stamp = target.stat().st_mtime_ns
    assert _build("cifar_resnet20", "-o", str(tmp_path)) == 0
    assert target.stat().st_mtime_ns == stamp  # identical output is not rewritten
    assert "up to date" in capsys.readouterr().out
    target.write_text(f"# {MARKER} 0.0.1. DO NOT EDIT\nold = 1\n")
    assert _build("cifar_resnet20", "-o", str(tmp_path)) == 0
    assert target.read_bytes() == first


def test_a_failed_build_leaves_earlier_output_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "generated"
    assert _build("cifar_resnet20", "-o", str(out)) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: cifar_resnet20\nextends: cifar_resnet20\nstages: [{blocks: 0, width: 16}]\n")
    capsys.readouterr()
    assert _build(str(broken), "-o", str(out)) == 1
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and ": stages[0].blocks: " in err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_an_unusable_output_folder_gives_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "generated"
    blocker.write_text("a file where the folder should be")
    # -o naming a file is a bad output folder (exit 1, as the README's table says), found before any work.
    assert _build("cifar_resnet20", "-o", str(blocker)) == 1
    _, err = capsys.readouterr()
    assert err == f"error: {blocker}: is a file, not a folder; choose another folder with -o\n", err
    assert _build("cifar_resnet20", "-o", str(blocker / "sub")) == 1
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {blocker / 'sub'}: cannot write output here: "), err
    assert blocker.read_text() == "a file where the folder should be"


# --- determinism ----------------------------------------------------------------------------------


def _build_in_subprocess(folder: Path, seed: str) -> dict[str, bytes]:
    subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "build", "resnet50", "cifar_resnet20", "resnext50_32x4d", "-o", str(folder)],
        env=cli_env() | {"PYTHONHASHSEED": seed},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_builds_are_byte_identical_across_runs_and_hash_seeds(tmp_path: Path) -> None:
    first = _build_in_subprocess(tmp_path / "a", "0")
    assert sorted(first) == ["cifar_resnet20.py", "resnet50.py", "resnext50_32x4d.py"]
    assert _build_in_subprocess(tmp_path / "b", "4242") == first
    assert _build_in_subprocess(tmp_path / "c", "random") == first
