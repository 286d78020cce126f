"""Two macro views side by side, old left and new right, with the parts that differ highlighted.

Each side is the ordinary macro view (:func:`macro_view`) drawn as one cluster of a shared graph,
its node names prefixed with ``old/`` or ``new/``. What counts as changed is decided by
:func:`resnet_gen.compare.stage_deltas`, the same rule that stars rows in ``resnet-gen diff``'s table.
"""

from __future__ import annotations

import graphviz

from ..analysis import analyze
from ..compare import stage_deltas
from ..plan import Plan
from . import style
from .canvas import bold, html, small
from .macro import macro_view
from .text import ARROW, DOT, NBSP, esc

SIDES = ("old", "new")
LEGEND = "changed: shape, channels, blocks, params, MACs or layers differ"


def changed_parts(old: Plan, new: Plan) -> tuple[frozenset[str], frozenset[str]]:
    """The report rows (``stem``, stage paths, ``head``) that differ, as drawn on each side."""
    deltas = [delta for delta in stage_deltas(analyze(old), analyze(new)) if delta.changed]
    return (
        frozenset(delta.name for delta in deltas if delta.old is not None),
        frozenset(delta.name for delta in deltas if delta.new is not None),
    )


def diff_view(old: Plan, new: Plan) -> graphviz.Digraph:
    """One graph: a cluster per side holding that plan's macro view, changed parts in red."""
    highlights = changed_parts(old, new)
    graph = graphviz.Digraph(
        name="diff",
        graph_attr=style.graph_attrs("TB"),
        node_attr=style.node_attrs(),
        edge_attr=style.edge_attrs(),
    )
    graph.attr(label=_title(old, new, len(highlights[0] | highlights[1])))
    for side, plan, highlight in zip(SIDES, (old, new), highlights, strict=True):
        view = macro_view(plan, "TB", prefix=f"{side}/", highlight=highlight)
        view.name = f"cluster_{side}"
        # The root's settings (direction, background, font) come from the shared graph; the
        # view's title stays, as the label of its side.
        view.graph_attr = {"style": "rounded", "color": style.NEUTRAL_BORDER, "margin": "14", "class": f"side {side}"}
        view.node_attr = {}
        view.edge_attr = {}
        graph.subgraph(view)
    # Both inputs on the top rank, joined by an invisible edge: a flat edge runs left to right,
    # so the old side is always drawn on the left.
    graph.body.append('\t{rank=same; "old/input"; "new/input"}\n')
    graph.edge("old/input", "new/input", style="invis", weight="0", minlen="8")
    return graph


def _title(old: Plan, new: Plan, changed: int) -> str:
    names = bold(esc(f"{old.name}  {ARROW}  {new.name}"), 18)
    sides = small(esc("  macro views, old left, new right"), size=12)
    swatch = f'<font color="{style.CHANGED_BORDER}">\u25a0\u25a0</font>'
    what = f"{swatch}{NBSP}{esc(LEGEND)}"
    count = {0: "nothing differs", 1: "1 part differs"}.get(changed, f"{changed} parts differ")
    legend = f"{what}{NBSP * 3}{DOT}{NBSP * 3}{esc(count)}"
    return html([names + sides, small(legend, style.INK, 11)])
