"""``generated/<name>.py`` is committed for every spec in specs/ and must be exactly what the spec
emits now (regenerated in memory, byte for byte)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ALL_SPECS, ROOT

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.emit.source import emit_source

GENERATED = ROOT / "generated"
INFERENCE = GENERATED / "inference"
HOW = "run 'resnet-gen build' (or make demo) and commit generated/"
HOW_INFERENCE = "run 'resnet-gen build --target inference' (or make demo) and commit generated/inference/"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_committed_source_is_current(name: str) -> None:
    spec = rg.load_spec(name)
    path = GENERATED / f"{spec.name}.py"
    assert path.is_file(), f"generated/{spec.name}.py is missing; {HOW}"
    fresh = emit_source(rg.lower(spec), f"specs/{catalog.catalog_path(name).name}")
    assert path.read_text(encoding="utf-8") == fresh, f"generated/{spec.name}.py is out of date; {HOW}"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_committed_inference_source_is_current(name: str) -> None:
    spec = rg.load_spec(name)
    path = INFERENCE / f"{spec.name}.py"
    assert path.is_file(), f"generated/inference/{spec.name}.py is missing; {HOW_INFERENCE}"
    fresh = emit_source(rg.lower(spec), f"specs/{catalog.catalog_path(name).name}", target="inference")
    assert path.read_text(encoding="utf-8") == fresh, (
        f"generated/inference/{spec.name}.py is out of date; {HOW_INFERENCE}"
    )


@pytest.mark.parametrize("folder", [GENERATED, INFERENCE], ids=["training", "inference"])
def test_no_source_without_a_spec(folder: Path) -> None:
    names = {rg.load_spec(name).name for name in ALL_SPECS}
    orphans = sorted(path.name for path in folder.glob("*.py") if path.stem not in names)
    assert not orphans, f"generated sources of specs that no longer exist: {orphans}"
