"""The macro view's segmentation decoder: one node with its layers and cost, a dashed skip edge
from each feature map it reads, and the mask it returns at the input's size."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from ..plan.heads import DecoderPlan
from . import style
from .canvas import bold, html, small
from .text import ARROW, DOT, NBSP, TIMES, cost, describe, esc, shape

if TYPE_CHECKING:
    from .macro import _Macro


def decoder_lines(decoder: DecoderPlan) -> list[str]:
    """The decoder's layers in the order they run, one line per step."""
    levels = len(decoder.taps)
    match decoder.type:
        case "transposed":
            lines = [f"4{TIMES}4 transposed conv /2, {width} {DOT} BN {DOT} ReLU" for width in decoder.channels]
        case "fpn":
            width = decoder.channels[0]
            lines = [
                f"lateral 1{TIMES}1 conv, {width} {TIMES}{levels}",
                "top-down: nearest upsample + add",
                f"3{TIMES}3 conv, {width} {TIMES}{levels}",
                "levels upsampled to the finest, summed",
            ]
        case "unet":
            lines = [
                f"2{TIMES}2 transposed conv /2, {width} {ARROW} concat skip {ARROW} 2 {TIMES} (3{TIMES}3 conv {DOT} BN {DOT} ReLU)"
                for width in reversed(decoder.channels)
            ]
        case _:
            assert_never(decoder.type)
    lines.append(f"1{TIMES}1 conv, {decoder.num_classes}")
    lines.append("bilinear resize to the input")
    return lines


def draw_decoder(macro: _Macro, tail: str, here: str) -> None:
    """Add the decoder's node, its skip inputs (the last from ``tail``) and the mask output."""
    plan = macro.plan
    decoder = plan.decoder
    assert decoder is not None
    rows = [bold(f"{decoder.type} decoder")]
    if plan.head is None and plan.final:
        # A pre-activation net's final norm runs on the last map before the decoder reads it.
        final = f" {DOT} ".join(describe(layer).short for layer in plan.final)
        rows.append(small(esc(f"on the last map: {final}"), style.INK))
    rows += [small(esc(line), style.INK) for line in decoder_lines(decoder)]
    rows.append(small(esc(cost(decoder.params, decoder.macs))))
    colours = {"fillcolor": style.HEAD_FILL, "color": style.HEAD_BORDER, "class": "decoder"}
    macro.graph.node(macro.id("decoder"), html(rows), group=macro.spine, **macro._part("decoder", colours))
    last = decoder.taps[-1]
    for tap in decoder.taps:
        words = f"{shape(tap.channels, tap.size)} {DOT} /{tap.reduction}"
        if tap is last:
            macro.edges.append(
                (tail, "decoder", {"label": f"{NBSP}{NBSP}{here or words}", "weight": "20", "class": "tensor"})
            )
            continue
        source = macro.outputs.get(tap.module, "stem")
        skip = {
            "color": style.FEATURE,
            "style": "dashed",
            "weight": "0",
            "class": "skip",
            "label": f"{NBSP}{NBSP}{words}",
        }
        macro.edges.append((source, "decoder", {**skip, "fontcolor": style.FEATURE}))
    mask = shape(decoder.num_classes, plan.input_size)
    terminal = {"shape": "box", "style": "rounded", "color": style.NEUTRAL_BORDER, "class": "terminal"}
    macro.graph.node(macro.id("mask"), html([bold("mask"), small(esc(mask))]), **terminal)
    macro.edges.append(("decoder", "mask", {"label": f"{NBSP}{NBSP}{mask}", "weight": "20", "class": "tensor"}))
