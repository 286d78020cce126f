"""The catalog and templates ship inside the wheel: an installed package works from any folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_carries_catalog_and_templates_and_runs_elsewhere(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("resnet_gen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "resnet_gen/_data/specs/resnet50.yaml" in names
    assert "resnet_gen/py.typed" in names
    assert any(name.startswith("resnet_gen/_data/templates/") for name in names)

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", "import resnet_gen; print(resnet_gen.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(site))
    info = subprocess.run(
        [sys.executable, "-m", "resnet_gen", "info", "resnet50"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert info.returncode == 0, info.stderr
    assert "params: 25,557,032" in info.stdout
    assert "reference: torchvision.models.resnet50: params match, GMACs match" in info.stdout
