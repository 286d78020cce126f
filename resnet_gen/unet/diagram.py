"""The U-Net drawn from its plan: the down path on the left going down in resolution, the middle
at the bottom, the up path on the right coming back up, each down stage level with the up stage
of the same resolution; skip connections as dashed edges between them (labelled with what they
carry), attention stages marked in the attention colour. Needs Graphviz only to render."""

from __future__ import annotations

from collections import defaultdict

import graphviz

from ..blocks.diffusion import step_words
from ..diagram import style
from ..diagram.blocks import block_kinds, draw_kinds
from ..diagram.canvas import bold, html, legend_entry, small
from ..diagram.text import ARROW, DOT, TIMES, cost, esc, shape
from ..errors import SpecError
from .plan import StagePlan, UNetPlan
from .spec import UNetSpec

SKIP_COLOUR = "#d9822b"
TIME_COLOUR, TIME_FILL = style.TIME_COLOUR, style.TIME_FILL
ATTENTION_FILL, ATTENTION_BORDER = style.LAYER_COLOURS["attention"]


def _stage_label(stage: StagePlan) -> str:
    first, last = stage.resnets[0], stage.resnets[-1]
    widths = f"{first.in_channels}{ARROW}{last.out_channels}"
    rows = [
        bold(esc(stage.path)),
        esc(f"{len(stage.resnets)}{TIMES} ResBlock {widths}  at {stage.size[0]}{TIMES}{stage.size[1]}"),
    ]
    if stage.attentions:
        heads = stage.attentions[0].heads
        repeat = f"{len(stage.attentions)}{TIMES} " if len(stage.attentions) > 1 else ""
        text = f"{repeat}self-attention, {heads} head{'s' if heads != 1 else ''}"
        rows.append(f'<font color="{ATTENTION_BORDER}"><b>{esc(text)}</b></font>')
    if stage.resample is not None:
        kind = stage.resample.kind
        rows.append(
            esc(
                {
                    "conv": "\u2193 3\u00d73 conv, stride 2",
                    "avg": "\u2193 2\u00d72 average pool",
                    "nearest_conv": "\u2191 nearest 2\u00d7, 3\u00d73 conv",
                }[kind]
            )
        )
    rows.append(small(esc(cost(stage.params, stage.macs))))
    return html(rows)


def resblock_line(plan: UNetPlan) -> str:
    """The ResBlock's forward on one line, read off the plan of its first block."""
    return f"ResBlock: {step_words(plan.resnets[0], shortcut=False)}; + the input, or a projection"


def resblock_diagram(plan: UNetPlan, direction: str = "TB") -> graphviz.Digraph:
    """The U-Net's ResBlocks as the classifiers' block view draws every block kind: each distinct
    structure (with and without a projection shortcut) step by step as its plan lists them, the
    time embedding entering through its projection at the injection step."""
    graph = graphviz.Digraph(
        name=f"{plan.name}_resblock",
        graph_attr=style.graph_attrs(direction),
        node_attr=style.node_attrs(),
        edge_attr=style.edge_attrs(),
    )
    graph.attr(
        label=html([bold(esc(f"{plan.name}: its ResBlocks"), 16), small(esc("forward(x, time)"), style.INK, 11)]),
        ranksep="0.22",
    )
    draw_kinds(graph, block_kinds(plan.resnets), direction)
    return graph


def _stage_of(path: str) -> str:
    """``down_blocks.2.downsamplers.0`` -> ``down_blocks.2``; ``conv_in`` stays."""
    parts = path.split(".")
    return ".".join(parts[:2]) if parts[0] in ("down_blocks", "up_blocks") else parts[0]


def unet_diagram(plan: UNetPlan, direction: str = "TB") -> graphviz.Digraph:
    """The U of ``plan`` as a graph (``direction`` TB or LR)."""
    graph = graphviz.Digraph(
        name=plan.name,
        graph_attr={**style.graph_attrs(direction), "nodesep": "0.6"},
        node_attr=style.node_attrs(),
        edge_attr=style.edge_attrs(),
    )
    legend = [
        legend_entry(style.EDGE, "solid", "main path"),
        legend_entry(SKIP_COLOUR, "dashed", "skip (concatenated)"),
        legend_entry(TIME_COLOUR, "dotted", "time embedding"),
        f'<font color="{ATTENTION_BORDER}">\u25a0</font>\u00a0{esc("self-attention")}',
    ]
    totals = f"{cost(plan.params, plan.macs)}  {DOT}  sample {shape(plan.in_channels, plan.size)}  {DOT}  forward(x, t)"
    rows = [bold(esc(plan.name), 18) + small(esc("  diffusion U-Net"), size=12)]
    if plan.description:
        rows.append(small(esc(plan.description[:160] + ("\u2026" if len(plan.description) > 160 else "")), size=11))
    rows += [
        small(esc(totals), style.INK, 11),
        small(esc(resblock_line(plan)), style.INK, 10),
        small("\u00a0\u00a0\u00a0".join(legend), style.INK, 10),
    ]
    graph.attr(label=html(rows))

    io = {"fillcolor": style.STEM_FILL, "color": style.NEUTRAL_BORDER}
    graph.node("x", html([bold("x"), esc(shape(plan.in_channels, plan.size))]), **io)
    time = plan.time
    graph.node(
        "t",
        html(
            [
                bold("t"),
                esc(f"sinusoid {time.frequencies} {ARROW} MLP {time.channels}"),
                small(esc(cost(time.params, time.macs))),
            ]
        ),
        fillcolor=TIME_FILL,
        color=TIME_COLOUR,
    )
    graph.node(
        "conv_in", html([bold("conv_in"), esc(f"3{TIMES}3 conv {plan.in_channels}{ARROW}{plan.first_width}")]), **io
    )
    graph.node(
        "out",
        html(
            [
                bold("out"),
                esc(f"GroupNorm, SiLU, 3{TIMES}3 conv {plan.first_width}{ARROW}{plan.out_channels}"),
            ]
        ),
        **io,
    )
    graph.node("y", html([bold("output"), esc(shape(plan.out_channels, plan.size))]), **io)

    for stage in plan.stages:
        attrs = {"fillcolor": style.STAGE_FILL, "color": style.STAGE_BORDER}
        if stage.attentions:
            attrs = {"fillcolor": ATTENTION_FILL, "color": ATTENTION_BORDER, "penwidth": "2"}
        graph.node(stage.path, _stage_label(stage), **attrs)

    # Each resolution on one rank: a down stage beside the up stage that works at its size.
    levels = len(plan.down)
    with graph.subgraph() as top:
        top.attr(rank="same")
        for node in ("x", "t"):
            top.node(node)
    with graph.subgraph() as first:
        first.attr(rank="same")
        first.node("conv_in")
        first.node("out")
    for index, stage in enumerate(plan.down):
        with graph.subgraph() as level:
            level.attr(rank="same")
            level.node(stage.path)
            level.node(plan.up[levels - 1 - index].path)

    graph.edge("x", "conv_in", label=esc(shape(plan.in_channels, plan.size)))
    previous, channels, size = "conv_in", plan.first_width, plan.size
    for stage in (*plan.down, plan.mid, *plan.up):
        graph.edge(previous, stage.path, label=esc(shape(channels, size)))
        previous, channels, size = stage.path, stage.channels, stage.out_size
    graph.edge(previous, "out", label=esc(shape(channels, size)))
    graph.edge("out", "y", label=esc(shape(plan.out_channels, plan.size)))
    graph.edge(
        "t",
        plan.down[0].path,
        label=esc("to every ResBlock"),
        style="dotted",
        color=TIME_COLOUR,
        fontcolor=TIME_COLOUR,
        constraint="false",
    )

    carried: dict[tuple[str, str], list[int]] = defaultdict(list)
    for source, target, skip in plan.skips:
        carried[(_stage_of(source), _stage_of(target))].append(skip)
    for (source, target), widths in carried.items():
        label = f"skip {', '.join(str(w) for w in widths)}" if len(widths) > 1 else f"skip {widths[0]}"
        graph.edge(
            source,
            target,
            label=esc(label),
            style="dashed",
            color=SKIP_COLOUR,
            fontcolor=SKIP_COLOUR,
            constraint="false",
        )
    return graph


def draw_unet(source: str, items: list[str], view: str, fmt: str, direction: str) -> tuple[UNetSpec, bytes]:
    """``resnet-gen diagram`` of a U-Net spec: the spec and the rendered drawing, its U (the macro
    view) or its ResBlock step by step (the block view)."""
    from ..diagram import render
    from .load import load_unet_and_plan

    spec, plan = load_unet_and_plan(source, items)
    if view == "blocks":
        return spec, render(resblock_diagram(plan, direction), fmt)
    if view != "macro":
        raise SpecError(
            [f"{source}: --view {view} is not a drawing of a U-Net; use macro (its U) or blocks (its ResBlock)"]
        )
    return spec, render(unet_diagram(plan, direction), fmt)
