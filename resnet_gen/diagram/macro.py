"""Macro view: input, stem, one cluster per stage, head, output; tensor shapes on the edges.

Consecutive blocks of the same structure are drawn once and marked ``×N``, so a stage costs the
same few nodes however deep it is: a 1202-layer CIFAR net draws like a 20-layer one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import graphviz

from ..choices import ORDER_NAMES, ORDER_PREFIXES
from ..plan import BlockPlan, Plan, StagePlan
from ..plan import layers as L
from . import style
from .canvas import bold, html, legend_entry, new_graph, small, title
from .decoder import draw_decoder
from .text import (
    ARROW,
    DOT,
    NBSP,
    TIMES,
    branch_convs,
    branch_extras,
    cost,
    describe,
    esc,
    is_noop,
    path_range,
    shape,
)

Edge = tuple[str, str, dict[str, str]]
SPINE = "spine"


def macro_view(
    plan: Plan, direction: str = "TB", *, prefix: str = "", highlight: frozenset[str] = frozenset()
) -> graphviz.Digraph:
    """The macro view of ``plan``.

    ``prefix`` goes before every node, group and cluster name, so that two views can share one
    graph (``resnet-gen diff --diagram``); ``highlight`` names the parts drawn in the highlight
    colour: ``stem``, stage paths (``layer3``) and ``head``, as in the report's rows.
    """
    return _Macro(plan, direction, prefix, highlight).graph


# A stage draws at most about this many block nodes: past it (a pruned net whose blocks all
# differ), runs of blocks that differ only in their widths are merged into ranges labelled with
# the spread of their widths, so the drawing stays small. The catalog's most varied stage has 23.
MAX_RUNS_PER_STAGE = 24


def runs(stage: StagePlan) -> list[list[BlockPlan]]:
    """Consecutive blocks of identical structure (everything but their position and drop rate);
    past MAX_RUNS_PER_STAGE, consecutive runs of the same layers in other widths are merged."""
    out: list[list[BlockPlan]] = []
    for block in stage.blocks:
        if out and _structure(out[-1][0]) == _structure(block):
            out[-1].append(block)
        else:
            out.append([block])
    if len(out) <= MAX_RUNS_PER_STAGE:
        return out
    per_range = -(-len(out) // MAX_RUNS_PER_STAGE)
    merged: list[list[BlockPlan]] = []
    taken = 0  # runs in the last range
    for run in out:
        if merged and taken < per_range and _skeleton(merged[-1][0]) == _skeleton(run[0]):
            merged[-1].extend(run)
            taken += 1
        else:
            merged.append(list(run))
            taken = 1
    return merged


def _skeleton(block: BlockPlan) -> tuple[object, ...]:
    """A block's structure with every width left out: which layers, kernels and strides."""

    def kinds(layers: tuple[L.Layer, ...]) -> tuple[object, ...]:
        return tuple(
            (type(layer).__name__, getattr(layer, "kernel", None), getattr(layer, "stride", None)) for layer in layers
        )

    return (
        block.type,
        block.order,
        block.attention,
        block.shortcut_type,
        block.stride,
        block.dilation,
        block.first_dilation,
        kinds(block.preact),
        kinds(block.branch),
        kinds(block.shortcut),
    )


def _conv_lines(run: list[BlockPlan]) -> list[str]:
    """The convs of a run's blocks in paper form; where their widths differ (a merged range),
    each width is written as its spread (``3×3, 24–64``)."""
    first = run[0]
    texts = branch_convs(first.branch)
    if all(_structure(block) == _structure(first) for block in run):
        return texts
    convs = [[layer for layer in block.branch if isinstance(layer, L.Conv)] for block in run]
    lines = []
    for position, text in enumerate(texts):
        widths = [block[position].out_channels for block in convs if position < len(block)]
        low, high = min(widths), max(widths)
        head, _, _ = text.rpartition(", ")
        lines.append(f"{head}, {low}\u2013{high}" if head and low != high else text)
    return lines


def _structure(block: BlockPlan) -> BlockPlan:
    return dataclasses.replace(block, path="", index=0, drop_path=0.0)


class _Macro:
    """Builds the graph. Nodes go into their clusters; edges are added last, at the top level, so
    that an edge between two clusters never drags a node into the wrong one."""

    def __init__(self, plan: Plan, direction: str, prefix: str, highlight: frozenset[str]) -> None:
        self.plan = plan
        self.prefix = prefix
        self.highlight = highlight
        self.spine = prefix + SPINE
        # Left to right, labels stack their lines so the picture does not grow ever wider.
        self.stacked = direction == "LR"
        self.graph = new_graph(plan, direction)
        self.edges: list[Edge] = []
        # Top-level module -> the node whose output it is, for the feature maps a backbone returns.
        self.outputs: dict[str, str] = {_top(layer.path): "stem" for layer in plan.stem}
        kinds = sorted({block.shortcut_type for block in plan.blocks}, key=_shortcut_order)
        self.graph.attr(label=title(plan, "macro view", _legend(kinds)))

        input_shape = shape(plan.input_channels, plan.input_size)
        self.graph.node(self.id("input"), html([bold("input"), small(input_shape)]), **self._terminal())
        self.graph.node(
            self.id("stem"),
            self._stem_label(),
            group=self.spine,
            **self._part("stem", {"fillcolor": style.STEM_FILL, "color": style.NEUTRAL_BORDER}),
        )
        self.edges.append(("input", "stem", _tensor(input_shape)))
        tail, here = "stem", shape(plan.stem_channels, plan.stem_out_size)
        for stage in plan.stages:
            tail, here = self._stage(stage, tail, here)
        if plan.decoder is not None:
            draw_decoder(self, tail, here)
        if plan.decoder is None or plan.head is not None:
            self._head(tail, here)
        self._features()
        for start, end, attrs in self.edges:
            self.graph.edge(self.id(start), self.id(end), **attrs)

    def id(self, name: str) -> str:
        return self.prefix + name

    def _part(self, name: str, attrs: dict[str, str]) -> dict[str, str]:
        """``attrs``, or the highlight colours (and a ``changed`` class) when ``name`` is highlighted."""
        if name not in self.highlight:
            return attrs
        classes = f"{attrs.get('class', '')} changed".strip()
        return {
            **attrs,
            "fillcolor": style.CHANGED_FILL,
            "color": style.CHANGED_BORDER,
            "penwidth": "2.4",
            "class": classes,
        }

    def _terminal(self) -> dict[str, Any]:
        return {**_terminal(), "group": self.spine}

    def _stage(self, stage: StagePlan, tail: str, here: str) -> tuple[str, str]:
        with self.graph.subgraph(name=f"cluster_{self.prefix}{stage.path}") as cluster:
            frame = {"fillcolor": style.STAGE_FILL, "color": style.STAGE_BORDER, "class": "stage"}
            cluster.attr(label="", style="rounded,filled", margin="10", **self._part(stage.path, frame))
            # The stage's facts sit in a header card on the main line rather than in the cluster
            # label, which edges entering the cluster would cross; shortcuts fork from the card.
            header = f"{stage.path}/input"
            card = {"fillcolor": style.STAGE_HEADER, "color": style.STAGE_BORDER, "class": "stage-header"}
            if stage.path in self.highlight:
                card = {**card, "fillcolor": style.CHANGED_HEADER, "color": style.CHANGED_BORDER}
            cluster.node(self.id(header), self._stage_label(stage), group=self.spine, **card)
            self.edges.append((tail, header, _tensor(here)))
            tail, here = header, ""
            for run in runs(stage):
                tail, here = self._run(cluster, run, tail, here)
        self.outputs[stage.path] = tail
        return tail, here

    def _run(self, graph: graphviz.Digraph, run: list[BlockPlan], tail: str, here: str) -> tuple[str, str]:
        first = run[0]
        node = first.path
        graph.node(
            self.id(node),
            self._block_label(run),
            group=self.spine,
            color=style.BLOCK_BORDER,
            penwidth="1.4",
            **{"class": f"block repeat-{len(run)}"},
        )
        self.edges.append((tail, node, _tensor(here) if here else _main()))
        out = shape(first.out_channels, first.out_size)
        if not any(step.op == "add" for step in first.steps):
            return node, out

        add = f"{node}/add"
        graph.node(
            self.id(add),
            "+",
            shape="circle",
            width="0.24",
            height="0.24",
            fixedsize="true",
            fontsize="13",
            group=self.spine,
            style="filled",
            fillcolor="white",
            color=style.EDGE,
            **{"class": "add"},
        )
        self.edges.append((node, add, _main()))
        colour, line, _ = style.shortcut_style(first.shortcut_type)
        attrs = {"color": colour, "style": line, "class": f"shortcut {first.shortcut_type}", "weight": "1"}
        if first.shortcut_type == "zero_pad" or not first.shortcut:
            # Parameter-free shortcuts are drawn as an edge, with what they do written on it.
            words = "  ".join(describe(layer).short for layer in first.shortcut)
            extra = {"label": f"{NBSP}{NBSP}{words}", "fontcolor": colour} if words else {}
            self.edges.append((tail, add, {**attrs, **extra}))
        else:
            side = f"{node}/shortcut"
            graph.node(
                self.id(side),
                self._shortcut_label(first.shortcut_type, first.shortcut, colour),
                color=colour,
                fillcolor="white",
                style="rounded,filled," + ("dashed" if line in ("dashed", "dotted") else "solid"),
                penwidth="1.4",
                **{"class": f"shortcut {first.shortcut_type}"},
            )
            self.edges.append((tail, side, attrs))
            self.edges.append((side, add, attrs))
        return add, out

    def _block_label(self, run: list[BlockPlan]) -> str:
        first = run[0]
        convs = _conv_lines(run)
        lines = [small(esc(text), style.INK) for text in convs] if self.stacked else []
        if not self.stacked:
            lines = [small(esc(f"  {ARROW}  ".join(convs)), style.INK)]
        notes = _block_notes(first, run)
        if notes:
            lines += [small(esc(note)) for note in notes] if self.stacked else [small(esc(f"  {DOT}  ".join(notes)))]
        name = bold(esc(path_range([block.path for block in run])))
        count = f'<font point-size="16" color="{style.BLOCK_BORDER}"><b>{TIMES}{len(run)}</b></font>'
        right = f'<td align="right" valign="top" rowspan="{len(lines) + 1}">&nbsp;&nbsp;{count}</td>'
        rows = [f'<tr><td align="left">{name}</td>{right if len(run) > 1 else ""}</tr>']
        rows += [f'<tr><td align="left">{line}</td></tr>' for line in lines]
        return f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{"".join(rows)}</table>>'

    def _shortcut_label(self, kind: str, layers: tuple[L.Layer, ...], colour: str) -> str:
        parts = [describe(layer).short for layer in layers if not is_noop(layer)]
        words = {"projection": "projection", "avg_down": "avg-down"}.get(kind, kind.replace("_", " "))
        heading = f'<font color="{colour}" point-size="10"><b>{esc(words)}</b></font>'
        body = (
            [small(esc(part), style.INK) for part in parts]
            if self.stacked
            else [small(esc(f" {DOT} ".join(parts)), style.INK)]
        )
        return html([heading, *body])

    def _stem_label(self) -> str:
        stem = self.plan.stem
        rows = [bold("stem")]
        rows += [small(esc(line), style.INK) for line in _grouped(stem)]
        rows.append(small(esc(cost(sum(x.params for x in stem), sum(x.macs for x in stem)))))
        if any(_top(layer.path) in self.plan.frozen for layer in stem):
            rows.append(_frozen())
        return html(rows)

    def _stage_label(self, stage: StagePlan) -> str:
        kinds = list(dict.fromkeys(_block_kind(block) for block in stage.blocks))
        blocks = f"{stage.depth} {TIMES} {' / '.join(kinds)}"
        if stage.tied_words:
            blocks += f"  {DOT}  {stage.tied_words}"
        facts = [f"width {stage.width}", f"stride {stage.stride}"]
        if stage.dilation > 1:
            facts.append(f"dilation {stage.dilation}")
        name = bold(esc(stage.path), 12)
        numbers = small(esc(cost(stage.params, stage.macs)))
        if stage.path in self.plan.frozen:
            numbers += small(esc(f"  {DOT}  ")) + _frozen()
        if self.stacked:
            rows = [name, small(esc(blocks), style.INK, 11), small(esc(f"  {DOT}  ".join(facts)), style.INK, 11)]
            return html([*rows, numbers], align="left")
        line = f"   {blocks}  {DOT}  {f'  {DOT}  '.join(facts)}"
        return html([name + small(esc(line), style.INK, 11), numbers], align="left")

    def _head(self, tail: str, here: str) -> None:
        plan, head = self.plan, self.plan.head
        rows = [bold("head")]
        rows += [small(esc(line), style.INK) for line in _grouped(plan.final)]
        if head is not None:
            rows.append(small(f"global {head.pool} pool", style.INK))
            if head.dropout:
                rows.append(small(f"dropout {head.dropout:g}", style.INK))
            if isinstance(head.fc, L.Linear):
                rows.append(small(esc(f"fc {head.fc.in_features} {ARROW} {head.fc.out_features}"), style.INK))
        layers = plan.final + (head.layers if head is not None else ())
        if head is None and plan.features and not layers:
            return  # a backbone: the feature maps are the outputs
        if head is not None or layers:
            rows.append(small(esc(cost(sum(x.params for x in layers), sum(x.macs for x in layers)))))
            colours = {"fillcolor": style.HEAD_FILL, "color": style.HEAD_BORDER}
            self.graph.node(self.id("head"), html(rows), group=self.spine, **self._part("head", colours))
            self.edges.append((tail, "head", _tensor(here)))
            self.outputs.update({_top(layer.path): "head" for layer in plan.final})
            tail = "head"
        if head is None and plan.features:
            return
        if head is None:
            result, words = here, "features"
        elif head.num_classes:
            result, words = str(head.num_classes), "logits"
        else:
            result, words = str(plan.feature_channels), "features"
        self.graph.node(self.id("output"), html([bold("output"), small(esc(f"{result} {words}"))]), **self._terminal())
        self.edges.append((tail, "output", _tensor(result) if tail == "head" else _main()))

    def _features(self) -> None:
        """The feature maps a backbone returns, each drawn off the module it is taken from."""
        for tap in self.plan.features:
            node = f"feature{tap.index}"
            words = f"{shape(tap.channels, tap.size)}  {DOT}  /{tap.reduction}"
            self.graph.node(
                self.id(node),
                html([bold(f"feature {tap.index}"), small(esc(words))]),
                shape="box",
                style="rounded,dashed",
                color=style.FEATURE,
                **{"class": "feature"},
            )
            source = self.outputs.get(tap.module, "stem")
            self.edges.append(
                (source, node, {"color": style.FEATURE, "style": "dashed", "weight": "0", "class": "feature"})
            )


def _top(path: str) -> str:
    return path.split(".", 1)[0]


def _frozen() -> str:
    return small(esc("frozen"), style.FEATURE)


def _block_notes(first: BlockPlan, run: list[BlockPlan]) -> list[str]:
    notes = branch_extras(first.branch)
    if first.order != "post":
        notes.append(ORDER_NAMES[first.order])
    if first.dilation > 1 or first.first_dilation > 1:
        notes.append(f"dilation {first.dilation}")
    rates = [block.drop_path for block in run if block.drop_path]
    if rates:
        low, high = min(rates), max(rates)
        notes.append(f"drop path {low:.3f}" + (f"\u2013{high:.3f}" if high != low else ""))
    return notes


def _grouped(layers: tuple[L.Layer, ...]) -> list[str]:
    """One line per conv (or pool, or other layer), with the norms and activations that follow it."""
    lines: list[str] = []
    for layer in layers:
        text = describe(layer)
        if isinstance(layer, L.Conv):
            stride = f", stride {layer.stride}" if layer.stride > 1 else ""
            lines.append(f"{text.title}, {layer.out_channels}{stride}")
        elif text.category in ("norm", "act") and lines:
            lines[-1] += f" {DOT} {text.short}"
        else:
            lines.append(text.short)
    return lines


def _block_kind(block: BlockPlan) -> str:
    words = " ".join(filter(None, (ORDER_PREFIXES[block.order], block.type)))
    if block.attention:
        words += f" + {block.attention.upper()}"
    return words


def _main() -> dict[str, str]:
    """The main line: heavy weight keeps it straight."""
    return {"weight": "20"}


def _tensor(label: str) -> dict[str, str]:
    # No-break spaces: an SVG viewer would drop plain leading spaces and the label would touch the line.
    return {"label": f"{NBSP}{NBSP}{label}", "weight": "20", "class": "tensor"}


def _terminal() -> dict[str, Any]:
    return {"shape": "box", "style": "rounded", "color": style.NEUTRAL_BORDER, "group": SPINE, "class": "terminal"}


def _shortcut_order(kind: str) -> tuple[int, str]:
    order = list(style.SHORTCUTS)
    return (order.index(kind) if kind in order else len(order), kind)


def _legend(kinds: Sequence[str]) -> list[str]:
    entries = []
    for kind in kinds:
        if kind == "none":
            continue
        colour, line, words = style.shortcut_style(kind)
        entries.append(legend_entry(colour, line, words if kind in style.SHORTCUTS else kind.replace("_", " ")))
    if entries:
        return ["shortcuts:", *entries]
    return ["no shortcuts (plain network)"] if kinds else []
