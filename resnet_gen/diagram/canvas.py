"""What both views share: an empty graph with the house style, HTML-like label helpers, the title."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

import graphviz

from ..plan import Plan
from . import style
from .choices import DIRECTIONS
from .text import DOT, NBSP, cost, esc, shape


def new_graph(plan: Plan, direction: str) -> graphviz.Digraph:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)} (got {direction!r})")
    return graphviz.Digraph(
        name=plan.name,
        graph_attr=style.graph_attrs(direction),
        node_attr=style.node_attrs(),
        edge_attr=style.edge_attrs(),
    )


def html(rows: Sequence[str], *, align: str = "center") -> str:
    """An HTML-like label: one table row per entry (entries are already escaped markup)."""
    cells = "".join(f'<tr><td align="{align}">{row}</td></tr>' for row in rows)
    return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{cells}</table>>'


def small(text: str, colour: str = style.MUTED, size: int = 10) -> str:
    return f'<font point-size="{size}" color="{colour}">{text}</font>'


def bold(text: str, size: int | None = None) -> str:
    inner = f"<b>{text}</b>"
    return f'<font point-size="{size}">{inner}</font>' if size else inner


def title(plan: Plan, subtitle: str, legend: Iterable[str] = ()) -> str:
    """The graph label: name, description, totals, and a legend line when one is given."""
    rows = [bold(esc(plan.name), 18) + small(esc(f"  {subtitle}"), size=12)]
    if plan.description:
        # Balanced lines: as many as needed at 80 characters, then evened out.
        lines = -(-len(plan.description) // 80)
        width = min(80, -(-len(plan.description) // lines) + 8)
        wrapped = textwrap.wrap(plan.description, width=width, max_lines=4, placeholder=" \u2026")
        rows += [small(esc(line), size=11) for line in wrapped]
    totals = f"{cost(plan.params, plan.macs)}  {DOT}  input {shape(plan.input_channels, plan.input_size)}"
    rows.append(small(esc(totals), style.INK, 11))
    legend = list(legend)
    if legend:
        rows.append(small((NBSP * 3).join(legend), style.INK, 10))
    return html(rows)


def legend_entry(colour: str, line: str, words: str) -> str:
    """A coloured line sample and its meaning, for the title's legend."""
    sample = "\u2504\u2504\u2504" if line in ("dashed", "dotted") else "\u2501\u2501\u2501"
    return f'<font color="{colour}">{sample}</font>{NBSP}{esc(words)}'
