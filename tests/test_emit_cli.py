"""``resnet-gen build`` as a user runs it: files, --set, --stdout, --force, errors, atomic writes,
no torch import, and how fast it answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.cli.build_command import write_generated
from resnet_gen.emit import MARKER
from resnet_gen.emit.source import emit_source


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "resnet-gen"), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True)


def test_build_writes_the_file_then_leaves_it(tmp_path: Path) -> None:
    done = run(["build", "resnet18", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote out/resnet18.py\n"
    written = (tmp_path / "out/resnet18.py").read_text()
    assert written == emit_source(rg.lower(rg.load_spec("resnet18")), "specs/resnet18.yaml")
    again = run(["build", str(catalog.catalog_path("resnet18")), "-o", "out"], tmp_path)
    assert again.returncode == 0 and again.stdout == "up to date out/resnet18.py\n"


def test_set_and_a_spec_file_of_ones_own(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("extends: resnet18\nname: my_variant\ndescription: Mine.\n")
    done = run(["build", "mine.yaml", "-o", "out", "--set", "head.num_classes=10"], tmp_path)
    assert done.returncode == 0, done.stderr
    # An overridden spec is never written under its own name, nor described as its parent.
    assert not (tmp_path / "out/my_variant.py").exists()
    text = (tmp_path / "out/my_variant_custom.py").read_text()
    assert "# spec: my_variant_custom, from 'mine.yaml'" in text
    assert "# overrides: 'head.num_classes=10'" in text
    assert "def my_variant_custom(num_classes: int = 10) -> ResNet:" in text
    assert "my_variant with head.num_classes=10" in text and "Mine." not in text


def test_stdout(tmp_path: Path) -> None:
    done = run(["build", "resnet34", "--stdout"], tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == emit_source(rg.lower(rg.load_spec("resnet34")), "specs/resnet34.yaml")
    assert not list(tmp_path.iterdir())
    two = run(["build", "resnet18", "resnet34", "--stdout"], tmp_path)
    assert two.returncode == 2
    assert two.stderr.count("\n") == 1 and "--stdout writes exactly one spec (got 2)" in two.stderr


def test_refuses_to_overwrite_a_hand_written_file(tmp_path: Path) -> None:
    mine = tmp_path / "out/resnet18.py"
    mine.parent.mkdir()
    mine.write_text("# my own resnet18\n")
    done = run(["build", "resnet18", "-o", "out"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "not written by resnet-gen" in done.stderr and "--force" in done.stderr
    assert mine.read_text() == "# my own resnet18\n"
    forced = run(["build", "resnet18", "-o", "out", "--force"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert mine.read_text().startswith(f"# {MARKER}")


def test_an_older_generated_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out/resnet18.py"
    path.parent.mkdir()
    path.write_text(f"# {MARKER} 0.0.1. DO NOT EDIT\nold = 1\n")
    done = run(["build", "resnet18", "-o", "out"], tmp_path)
    assert done.returncode == 0 and done.stdout == "wrote out/resnet18.py\n"


def test_bad_spec_is_one_located_line_and_others_still_build(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("extends: resnet18\nstages:\n  - {blocks: 0, width: 64}\n")
    done = run(["build", "bad.yaml", "resnet18", "-o", "out"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: bad.yaml:3:") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert (tmp_path / "out/resnet18.py").exists() and not (tmp_path / "out/bad.py").exists()


def test_unwritable_output_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file, not a folder")
    done = run(["build", "resnet18", "-o", "out"], tmp_path)
    assert (
        done.returncode == 1 and done.stderr == "error: out: is a file, not a folder; choose another folder with -o\n"
    )
    inside = run(["build", "resnet18", "-o", "out/sub"], tmp_path)
    assert inside.returncode == 1 and inside.stderr.count("\n") == 1 and "cannot write output here" in inside.stderr
    assert "Traceback" not in done.stderr + inside.stderr


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "resnet18.py"
    old = f"# {MARKER} 0.0.1.\nold = 1\n"
    path.write_text(old)

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(rg.SpecError, match="No space left on device"):
        write_generated(path, "new = 2\n")
    assert path.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["resnet18.py"]


def test_build_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from resnet_gen.cli import main\n"
        f"main(['build', 'resnet50', 'seresnext26t_32x4d', 'resnetv2_50x1_bit', '-o', {str(tmp_path)!r}])\n"
        "loaded = sorted(name for name in sys.modules if name == 'torch' or name.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.glob("*.py"))) == 3
