"""The look of the diagrams: one palette and one font, shared by both views.

Colours are chosen to survive greyscale printing (fills differ in lightness, shortcut kinds also
differ in line style) and a white background is set so the SVG stays readable in dark themes.
"""

from __future__ import annotations

FONT = "Helvetica,Arial,sans-serif"
INK = "#222222"
MUTED = "#666666"
EDGE = "#555555"

# category -> (fill, border)
LAYER_COLOURS = {
    "conv": ("#dce8f7", "#4a78b0"),
    "norm": ("#fbf0d5", "#c0962e"),
    "act": ("#e2f1df", "#5a9a52"),
    "pool": ("#dff1f0", "#3f918a"),
    "attention": ("#efe4f6", "#8a5aa8"),
    "dropout": ("#f2f2f2", "#9a9a9a"),
    "shortcut": ("#efe4f6", "#7b5ea7"),
    "linear": ("#e6e6f5", "#5c5ca8"),
    "other": ("#eeeeee", "#777777"),
}

# shortcut kind -> (colour, line style, words for the legend)
SHORTCUTS = {
    "identity": ("#8c8c8c", "solid", "identity"),
    "projection": ("#d9822b", "bold", "projection"),
    "avg_down": ("#2a9d8f", "bold", "avg-pool + 1\u00d71 conv (ResNet-D)"),
    "zero_pad": ("#7b5ea7", "dashed", "zero-pad (no parameters)"),
}
OTHER_SHORTCUT = ("#555555", "dotted", "shortcut")

STAGE_FILL = "#f5f8fc"
STAGE_BORDER = "#b4c7df"
STAGE_HEADER = "#e4edf8"
BLOCK_FILL = "#ffffff"
BLOCK_BORDER = "#4a78b0"
STEM_FILL = "#eef1f4"
HEAD_FILL = "#eef5ec"
HEAD_BORDER = "#5a9a52"
NEUTRAL_BORDER = "#8a96a3"
# A block's second input: a diffusion ResBlock's time embedding.
TIME_COLOUR, TIME_FILL = "#2a9d8f", "#e0f2ef"
FEATURE = "#3f6fa8"

# What ``resnet-gen diff --diagram`` marks as changed: a red no other part of the drawings uses,
# with a heavier border so the mark survives greyscale printing.
CHANGED_FILL = "#fdecea"
CHANGED_HEADER = "#f8d3cf"
CHANGED_BORDER = "#c0392b"


def graph_attrs(direction: str) -> dict[str, str]:
    return {
        "rankdir": direction,
        "bgcolor": "white",
        "fontname": FONT,
        "fontcolor": INK,
        "labelloc": "t",
        "labeljust": "c",
        "nodesep": "0.25",
        "ranksep": "0.3",
        "pad": "0.25",
        "newrank": "true",
    }


def node_attrs() -> dict[str, str]:
    return {
        "fontname": FONT,
        "fontsize": "11",
        "fontcolor": INK,
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": BLOCK_FILL,
        "color": NEUTRAL_BORDER,
        "penwidth": "1.2",
        "margin": "0.12,0.05",
        "height": "0.3",
    }


def edge_attrs() -> dict[str, str]:
    return {
        "fontname": FONT,
        "fontsize": "10",
        "fontcolor": MUTED,
        "color": EDGE,
        "arrowsize": "0.6",
        "penwidth": "1.1",
    }


def shortcut_style(kind: str) -> tuple[str, str, str]:
    return SHORTCUTS.get(kind, OTHER_SHORTCUT)
