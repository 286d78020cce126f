"""Words and numbers on the diagrams: tensor shapes, counts, and a label for every plan layer.

Layer kinds this module does not know (new ones are added to ``plan/layers.py`` over time) still
get a sensible label, built from the class name and whichever of the usual fields they carry.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from ..choices import ACTIVATION_CLASSES
from ..plan import layers as L

TIMES = "\u00d7"  # ×
ARROW = "\u2192"  # →
DOT = "\u00b7"  # ·


def shape(channels: int, size: tuple[int, int]) -> str:
    """``64×56×56``: channels, height, width."""
    return f"{channels}{TIMES}{size[0]}{TIMES}{size[1]}"


def count(value: int) -> str:
    """A count in engineering style: ``950``, ``215.8 K``, ``25.56 M``, ``4.09 G``."""
    if value < 1_000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1e3:.1f} K"
    if value < 1_000_000_000:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e9:.2f} G"


def cost(params: int, macs: int) -> str:
    return f"{count(params)} params  {DOT}  {count(macs)} MACs"


NBSP = "\u00a0"
_KEPT_SPACE = re.compile(r"^ | $| (?= )")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def esc(text: str) -> str:
    """Text made safe inside a graphviz HTML-like label.

    Browsers collapse runs of spaces in SVG text and drop them at the edges of a text span, so the
    spaces that make a gap are written as no-break spaces.
    """
    printable = _CONTROL.sub("", text)  # Graphviz rejects control characters in HTML labels
    return _KEPT_SPACE.sub(NBSP, html.escape(printable, quote=True))


def kernel(size: int) -> str:
    return f"{size}{TIMES}{size}"


# Activations are labelled with their torch class names.
_ACTIVATION_LABELS = {str(kind): name for kind, name in ACTIVATION_CLASSES.items()}
NORM_NAMES = {"batch": "BatchNorm", "frozen_batch": "FrozenBatchNorm", "group": "GroupNorm"}


def activation_name(kind: str) -> str:
    return _ACTIVATION_LABELS.get(kind, _words(kind))


@dataclass(frozen=True)
class LayerText:
    """How one layer reads on a diagram.

    ``category`` picks the colour (conv, norm, act, pool, attention, dropout, shortcut, linear,
    other), ``title`` is the bold part, ``detail`` the small line under it, and ``short`` the form
    used in one-line summaries of a whole block.
    """

    category: str
    title: str
    detail: str
    short: str


def describe(layer: L.Layer | object) -> LayerText:
    """The label of any plan layer; the plan's kinds get hand-written text, anything else (a kind
    from an experiment) a generic one."""
    if not isinstance(layer, L.Layer):
        return generic(layer)
    match layer:
        case L.Conv():  # StdConv included
            return _conv(layer)
        case L.KindLayer():  # a block kind's own layer words itself
            return LayerText(*layer.text())
        case L.Norm():
            title = NORM_NAMES.get(layer.type, _words(layer.type))
            detail = f"{layer.groups} groups" if layer.type == "group" else ""
            return LayerText("norm", title, detail, title)
        case L.Act():
            name = activation_name(layer.type)
            return LayerText("act", name, "", name)
        case L.Pool():
            if layer.type == "identity":
                return LayerText("pool", "identity", "", "identity")
            title = f"{kernel(layer.kernel)} {layer.type} pool"
            detail = f"stride {layer.stride}" if layer.stride > 1 else ""
            short = title + (f" /{layer.stride}" if layer.stride > 1 else "")
            return LayerText("pool", title, detail, short)
        case L.Dropout():
            return LayerText("dropout", "Dropout", f"p = {layer.rate:g}", f"dropout {layer.rate:g}")
        case L.SqueezeExcite():
            detail = f"{layer.channels} {ARROW} {layer.reduced} {ARROW} {layer.channels}"
            return LayerText("attention", "Squeeze-Excite", detail, f"SE {layer.channels}{ARROW}{layer.reduced}")
        case L.EfficientChannelAttention():
            return LayerText("attention", "ECA", f"1-D conv, k = {layer.kernel}", f"ECA k{layer.kernel}")
        case L.ZeroPadShortcut():
            extra = layer.out_channels - layer.in_channels
            parts = [f"/{layer.stride}"] if layer.stride > 1 else []
            if extra:
                parts.append(f"+{extra} zero channels")
            detail = ", ".join(parts)
            return LayerText("shortcut", "zero-pad", detail, f"zero-pad {detail}".strip())
        case L.Linear():
            detail = f"{layer.in_features} {ARROW} {layer.out_features}"
            return LayerText("linear", "Linear", detail, f"fc {layer.out_features}")
        case L.ConvTranspose():
            title = f"{kernel(layer.kernel)} transposed conv"
            detail = f"{layer.in_channels} {ARROW} {layer.out_channels}, ×{layer.stride}"
            return LayerText("conv", title, detail, f"{title} {layer.out_channels} ×{layer.stride}")
        case L.EvoNormS0() | L.FilterResponseNorm() | L.ConstantPad() | L.BlurPool():
            return generic(layer)  # their class name and fields say it
        case _:
            assert_never(layer)


def _conv(layer: L.Conv) -> LayerText:
    notes = []
    if layer.stride > 1:
        notes.append(f"stride {layer.stride}")
    if layer.groups > 1:
        notes.append(f"{layer.groups} groups")
    if layer.dilation > 1:
        notes.append(f"dilation {layer.dilation}")
    detail = f"{layer.in_channels} {ARROW} {layer.out_channels}" + "".join(f", {n}" for n in notes)
    # Variants (weight-standardised and the like) keep their class name: ``3×3 StdConv``.
    name = "conv" if type(layer) is L.Conv else type(layer).__name__
    return LayerText("conv", f"{kernel(layer.kernel)} {name}", detail, conv_short(layer))


def conv_short(layer: L.Conv) -> str:
    """Paper-table form: ``3×3/2, 128, g32``."""
    text = kernel(layer.kernel) + (f"/{layer.stride}" if layer.stride > 1 else "") + f", {layer.out_channels}"
    if layer.groups > 1:
        text += f", g{layer.groups}"
    if layer.dilation > 1:
        text += f", d{layer.dilation}"
    return text


_CATEGORY_WORDS = (
    ("conv", "conv"),
    ("norm", "norm"),
    ("pool", "pool"),
    ("attention", "attention"),
    ("excit", "attention"),
    ("drop", "dropout"),
    ("act", "act"),
    ("linear", "linear"),
    ("shortcut", "shortcut"),
)


def generic(layer: object) -> LayerText:
    """A label for a layer class this module has no text for: its class name and usual fields."""
    name = type(layer).__name__
    values = (
        {field.name: getattr(layer, field.name) for field in dataclasses.fields(layer)}
        if dataclasses.is_dataclass(layer)
        else {}
    )
    lowered = name.lower()
    category = next((cat for word, cat in _CATEGORY_WORDS if word in lowered), "other")
    title = name
    kind = values.get("type")
    if isinstance(kind, str) and kind:
        title += f" {kind}"
    size = next((values[key] for key in ("kernel", "kernel_size", "filter_size") if key in values), None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        title = f"{kernel(size)} {title}"
    notes = []
    cin, cout = values.get("in_channels"), values.get("out_channels")
    channels = values.get("channels")
    if isinstance(cin, int) and isinstance(cout, int):
        notes.append(f"{cin} {ARROW} {cout}")
    elif isinstance(channels, int):
        notes.append(f"{channels} ch")
    numbers = {key: values.get(key) for key in ("stride", "groups", "dilation", "padding")}
    for key, value in numbers.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > (0 if key == "padding" else 1):
            notes.append(f"{value} groups" if key == "groups" else f"{key} {value}")
    rate = values.get("rate")
    if isinstance(rate, float) and rate:
        notes.append(f"p = {rate:g}")
    # Flags that are on say so: EvoNorm and FRN carry their activation as ``apply_act``.
    for key, value in values.items():
        if value is True:
            notes.append("+ activation" if key == "apply_act" else _words(key).lower())
    detail = ", ".join(notes)
    stride, padding = numbers["stride"], numbers["padding"]
    short = title + (f" /{stride}" if isinstance(stride, int) and stride > 1 else "")
    short += f", padding {padding}" if isinstance(padding, int) and padding > 0 else ""
    return LayerText(category, title, detail, short)


def _words(name: str) -> str:
    """``BlurPool`` -> ``Blur pool``, ``frozen_batch`` -> ``Frozen batch``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").strip()
    if not spaced:
        return name
    first, *rest = spaced.split(" ")
    return " ".join([first[:1].upper() + first[1:], *(w if w.isupper() else w.lower() for w in rest)])


def branch_convs(layers: Iterable[object]) -> list[str]:
    """A block's convs in paper form (``1×1, 64``, ``3×3/2, 64``, ``1×1, 256``)."""
    return [describe(layer).short for layer in layers if describe(layer).category == "conv"]


def branch_extras(layers: Iterable[object]) -> list[str]:
    """What a block has besides plain convs, norms and activations: attention, dropout, pools,
    conv variants (``StdConv``), each named once."""
    extras: list[str] = []
    for layer in layers:
        if is_noop(layer):
            continue
        if isinstance(layer, L.Conv):
            text = "" if type(layer) is L.Conv else type(layer).__name__
        else:
            text = "" if describe(layer).category in ("norm", "act") else describe(layer).short
        if text and text not in extras:
            extras.append(text)
    return extras


def is_noop(layer: object) -> bool:
    """Layers that exist only to keep module paths aligned (timm's ``nn.Identity`` pool)."""
    return isinstance(layer, L.Pool) and layer.type == "identity"


def path_range(paths: list[str]) -> str:
    """``layer1.1`` or ``layer1.1 – 1.4`` for a run of consecutive blocks."""
    if len(paths) == 1:
        return paths[0]
    stage, _, first = paths[0].rpartition(".")
    last = paths[-1].rpartition(".")[2]
    return f"{stage}.{first}\u2013{last}"
