"""resnet-gen new: the scaffold validates, equals its parent, refuses to overwrite and bad names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from resnet_gen import analyze, load_spec
from resnet_gen.cli import cli
from resnet_gen.cli.new_command import SCHEMA_COMMENT


@pytest.mark.parametrize("parent", ["resnet50", "seresnet50", "cifar_resnet20", "resnetv2_50x1_bit"])
def test_new_spec_equals_parent(tmp_path: Path, parent: str) -> None:
    result = CliRunner().invoke(cli, ["new", "my_net", "--from", parent, "--dir", str(tmp_path / "specs")])
    assert result.exit_code == 0, result.output
    path = tmp_path / "specs" / "my_net.yaml"
    lines = path.read_text().splitlines()
    assert lines[0] == SCHEMA_COMMENT
    assert f"extends: {parent}" in lines
    child, base = load_spec(path), load_spec(parent)
    assert child.name == "my_net"
    assert analyze(child).params == analyze(base).params
    assert analyze(child).macs == analyze(base).macs
    assert child.model_dump(exclude={"name", "description", "reference"}) == base.model_dump(
        exclude={"name", "description", "reference"}
    )


def test_uncommented_examples_validate(tmp_path: Path) -> None:
    """The commented examples are real fields: uncommenting one gives a valid, different net."""
    CliRunner().invoke(cli, ["new", "wide", "--from", "resnet50", "--dir", str(tmp_path)])
    path = tmp_path / "wide.yaml"
    text = path.read_text()
    for line in ("# block: {attention: se}", "# stem: {type: deep, width: 64}", "# width_factor: 2"):
        assert line in text
        text = text.replace(line, line[2:])
    path.write_text(text)
    spec = load_spec(path)
    assert spec.block.attention is not None and spec.stem.type == "deep" and spec.width_factor == 2
    assert analyze(spec).params > analyze(load_spec("resnet50")).params


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("precious\n")
    result = CliRunner().invoke(cli, ["new", "mine", "--from", "resnet18", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("9net", "not a valid name"),
        ("my-net", "not a valid name"),
        ("nét", "not a valid name"),
        ("class", "is a Python keyword"),
        ("typing", "the generated typing.py would be imported in its place"),
        ("x" * 300, "is 300 characters long"),
    ],
)
def test_new_rejects_bad_names(tmp_path: Path, name: str, reason: str) -> None:
    """What validation would refuse at name: (tests/bad_specs: combo_name_*), refused before writing."""
    result = CliRunner().invoke(cli, ["new", name, "--from", "resnet18", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert reason in result.output and "Invalid value for NAME" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_parent_that_is_no_catalog_name_is_blamed_on_from(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["new", "ok", "--from", "../etc", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "Invalid value for '--from': '../etc' is not a catalog name" in result.output
    assert list(tmp_path.iterdir()) == []


def test_new_rejects_unknown_parent(tmp_path: Path) -> None:
    """Through the real entry point: one located line, exit 1, nothing written."""
    args = [sys.executable, "-m", "resnet_gen", "new", "mine", "--from", "resnet5O", "--dir", str(tmp_path)]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: resnet5O: no spec file and no catalog spec of that name; did you mean 'resnet50'?"
    )
    assert list(tmp_path.iterdir()) == []
