"""The named choices a spec makes and a plan records, as ``Literal`` types both import, so a
choice added to the spec is a choice mypy makes every dispatcher on the plan handle."""

from __future__ import annotations

from typing import Literal

BlockType = Literal["basic", "bottleneck", "resnest"]
# He et al. 2016 ("Identity Mappings"), Fig. 4: (a) original, (b) BN after addition, (c) ReLU
# before addition, (d) ReLU-only pre-activation, (e) full pre-activation.
BlockOrder = Literal["post", "bn_after_add", "relu_before_add", "relu_preact", "pre"]
# The orders whose blocks start with an activation (and whose shortcuts read its output).
PRE_ACTIVATION_ORDERS: tuple[BlockOrder, ...] = ("relu_preact", "pre")
ShortcutKind = Literal["identity", "projection", "zero_pad", "avg_down", "none"]
AttentionType = Literal["se", "eca"]
NormType = Literal["batch", "frozen_batch", "group", "evonorm_s0", "frn", "none"]
ActivationType = Literal["relu", "leaky_relu", "silu", "gelu", "mish", "hardswish", "elu", "tanh", "identity"]
# The torch.nn class of each activation: what the live back end builds, the emitted code writes
# (``nn.<class>``) and the diagrams label it. A test holds the keys to ActivationType.
ACTIVATION_CLASSES: dict[ActivationType, str] = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "silu": "SiLU",
    "gelu": "GELU",
    "mish": "Mish",
    "hardswish": "Hardswish",
    "elu": "ELU",
    "tanh": "Tanh",
    "identity": "Identity",
}
# The activations torch can run in place (``inplace=True``), as the networks build them.
IN_PLACE_ACTIVATIONS: frozenset[ActivationType] = frozenset({"relu", "leaky_relu", "silu", "mish", "hardswish", "elu"})

# How reports and diagrams name each order: in full, and as a short prefix ("" for the default).
ORDER_NAMES: dict[BlockOrder, str] = {
    "post": "post-activation",
    "bn_after_add": "BN after addition",
    "relu_before_add": "ReLU before addition",
    "relu_preact": "ReLU-only pre-activation",
    "pre": "pre-activation",
}
ORDER_PREFIXES: dict[BlockOrder, str] = {
    "post": "",
    "bn_after_add": "BN-after-add",
    "relu_before_add": "ReLU-before-add",
    "relu_preact": "ReLU-pre-act",
    "pre": "pre-act",
}
