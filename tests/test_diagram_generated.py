"""``generated/<name>.svg`` is committed for every spec in specs/ and must match what the spec draws now.

Each SVG carries the digest of the DOT it was drawn from, so the check holds on any Graphviz; where
the installed Graphviz is the one that drew the file, the whole file must be identical too.
"""

from __future__ import annotations

import pytest
from conftest import ALL_SPECS, ROOT
from layout_support import fresh_diagram

from resnet_gen.diagram import render
from resnet_gen.diagram.output import dot_digest, svg_graphviz_version, svg_stamp

GENERATED = ROOT / "generated"
HOW = "run 'resnet-gen diagram' (or make demo) and commit generated/"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_committed_svg_is_current(name: str) -> None:
    path = GENERATED / f"{name}.svg"
    assert path.is_file(), f"generated/{name}.svg is missing; {HOW}"
    committed = path.read_bytes()
    graph = fresh_diagram(name)
    assert svg_stamp(committed) == dot_digest(graph.source), f"generated/{name}.svg is out of date; {HOW}"
    fresh = render(graph, "svg")
    if svg_graphviz_version(fresh) == svg_graphviz_version(committed):
        assert committed == fresh, f"generated/{name}.svg differs from a fresh drawing; {HOW}"


def test_no_svg_without_a_spec() -> None:
    names = set(ALL_SPECS)
    orphans = [path.name for path in GENERATED.glob("*.svg") if path.stem.removesuffix("-blocks") not in names]
    assert not orphans, f"diagrams of specs that no longer exist: {orphans}"
