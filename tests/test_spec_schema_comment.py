"""Editor support: every shipped spec names the JSON Schema on its first line."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet_gen import catalog
from resnet_gen.cli.new_command import SCHEMA_COMMENT

SPECS = sorted(catalog.specs_dir().glob("*.yaml"))


def test_catalog_is_not_empty() -> None:
    assert len(SPECS) > 100


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_first_line_is_schema_comment(path: Path) -> None:
    assert path.read_text(encoding="utf-8").splitlines()[0] == SCHEMA_COMMENT
