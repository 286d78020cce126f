"""``generated/<name>.py`` is committed for every spec in specs/ and must be exactly what the spec
emits now (regenerated in memory, byte for byte)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ALL_SPECS, ROOT
from layout_support import fresh_source, spec_name

GENERATED = ROOT / "generated"
INFERENCE = GENERATED / "inference"
HOW = "run 'resnet-gen build' (or make demo) and commit generated/"
HOW_INFERENCE = "run 'resnet-gen build --target inference' (or make demo) and commit generated/inference/"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_committed_source_is_current(name: str) -> None:
    spec, fresh = fresh_source(name)
    path = GENERATED / f"{spec}.py"
    assert path.is_file(), f"generated/{spec}.py is missing; {HOW}"
    assert path.read_text(encoding="utf-8") == fresh, f"generated/{spec}.py is out of date; {HOW}"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_committed_inference_source_is_current(name: str) -> None:
    spec, fresh = fresh_source(name, "inference")
    path = INFERENCE / f"{spec}.py"
    assert path.is_file(), f"generated/inference/{spec}.py is missing; {HOW_INFERENCE}"
    assert path.read_text(encoding="utf-8") == fresh, f"generated/inference/{spec}.py is out of date; {HOW_INFERENCE}"


@pytest.mark.parametrize("folder", [GENERATED, INFERENCE], ids=["training", "inference"])
def test_no_source_without_a_spec(folder: Path) -> None:
    names = {spec_name(name) for name in ALL_SPECS}
    orphans = sorted(path.name for path in folder.glob("*.py") if path.stem not in names)
    assert not orphans, f"generated sources of specs that no longer exist: {orphans}"
