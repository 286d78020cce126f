"""The named choices a spec makes and a plan records, as ``Literal`` types both import, so a
choice added to the spec is a choice mypy makes every dispatcher on the plan handle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# He et al. 2016 ("Identity Mappings"), Fig. 4: (a) original, (b) BN after addition, (c) ReLU
# before addition, (d) ReLU-only pre-activation, (e) full pre-activation.
BlockOrder = Literal["post", "bn_after_add", "relu_before_add", "relu_preact", "pre"]
# The orders whose blocks start with an activation (and whose shortcuts read its output).
PRE_ACTIVATION_ORDERS: tuple[BlockOrder, ...] = ("relu_preact", "pre")
ShortcutKind = Literal["identity", "projection", "zero_pad", "avg_down", "none"]
AttentionType = Literal["se", "eca"]
NormType = Literal["batch", "frozen_batch", "group", "evonorm_s0", "frn", "none"]
# The norm layers a plan holds (EvoNorm-S0 and FRN are layer kinds of their own; "none" has no layer).
NormLayerType = Literal["batch", "frozen_batch", "group"]
# The head's global pool before the classifier.
HeadPoolType = Literal["avg", "max"]
# A segmentation or multitask head's decoder.
DecoderType = Literal["transposed", "fpn", "unet"]
# How weights start: torchvision's kaiming-normal (fan-out) convs, or PyTorch's own per layer.
InitScheme = Literal["kaiming", "default"]
# What a plan is for: training (as lower() makes it) or its inference form (plan.inference).
PlanTarget = Literal["training", "inference"]
# A plan's pools: timm's AvgPool2dSame is avg_same; identity keeps a module path where nothing pools.
PoolType = Literal["max", "avg", "avg_same", "identity"]
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

# A block's forward, as the plan records it (``BlockPlan.steps``) and every back end runs it:
# ``fork`` keeps the current tensor as the shortcut; ``preact``, ``branch`` and ``after_add`` run
# the block's layers of that name on the current tensor; ``shortcut`` runs the shortcut's layers
# on what ``reads`` names (the fork, or the output of ``preact``: a pre-activation block's projection);
# ``drop_path`` drops the branch per sample (a no-op at rate 0); ``add`` adds the shortcut;
# ``activation`` applies the block's ``post_activation``.
# The block widths a layer's output channels can be, as the emitted classes name them: where
# values come from (the planner's width rule), not which numbers happen to match.
WidthName = Literal["in_channels", "first_channels", "mid_channels", "out_channels"]

# ``scale``: the branch times a tied stage's step size (h + dt * f(h), forward Euler), before the add.
# A block with a second input (a diffusion ResBlock's time embedding) splits its branch where the
# input enters: ``time_add`` adds the input's projection (the ``time`` layers), ``time_scale_shift``
# takes ``x * (1 + scale) + shift`` of it, and ``tail`` runs the rest of the branch.
BlockStepOp = Literal[
    "fork",
    "preact",
    "shortcut",
    "branch",
    "time_add",
    "time_scale_shift",
    "tail",
    "drop_path",
    "scale",
    "add",
    "after_add",
    "activation",
]
# The step ops that read a block's second input.
TIME_STEP_OPS: tuple[BlockStepOp, ...] = ("time_add", "time_scale_shift")
ShortcutInput = Literal["fork", "preact"]


@dataclass(frozen=True)
class BlockStep:
    op: BlockStepOp
    reads: ShortcutInput = "fork"
