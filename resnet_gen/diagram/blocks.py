"""Block view: every distinct kind of block in the network, drawn out layer by layer.

Built only from ``BlockPlan.steps`` and the layer groups they run (``preact``, ``branch``,
``time`` and ``tail`` for a block with a second input, ``shortcut``, ``after_add``), so the order on the page is the order the back ends run, and a layer
kind added to the plan later still draws (with the generic label from :mod:`.text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import graphviz

from ..blocks.registry import kind_of
from ..choices import ORDER_NAMES
from ..plan import BlockPlan, Plan
from ..plan import layers as L
from . import style
from .canvas import bold, html, legend_entry, new_graph, small, title
from .macro import Edge
from .text import ARROW, DOT, activation_name, describe, esc, is_noop, path_range, shape


@dataclass(frozen=True)
class BlockKind:
    """Blocks of one structure; ``drawn`` is the member whose sizes the drawing shows."""

    drawn: BlockPlan
    members: tuple[BlockPlan, ...]


def block_kinds(blocks: Plan | tuple[BlockPlan, ...]) -> list[BlockKind]:
    """Distinct block structures in network order, ignoring widths, strides and sizes."""
    groups: dict[tuple[object, ...], list[BlockPlan]] = {}
    for block in blocks.blocks if isinstance(blocks, Plan) else blocks:
        groups.setdefault(_kind_key(block), []).append(block)
    kinds = []
    for members in groups.values():
        # Prefer a downsampling member: its drawing shows where the stride goes.
        drawn = next((block for block in members if block.stride > 1), members[0])
        kinds.append(BlockKind(drawn, tuple(members)))
    return kinds


def _kind_key(block: BlockPlan) -> tuple[object, ...]:
    def layers(items: tuple[L.Layer, ...]) -> tuple[object, ...]:
        return tuple((type(layer).__name__, getattr(layer, "type", None)) for layer in items)

    return (
        block.type,
        block.order,
        block.shortcut_type,
        block.attention,
        block.post_activation,
        layers(block.preact),
        layers(block.branch),
        layers(block.shortcut),
        layers(block.after_add),
        layers(block.time),
        layers(block.tail),
        block.step_size,  # a tied stage's scaled branch draws its own kind
    )


def blocks_view(plan: Plan, direction: str = "TB") -> graphviz.Digraph:
    graph = new_graph(plan, direction)
    kinds = block_kinds(plan)
    legend = [
        legend_entry(*style.shortcut_style(kind)[:2], style.shortcut_style(kind)[2]) for kind in _shortcuts(kinds)
    ]
    graph.attr(label=title(plan, "block view", ["shortcuts:", *legend] if legend else []), ranksep="0.22")
    draw_kinds(graph, kinds, direction)
    return graph


def draw_kinds(graph: graphviz.Digraph, kinds: list[BlockKind], direction: str) -> None:
    """Each kind in a numbered cluster of its own, step by step."""
    edges: list[Edge] = []
    numbered = list(enumerate(kinds, start=1))
    # Graphviz stacks separate drawings bottom-up when laying out left to right; reverse them so
    # that kind 1 still comes first, at the top.
    for number, kind in reversed(numbered) if direction == "LR" else numbered:
        with graph.subgraph(name=f"cluster_kind{number}") as cluster:
            cluster.attr(
                label=kind_label(number, kind),
                style="rounded,filled",
                fillcolor=style.STAGE_FILL,
                color=style.STAGE_BORDER,
                labeljust="l",
                margin="12",
                **{"class": f"block-kind {kind.drawn.shortcut_type}"},
            )
            draw_block(cluster, edges, f"kind{number}", kind)
    for start, end, attrs in edges:
        graph.edge(start, end, **attrs)


def _shortcuts(kinds: list[BlockKind]) -> list[str]:
    present = {kind.drawn.shortcut_type for kind in kinds} - {"none"}
    order = list(style.SHORTCUTS)
    return sorted(present, key=lambda k: (order.index(k) if k in order else len(order), k))


def kind_label(number: int, kind: BlockKind) -> str:
    block = kind.drawn
    words = kind_of(block.type).title if block.time else f"{ORDER_NAMES[block.order]} {block.type}"
    if block.attention:
        words += f" + {block.attention.upper()}"
    shortcut = {"none": "no shortcut"}.get(block.shortcut_type, f"{block.shortcut_type.replace('_', '-')} shortcut")
    head = bold(f"{number}. {esc(words)}", 12) + small(esc(f"  {DOT}  {shortcut}"), style.INK, 11)
    sizes = f"{shape(block.in_channels, block.in_size)} {ARROW} {shape(block.out_channels, block.out_size)}"
    drawn = small(esc(f"drawn for {block.path}: {sizes}"))
    used = small(esc(f"{len(kind.members)} block{'s' if len(kind.members) > 1 else ''}: {_members(kind.members)}"))
    return html([head, drawn, used], align="left")


def _members(blocks: tuple[BlockPlan, ...], limit: int = 4) -> str:
    """``layer1.0, layer2.0, …`` with consecutive blocks of a stage folded into ranges."""
    runs: list[list[str]] = []
    for block in blocks:
        last = runs[-1][-1] if runs else ""
        stage, _, index = last.rpartition(".")
        if runs and block.path == f"{stage}.{int(index) + 1}":
            runs[-1].append(block.path)
        else:
            runs.append([block.path])
    names = [path_range(run) for run in runs]
    if len(names) > limit:
        names = [*names[: limit - 1], "\u2026", names[-1]]
    return ", ".join(names)


def draw_block(graph: graphviz.Digraph, edges: list[Edge], prefix: str, kind: BlockKind) -> None:
    """The block's steps, drawn in the order the back ends run them; a second input (a time
    embedding) enters beside the spine, through its own layers, at its injection step."""
    block = kind.drawn
    spine = f"{prefix}/spine"
    source = f"{prefix}/input"
    graph.node(source, html([bold("input"), small(shape(block.in_channels, block.in_size))]), **_terminal(spine))
    tail = split = preacted = source
    for step in block.steps:
        match step.op:
            case "fork":
                split = tail
            case "preact":
                for layer in block.preact:
                    tail = _layer(graph, edges, f"{prefix}/preact/{layer.path}", layer, tail, spine)
                preacted = tail
            case "shortcut":
                # Drawn at the addition; a projection of the pre-activation forks after it.
                if step.reads == "preact":
                    split = preacted
            case "branch":
                for layer in block.branch:
                    tail = _layer(graph, edges, f"{prefix}/branch/{layer.path}", layer, tail, spine)
            case "time_add" | "time_scale_shift":
                node = f"{prefix}/{step.op}"
                if step.op == "time_add":
                    graph.node(node, "+", **_add_attrs(spine))
                else:
                    _node(graph, node, "act", "\u00d7 (1 + scale) + shift", "", spine)
                edges.append((tail, node, {"weight": "20"}))
                _draw_time(graph, edges, prefix, block, node)
                tail = node
            case "tail":
                for layer in block.tail:
                    tail = _layer(graph, edges, f"{prefix}/tail/{layer.path}", layer, tail, spine)
            case "drop_path":
                rates = sorted({member.drop_path for member in kind.members if member.drop_path})
                if rates:
                    span = f"{rates[0]:.3f}" + (f"\u2013{rates[-1]:.3f}" if len(rates) > 1 else "")
                    node = f"{prefix}/drop_path"
                    _node(graph, node, "dropout", "DropPath", f"rate {span}", spine)
                    edges.append((tail, node, {"weight": "20"}))
                    tail = node
            case "scale":
                assert block.step_size is not None
                node = f"{prefix}/scale"
                _node(graph, node, "act", f"\u00d7 {block.step_size:g}", "step size dt", spine)
                edges.append((tail, node, {"weight": "20"}))
                tail = node
            case "add":
                add = f"{prefix}/add"
                graph.node(add, "+", **_add_attrs(spine))
                edges.append((tail, add, {"weight": "20"}))
                _draw_shortcut(graph, edges, prefix, block, split, add)
                tail = add
            case "after_add":
                for layer in block.after_add:
                    tail = _layer(graph, edges, f"{prefix}/after_add/{layer.path}", layer, tail, spine)
            case "activation":
                assert block.post_activation is not None
                node = f"{prefix}/post_act"
                _node(graph, node, "act", activation_name(block.post_activation), "", spine)
                edges.append((tail, node, {"weight": "20"}))
                tail = node
            case _:
                assert_never(step.op)
    sink = f"{prefix}/output"
    graph.node(sink, html([bold("output"), small(shape(block.out_channels, block.out_size))]), **_terminal(spine))
    edges.append((tail, sink, {"weight": "20"}))


def _add_attrs(spine: str) -> dict[str, str]:
    return {
        "shape": "circle",
        "width": "0.28",
        "height": "0.28",
        "fixedsize": "true",
        "fontsize": "14",
        "style": "filled",
        "fillcolor": "white",
        "color": style.EDGE,
        "group": spine,
        "class": "add",
    }


def _draw_time(graph: graphviz.Digraph, edges: list[Edge], prefix: str, block: BlockPlan, injection: str) -> None:
    """The second input and its projection, off the spine, into the injection."""
    source = f"{prefix}/time"
    graph.node(source, html([bold("time embedding"), small(f"{block.time_channels}")]), **_terminal(""))
    attrs = {"color": style.TIME_COLOUR, "style": "dotted", "weight": "1", "class": "time"}
    tail = source
    for layer in block.time:
        if is_noop(layer):
            continue
        text = describe(layer)
        node = f"{prefix}/time/{layer.path}"
        _node(graph, node, text.category, text.title, text.detail, None, style.TIME_COLOUR)
        edges.append((tail, node, attrs))
        tail = node
    edges.append((tail, injection, attrs))


def _draw_shortcut(
    graph: graphviz.Digraph, edges: list[Edge], prefix: str, block: BlockPlan, split: str, add: str
) -> None:
    colour, line, _ = style.shortcut_style(block.shortcut_type)
    attrs = {
        "color": colour,
        "style": line,
        "class": f"shortcut {block.shortcut_type}",
        "weight": "1",
        "fontcolor": colour,
    }
    tail = split
    for layer in block.shortcut:
        if is_noop(layer):
            continue
        text = describe(layer)
        node = f"{prefix}/shortcut/{layer.path}"
        _node(graph, node, text.category, text.title, text.detail, None, colour)
        edges.append((tail, node, attrs))
        tail = node
    label = {"xlabel": "identity"} if not block.shortcut else {}
    edges.append((tail, add, {**attrs, **label}))


def _layer(graph: graphviz.Digraph, edges: list[Edge], node: str, layer: L.Layer, tail: str, spine: str) -> str:
    if is_noop(layer):
        return tail
    text = describe(layer)
    _node(graph, node, text.category, text.title, text.detail, spine)
    edges.append((tail, node, {"weight": "20"}))
    return node


def _node(
    graph: graphviz.Digraph,
    node: str,
    category: str,
    heading: str,
    detail: str,
    spine: str | None,
    border: str | None = None,
) -> None:
    fill, colour = style.LAYER_COLOURS.get(category, style.LAYER_COLOURS["other"])
    rows = [bold(esc(heading))] + ([small(esc(detail), style.INK)] if detail else [])
    attrs = {"fillcolor": fill, "color": border or colour, "class": f"layer {category}", "width": "1.5"}
    if spine:
        attrs["group"] = spine
    graph.node(node, html(rows), **attrs)


def _terminal(spine: str) -> dict[str, str]:
    attrs = {"shape": "box", "style": "rounded", "color": style.NEUTRAL_BORDER, "group": spine, "class": "terminal"}
    if not spine:
        del attrs["group"]
    return attrs
