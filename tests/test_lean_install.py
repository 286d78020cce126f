"""The core commands work on a machine without torch (the main command installs none); what needs
torch says so in one line naming the install command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import resnet_gen as rg
from resnet_gen.emit.source import emit_source
from resnet_gen.torch_check import INSTALL_HINT

# Runs the CLI with torch (and everything that would bring it) unimportable, as in a venv without it.
_NO_TORCH = (
    "import sys\n"
    "for name in ('torch', 'torchvision', 'timm'):\n"
    "    sys.modules[name] = None\n"
    "from resnet_gen.cli import main\n"
    "main(sys.argv[1:])\n"
)


def without_torch(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _NO_TORCH, *args], cwd=cwd, capture_output=True, text=True)


def test_the_users_loop_needs_no_torch(tmp_path: Path) -> None:
    steps = [
        ["new", "mine", "--from", "resnet50"],
        ["validate"],
        ["info", "specs/mine.yaml"],
        ["diff", "resnet50", "specs/mine.yaml"],
        ["diagram", "--format", "dot"],
        ["build"],
        ["build", "--target", "inference"],
        ["gallery"],
        ["list", "--family", "resnext"],
        ["schema", "-o", "resnet-gen.schema.json"],
    ]
    for args in steps:
        done = without_torch(args, tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        assert done.stderr == "", (args, done.stderr)
    # The header names the spec by its path from the project's top folder; this scratch folder
    # has no .git or pyproject.toml, so by its file name.
    assert (tmp_path / "out/mine.py").read_text() == emit_source(
        rg.lower(rg.load_spec(tmp_path / "specs/mine.yaml")), "mine.yaml"
    )
    assert (tmp_path / "out/mine.dot").is_file() and (tmp_path / "out/inference/mine.py").is_file()
    assert (tmp_path / "out/gallery/pages/mine.html").is_file()


@pytest.mark.parametrize(
    "args",
    [["weights", "resnet18", "net.pth"], ["export", "resnet18", "-o", "net.onnx"]],
    ids=["weights", "export"],
)
def test_commands_that_need_torch_say_how_to_install_it(tmp_path: Path, args: list[str]) -> None:
    checkpoint = tmp_path / "net.pth"
    if args[0] == "weights":
        checkpoint.write_bytes(b"")  # the path is checked before torch is looked for
    done = without_torch(args, tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr
        == f"error: resnet-gen {args[0]} needs torch, which is not installed; install it with {INSTALL_HINT}\n"
    )
    assert [path.name for path in tmp_path.iterdir()] == (["net.pth"] if args[0] == "weights" else [])


def test_python_build_without_torch_names_the_install_command() -> None:
    code = (
        "import sys\nsys.modules['torch'] = None\nimport resnet_gen as rg\n"
        "spec = rg.load_spec('resnet18'); rg.analyze(spec); rg.emit(spec)\n"
        "try:\n    rg.build(spec)\nexcept ImportError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"resnet_gen.build (a live torch.nn.Module) needs torch, which is not installed; install it with {INSTALL_HINT}"
    )


def test_the_core_package_does_not_require_torch() -> None:
    """torch is an extra: the main command (make demo) installs the core package only."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [dep for dep in project["dependencies"] if dep.lower().startswith("torch")]
    for extra in ("torch", "export", "dev"):
        assert any(dep.startswith("torch>=") for dep in project["optional-dependencies"][extra]), extra
    makefile = (ROOT / "Makefile").read_text()
    core_rule = makefile.split("$(CORE): pyproject.toml constraints.txt\n", 1)[1].split("\n\n", 1)[0]
    assert "$(PIP) -e .\n" in core_rule and "'.[" not in core_rule
    demo_rule = makefile.split("\ndemo: ", 1)[1].split("\n", 1)[0]
    assert demo_rule == "$(CORE)"
