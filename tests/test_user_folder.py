"""A user's specs and outputs stay apart from the catalog and the committed files: where ``new``
writes, what commands act on without arguments, how an overridden network is named, and the
small things a newcomer trips over (typos, pipes, unknown families, headers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.cli import cli
from resnet_gen.weights.report import WeightsReport


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "resnet-gen"), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True)


def test_in_a_checkout_the_users_folder_is_not_the_catalog(tmp_path: Path) -> None:
    assert catalog.specs_dir().resolve() == (ROOT / "specs").resolve()
    assert catalog.user_specs_dir(ROOT) == ROOT / "my_specs"
    assert "/my_specs/" in (ROOT / ".gitignore").read_text().splitlines()
    # In any other folder it is ./specs.
    assert catalog.user_specs_dir(tmp_path) == tmp_path / "specs"


def test_new_writes_into_the_users_folder_and_commands_act_on_it(tmp_path: Path) -> None:
    done = run(["new", "my_senet", "--from", "resnet50"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout
        == "wrote specs/my_senet.yaml (extends resnet50); edit it, then: resnet-gen info specs/my_senet.yaml\n"
    )
    assert "my_senet" not in catalog.catalog_names()
    listed = run(["validate"], tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("ok  my_senet ")
    info = run(["info", "specs/my_senet.yaml"], tmp_path)
    assert info.stdout.splitlines()[0] == "my_senet: A variant of resnet50."  # the name once


def test_new_refuses_the_catalog_folder() -> None:
    result = CliRunner().invoke(cli, ["new", "mine", "--from", "resnet18", "--dir", str(catalog.specs_dir())])
    assert result.exit_code == 2 and "is the shipped catalog" in result.output
    assert not (catalog.specs_dir() / "mine.yaml").exists()


@pytest.mark.parametrize("command", ["validate", "build", "diagram", "gallery"])
def test_no_arguments_in_an_empty_folder_writes_nothing(tmp_path: Path, command: str) -> None:
    done = run([command], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--catalog" in done.stderr
    assert not any(tmp_path.iterdir())


def test_an_overridden_network_is_named_and_described_as_such() -> None:
    result = CliRunner().invoke(cli, ["info", "resnet50", "--set", "stages[2].blocks=4"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "resnet50_custom: resnet50 with stages[2].blocks=4"
    assert lines[-1] == "reference: torchvision.models.resnet50: reference numbers do not apply to this override"
    # An override that leaves the numbers alone still checks them.
    same = CliRunner().invoke(cli, ["info", "resnet50", "--set", "head.dropout=0.2"])
    assert same.output.splitlines()[-1] == "reference: torchvision.models.resnet50: params match, GMACs match"
    # The user's own name wins.
    named = CliRunner().invoke(cli, ["info", "resnet50", "--set", "name=mine", "--set", "input.size=160"])
    assert named.output.splitlines()[0] == "mine: resnet50 with name=mine, input.size=160"


def test_a_diagram_of_an_override_is_not_written_under_the_catalog_name(tmp_path: Path) -> None:
    done = run(["diagram", "resnet50", "--format", "dot", "--set", "stages[2].blocks=4"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote out/resnet50_custom.dot\n"
    dot = (tmp_path / "out/resnet50_custom.dot").read_text()
    assert "resnet50 with stages[2].blocks=4" in dot and "torchvision's layout" not in dot


def test_misspelt_commands_get_a_suggestion_even_when_not_loaded() -> None:
    for typo, meant in [("buidl", "build"), ("diagrm", "diagram"), ("inf", "info"), ("galery", "gallery")]:
        done = subprocess.run([str(VENV_BIN / "resnet-gen"), typo], env=cli_env(), capture_output=True, text=True)
        assert done.returncode == 2
        assert f"No such command '{typo}'. Did you mean '{meant}'?" in done.stderr


def test_list_of_an_unknown_family_is_a_usage_error() -> None:
    done = subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "list", "--family", "nope"], env=cli_env(), capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "no shipped spec is in the family 'nope'; the families are " in done.stderr and "resnext" in done.stderr


def test_a_closed_pipe_does_not_stop_the_work(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    names = [f"net{i}" for i in range(6)]
    for name in names:
        (tmp_path / "specs" / f"{name}.yaml").write_text("extends: cifar_resnet20\n")
    script = f"{VENV_BIN / 'resnet-gen'} build -v | head -2"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert done.stdout.splitlines() == ["wrote out/net0.py", "wrote out/net1.py"]
    assert done.stderr == ""
    assert sorted(path.stem for path in (tmp_path / "out").glob("*.py")) == names


def test_printing_a_weights_report_shows_the_summary() -> None:
    report = WeightsReport(
        source="r.pth",
        layout="torchvision/timm resnet",
        loaded=tuple(f"k{i}" for i in range(320)),
        adapted=(("conv1.weight", "input channels 3 -> 1 (summed)"),),
        skipped=(),
        missing=(),
    )
    assert str(report) == report.render()
    assert str(report).splitlines()[2] == "loaded:     320 tensors" and "k17" not in str(report)


def test_python_overrides_are_labelled_as_such() -> None:
    with pytest.raises(rg.SpecError) as caught:
        rg.load_spec("resnet18", overrides={"head.dropout": 1.5})
    assert caught.value.problems == ("overrides: head.dropout: must be a number >= 0 and < 1 (got 1.5)",)
    with pytest.raises(rg.SpecError) as caught:
        rg.load_spec("resnet18", ["head.dropout=1.5"])
    assert caught.value.problems == ("--set: head.dropout: must be a number >= 0 and < 1 (got 1.5)",)


def test_validate_holds_a_users_reference_block_to_its_numbers(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "good.yaml").write_text("extends: resnet18\nreference: {source: mine, params: 11689512}\n")
    (tmp_path / "specs" / "bad.yaml").write_text(
        "extends: resnet18\nreference: {source: mine, params: 12, gmacs: 1.9}\n"
    )
    done = run(["validate"], tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "error: specs/bad.yaml: reference: the network has 11,689,512 params and 1.814 GMACs, which differ in"
        " params (reference 12), GMACs (reference 1.9); fix the spec or its reference block\n"
    )
    (tmp_path / "specs" / "bad.yaml").unlink()
    assert run(["validate"], tmp_path).stdout.startswith("ok  good ")


def test_a_reader_that_stops_early_is_no_failure(tmp_path: Path) -> None:
    """``resnet-gen info resnet50 | true``: the closed pipe ends the run with status 0 and no
    message, whether click or our own writer meets it first."""
    for command in ("info resnet50", "diff resnet50 resnet34", "list"):
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"'{VENV_BIN / 'resnet-gen'}' {command} | true"],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, ""), command
