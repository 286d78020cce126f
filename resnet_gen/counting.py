"""Cost counts in each convention people quote, read from the plan (no torch).

One network, three totals, because the tools count different things (batch 1, the spec's input,
the network in eval mode, one multiply-add = one MAC = one "flop" in fvcore's and ptflops' words):

- ``torchvision``: conv and linear multiply-adds, no biases: the papers' and torchvision's
  GFLOPS column (our default, ``Plan.macs``).
- ``fvcore``: what ``fvcore.nn.FlopCountAnalysis`` counts by default: conv and linear
  multiply-adds (no biases), batch norm as 2 per element (eval mode, affine), group norm as 5 per
  element, adaptive average pooling as 1 per input element, and the weight standardisation of a
  StdConv as a training-mode batch norm (4 per weight). Pooling windows, activations, adds,
  multiplies, softmax and padding are not counted.
- ``ptflops``: what ``ptflops.get_model_complexity_info`` (pytorch backend, its defaults) reports:
  its module hooks (``nn.Conv1d/2d`` with bias, ``nn.Linear`` with bias, ``nn.BatchNorm2d`` and
  ``nn.GroupNorm`` at 2 per element, ReLU/ELU/LeakyReLU/GELU and every pooling at 1 per element,
  on exact module types only) plus its patched functions (``F.relu``, ``F.elu``, ``F.gelu``,
  ``F.silu``, the ``F.*pool*`` functions at 1 per element; ``Tensor.add``/``mul`` calls at 1 per
  output element), so a ReLU module or pooling module counts twice (its hook and the function it
  calls). Modules of other types (our StdConv2d, FrozenBatchNorm2d, BlurPool2d, EvoNorm, FRN)
  count only the patched calls they make.

Activations are fvcore's ``ActivationCountAnalysis`` (timm's benchmark "activations"): the
elements of every conv and linear output, at batch 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Literal, get_args

from .choices import HeadPoolType
from .errors import SpecError
from .plan import layers as L
from .plan.types import Plan

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # Python 3.10: pydantic's dependency has it
    from typing_extensions import assert_never

Convention = Literal["torchvision", "fvcore", "ptflops"]
CONVENTIONS: tuple[Convention, ...] = get_args(Convention)
CONVENTION_RULES: dict[Convention, str] = {
    "torchvision": "conv + linear multiply-adds, biases not counted (papers, torchvision)",
    "fvcore": "conv + linear multiply-adds, batch norm 2/element, group norm 5/element, global average pool 1/element",
    "ptflops": "conv + linear with biases, batch/group norm 2/element, ReLU and pooling 2/element (module hook + function)",
}
# ptflops: per element of an activation's output, its module hook plus the patched function.
PTFLOPS_ACTIVATION = {
    "relu": 2,
    "elu": 2,
    "gelu": 2,
    "leaky_relu": 1,  # hook only: F.leaky_relu is not patched
    "silu": 1,  # no nn.SiLU hook, F.silu patched
    "mish": 0,
    "hardswish": 0,
    "tanh": 0,
    "identity": 0,
}

Shape = tuple[int, ...]  # (channels, height, width) of a feature map, (features,) after flattening


@dataclass(frozen=True)
class HeadPool:
    """The head's global pool (``global_pool``): not a plan layer, but it costs in two conventions."""

    path: str
    type: HeadPoolType
    params = 0
    macs = 0


@dataclass(frozen=True)
class DropPath:
    """A block's stochastic depth (``drop_path``): not a plan layer; an identity in eval mode."""

    path: str
    rate: float
    params = 0
    macs = 0


Step = L.Layer | HeadPool | DropPath


@dataclass(frozen=True)
class Placed:
    """One module of the network in execution order, with the shapes it reads and writes (batch 1).

    ``reads`` and ``writes`` number the tensors of the forward pass (0 is the network's input; a
    residual sum is a tensor of its own), so that a memory model can tell which layers share one."""

    step: Step
    in_shape: Shape
    out_shape: Shape
    reads: int
    writes: int


@dataclass(frozen=True)
class Counts:
    """One module's cost in each convention, and its activations (conv and linear outputs)."""

    torchvision: int
    fvcore: int
    ptflops: int
    activations: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.torchvision + other.torchvision,
            self.fvcore + other.fvcore,
            self.ptflops + other.ptflops,
            self.activations + other.activations,
        )

    def convention(self, name: Convention) -> int:
        if name == "torchvision":
            return self.torchvision
        if name == "fvcore":
            return self.fvcore
        if name == "ptflops":
            return self.ptflops
        assert_never(name)


ZERO = Counts(0, 0, 0, 0)


def _numel(shape: Shape) -> int:
    out = 1
    for size in shape:
        out *= size
    return out


def out_shape(layer: Step, shape: Shape) -> Shape:
    """The shape a layer writes, given the shape it reads."""
    if isinstance(layer, L.Conv):  # StdConv is a Conv
        return (layer.out_channels, *layer.out_size)
    if isinstance(layer, L.KindLayer):  # a block kind's own layer (ResNeSt's split attention)
        return layer.out_shape(shape)
    if isinstance(layer, (L.Pool, L.ConstantPad)):
        return (shape[0], *layer.out_size)
    if isinstance(layer, L.BlurPool):
        return (layer.channels, *layer.out_size)
    if isinstance(layer, L.ZeroPadShortcut):
        stride = layer.stride
        return (layer.out_channels, -(-shape[1] // stride), -(-shape[2] // stride))
    if isinstance(layer, L.Linear):
        return (layer.out_features,)
    if isinstance(layer, L.ConvTranspose):
        return (layer.out_channels, *layer.out_size)
    if isinstance(layer, HeadPool):
        return (shape[0], 1, 1)
    if isinstance(layer, DropPath):
        return shape
    if isinstance(
        layer,
        (L.Norm, L.Act, L.Dropout, L.SqueezeExcite, L.EfficientChannelAttention, L.EvoNormS0, L.FilterResponseNorm),
    ):
        return shape
    assert_never(layer)


def placed(plan: Plan) -> tuple[Placed, ...]:
    """Every module the forward pass runs, stem to head, with full paths and shapes.

    Adds what the plan keeps outside ``Plan.layers``: each block's drop-path and activation after
    the add (``act_out``), and the head's global pool and dropout, as the live network has them."""
    if plan.decoder is not None:
        # The decoders' upsampling, concatenations and sums are not modelled in these conventions.
        raise SpecError(
            f"{plan.name}: the counting conventions, activations, per-layer table and memory estimate"
            " do not cover decoder heads yet; info without --count/--depth/--batch reports their params and MACs"
        )
    out: list[Placed] = []
    tensors = 0  # the last tensor number handed out

    def new_tensor() -> int:
        nonlocal tensors
        tensors += 1
        return tensors

    def run(layers: tuple[Step, ...], start: tuple[Shape, int], prefix: str = "") -> tuple[Shape, int]:
        shape, tensor = start
        for layer in layers:
            if prefix:
                layer = replace(layer, path=f"{prefix}.{layer.path}")
            after, written = out_shape(layer, shape), new_tensor()
            out.append(Placed(layer, shape, after, tensor, written))
            shape, tensor = after, written
        return shape, tensor

    current = run(plan.stem, ((plan.input_channels, *plan.input_size), 0))
    for block in plan.blocks:
        block_in = current
        current = run(block.preact, current, block.path)
        shortcut_in = current if block.preact and block.shortcut else block_in
        current = run(block.branch, current, block.path)
        dropped = None
        if block.drop_path:
            step = DropPath(f"{block.path}.drop_path", block.drop_path)
            dropped = Placed(step, current[0], current[0], current[1], new_tensor())
            current = (current[0], dropped.writes)
        if block.shortcut_type != "none":
            run(block.shortcut, shortcut_in, block.path)
            current = (current[0], new_tensor())  # the residual sum
        current = run(block.after_add, current, block.path)
        if dropped is not None:  # listed where the module is registered, after the add's layers
            out.append(dropped)
        if block.post_activation is not None:
            current = run((L.Act(f"{block.path}.act_out", block.post_activation),), current)
    if plan.features:  # a backbone returns its taps: no final layers, no head
        return tuple(out)
    current = run(plan.final, current)
    if plan.head is not None:
        pooled_shape, pooled = run((HeadPool("global_pool", plan.head.pool),), current)
        current = ((pooled_shape[0],), pooled)  # flattened: a view of the pooled tensor
        if plan.head.dropout:
            current = run((L.Dropout("head_dropout", plan.head.dropout),), current)
        if plan.head.fc is not None:
            run((plan.head.fc,), current)
    return tuple(out)


def counts(item: Placed) -> Counts:
    """One module's cost in each convention (see the module docstring for the rules)."""
    layer, n_in, n_out = item.step, _numel(item.in_shape), _numel(item.out_shape)
    if isinstance(layer, L.StdConv):  # before Conv: a subclass
        weights = layer.out_channels * (layer.in_channels // layer.groups) * layer.kernel**2
        # fvcore: the standardisation is a training-mode batch norm without affine terms (4 per
        # weight); ptflops: StdConv2d is not an nn.Conv2d by exact type, so it has no hook.
        return Counts(layer.macs, layer.macs + 4 * weights, 0, n_out)
    if isinstance(layer, L.Conv):
        bias = n_out if layer.bias else 0
        return Counts(layer.macs, layer.macs, layer.macs + bias, n_out)
    if isinstance(layer, L.Norm):
        if layer.type == "batch":
            return Counts(0, 2 * n_in, 2 * n_in, 0)
        if layer.type == "frozen_batch":  # F.batch_norm in eval mode; a custom module to ptflops
            return Counts(0, 2 * n_in, 0, 0)
        return Counts(0, 5 * n_in, 2 * n_in, 0)  # group norm: fvcore's norm counter, ptflops' bn hook
    if isinstance(layer, L.Act):
        return Counts(0, 0, PTFLOPS_ACTIVATION[layer.type] * n_out, 0)
    if isinstance(layer, L.Pool):
        if layer.type in ("max", "avg"):  # nn.MaxPool2d / nn.AvgPool2d: hook + F.*_pool2d
            return Counts(0, 0, 2 * n_in, 0)
        if layer.type == "avg_same":  # F.avg_pool2d on the padded input
            pad = layer.kernel - 1
            return Counts(0, 0, item.in_shape[0] * (item.in_shape[1] + pad) * (item.in_shape[2] + pad), 0)
        return ZERO
    if isinstance(layer, (L.Dropout, L.ZeroPadShortcut, L.ConstantPad)):
        return ZERO
    if isinstance(layer, L.SqueezeExcite):
        channels, reduced = layer.channels, layer.reduced
        act = PTFLOPS_ACTIVATION[layer.activation] * reduced
        return Counts(layer.macs, layer.macs, layer.macs + reduced + channels + act, reduced + channels)
    if isinstance(layer, L.EfficientChannelAttention):
        return Counts(layer.macs, layer.macs, layer.macs, layer.channels)
    if isinstance(layer, L.Linear):
        bias = layer.out_features if layer.bias else 0
        return Counts(layer.macs, layer.macs, layer.macs + bias, layer.out_features)
    if isinstance(layer, L.EvoNormS0):  # ptflops sees only its ``var.add(eps)``: one per group
        return Counts(0, 0, layer.groups if layer.apply_act else 0, 0)
    if isinstance(layer, L.FilterResponseNorm):  # ptflops sees only its ``mean_square.add(eps)``
        return Counts(0, 0, layer.channels, 0)
    if isinstance(layer, L.BlurPool):  # an F.conv2d: counted by fvcore, invisible to ptflops' hooks
        return Counts(layer.macs, layer.macs, 0, n_out)
    if isinstance(layer, L.KindLayer):
        return Counts(*layer.counts())
    if isinstance(layer, L.ConvTranspose):  # both tools count its input pixels, as torch does; ptflops adds the bias
        bias = n_out if layer.bias else 0
        return Counts(layer.macs, layer.macs, layer.macs + bias, n_out)
    if isinstance(layer, HeadPool):  # fvcore counts adaptive_avg_pool2d only; ptflops hook + function
        return Counts(0, n_in if layer.type == "avg" else 0, 2 * n_in, 0)
    if isinstance(layer, DropPath):
        return ZERO
    assert_never(layer)


def total_counts(plan: Plan) -> Counts:
    """The whole network's counts in every convention."""
    return sum((counts(item) for item in placed(plan)), ZERO)


def check_convention(name: str) -> Convention:
    """``name`` as a Convention, or a ValueError that lists the choices."""
    for convention in CONVENTIONS:
        if name == convention:
            return convention
    raise ValueError(f"unknown counting convention {name!r}; choose one of {', '.join(CONVENTIONS)}")
