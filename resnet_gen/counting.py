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

Decoder heads (``head.type: segmentation | multitask``) add the tensor operations of their
forward that are no module: resizes (``F.interpolate``), FPN's sums, U-Net's concatenations and
its pad to the skip's size. fvcore counts a nearest resize as 1 and a bilinear one as 4 per output
element (its ``upsample_*2d`` handles) and nothing for the rest; ptflops counts every resize as 1
per output element (its patched ``F.interpolate``) and nothing for the rest (``+`` and
``torch.cat`` are not the functions it patches). Transposed convs count their input pixels in
both tools, as torch does, ptflops adding the bias per output element.

Activations are fvcore's ``ActivationCountAnalysis`` (timm's benchmark "activations"): the
elements of every conv (transposed convs too) and linear output, at batch 1.

Diffusion U-Nets (``layout: unet``, placed by ``resnet_gen.unet.report.placed_unet``, their own
layers in ``resnet_gen.unet.plan``) follow the same rules, at batch 1 with one timestep, where
their layers are the classifiers' (convs and linears with biases, GroupNorm, SiLU and the other
activations, average pooling, dropout); what classifiers lack counts so (:data:`UNET_CONVENTION_RULES`):

- ``torchvision`` (``MACS_CONVENTION`` in ``resnet_gen.unet.plan``): convs and linears, the
  timestep MLP and each ResBlock's time projection once per sample, attention's q, k, v and output
  projections at every position, and its two matrix products (``q @ k^T`` and the weights times
  ``v``); nothing else.
- ``fvcore``: the same, plus GroupNorm at 5 per element and the nearest up-sampling at 1 per
  output element (its ``upsample_nearest2d`` handle). The sinusoid, the softmax and its scale,
  the time embedding's addition or scale and shift, residual sums, concatenations and padding
  count nothing. Activations add the elements of both attention products' outputs.
- ``ptflops``: convs and linears with their biases (an attention projection's bias at every
  position), GroupNorm at 2 per element, SiLU at 1 (``F.silu``), ReLU and GELU at 2 (hook and
  function), average pooling at 2, the nearest up-sampling at 1 per output element
  (``F.interpolate``). Attention's products count nothing (``@`` is not the ``torch.matmul`` it
  patches), nor its softmax (``torch.softmax``, not ``F.softmax``), nor the sinusoid, the sums,
  the concatenations and the padding.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal, get_args

from .choices import HeadPoolType
from .plan import layers as L
from .plan.heads import DECODER, DecoderPlan
from .plan.layers import Size
from .plan.types import Plan

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # Python 3.10: pydantic's dependency has it
    from typing_extensions import assert_never

Convention = Literal["torchvision", "fvcore", "ptflops"]
CONVENTIONS: tuple[Convention, ...] = get_args(Convention)
CONVENTION_RULES: dict[Convention, str] = {
    "torchvision": "conv + linear multiply-adds, biases not counted (papers, torchvision)",
    "fvcore": "conv + linear multiply-adds, batch norm 2/element, group norm 5/element, global average pool 1/element,"
    " resize 1 (nearest) or 4 (bilinear)/output element",
    "ptflops": "conv + linear with biases, batch/group norm 2/element, ReLU and pooling 2/element (module hook + function),"
    " resize 1/output element",
}
UNET_CONVENTION_RULES: dict[Convention, str] = {
    "torchvision": "conv + linear + attention's two matmuls, batch 1 (see resnet_gen.unet.plan.MACS_CONVENTION)",
    "fvcore": "conv + linear + attention's two matmuls, group norm 5/element, nearest up-sampling 1/output element;"
    " not the sinusoid, softmax, activations, sums, concatenations or padding",
    "ptflops": "conv + linear with biases (attention's at every position), group norm 2/element, SiLU 1 and"
    " ReLU/GELU 2/element, average pooling 2/element, nearest up-sampling 1/output element; not attention's"
    " matmuls (@) or softmax (torch.softmax), the sinusoid, sums, concatenations or padding",
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


DecoderOpType = Literal["nearest", "bilinear", "add", "concat", "pad"]


@dataclass(frozen=True)
class DecoderOp:
    """A tensor operation of a decoder's forward that is no module: a resize (``nearest`` or
    ``bilinear`` ``F.interpolate``), the sum of two maps (``add``), a concatenation along the
    channels (``concat``) or U-Net's crop or pad to the skip's size (``pad``). ``path`` is the
    module whose forward runs it; ``shape`` the tensor it writes."""

    path: str
    type: DecoderOpType
    shape: Shape
    params = 0
    macs = 0


Step = L.Layer | HeadPool | DropPath | DecoderOp


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
    if isinstance(layer, DecoderOp):
        return layer.shape
    if isinstance(
        layer,
        (L.Norm, L.Act, L.Dropout, L.SqueezeExcite, L.EfficientChannelAttention, L.EvoNormS0, L.FilterResponseNorm),
    ):
        return shape
    assert_never(layer)


def placed(plan: Plan) -> tuple[Placed, ...]:
    """Every module the forward pass runs, stem to head, with full paths and shapes.

    Adds what the plan keeps outside ``Plan.layers``: each block's drop-path and activation after
    the add (``act_out``), the head's global pool and dropout, and a decoder's resizes, sums and
    concatenations, as the live network has them, each where its module is registered."""
    out: list[Placed] = []
    tensors = 0  # the last tensor number handed out

    def new_tensor() -> int:
        nonlocal tensors
        tensors += 1
        return tensors

    # The map each top-level stem module writes and each stage's output: what a decoder reads.
    outputs: dict[str, tuple[Shape, int]] = {}

    def run(layers: tuple[Step, ...], start: tuple[Shape, int], prefix: str = "") -> tuple[Shape, int]:
        shape, tensor = start
        for layer in layers:
            if prefix:
                layer = replace(layer, path=f"{prefix}.{layer.path}")
            after, written = out_shape(layer, shape), new_tensor()
            out.append(Placed(layer, shape, after, tensor, written))
            shape, tensor = after, written
        return shape, tensor

    current: tuple[Shape, int] = (plan.input_channels, *plan.input_size), 0
    for layer in plan.stem:
        current = run((layer,), current)
        outputs[layer.path.split(".")[0]] = current
    # A tied stage's one block runs once per application.
    applied = [block for stage in plan.stages for _ in range(stage.repeats) for block in stage.blocks]
    for block in applied:
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
        outputs[block.path.split(".")[0]] = current
    if plan.features:  # a backbone returns its taps: no final layers, no head
        return tuple(out)
    current = run(plan.final, current)
    if plan.stages:  # a decoder's tap on the last stage reads the map after the final layers
        outputs[plan.stages[-1].path] = current
    if plan.head is not None:
        pooled_shape, pooled = run((HeadPool("global_pool", plan.head.pool),), current)
        current = ((pooled_shape[0],), pooled)  # flattened: a view of the pooled tensor
        if plan.head.dropout:
            current = run((L.Dropout("head_dropout", plan.head.dropout),), current)
        if plan.head.fc is not None:
            run((plan.head.fc,), current)
    if plan.decoder is not None:  # registered after a multitask net's head (it runs before it)
        features = [outputs[tap.module] for tap in plan.decoder.taps]
        out.extend(_decoder(plan.decoder, features, plan.input_size, new_tensor))
    return tuple(out)


def _decoder(
    decoder: DecoderPlan, features: list[tuple[Shape, int]], input_size: Size, new_tensor: Callable[[], int]
) -> list[Placed]:
    """A decoder's modules and tensor operations in the order its forward (runtime/decoders.py) runs them."""
    out: list[Placed] = []
    modules = {layer.path: layer for layer in decoder.layers}

    def step(layer: Step, start: tuple[Shape, int]) -> tuple[Shape, int]:
        after, written = out_shape(layer, start[0]), new_tensor()
        out.append(Placed(layer, start[0], after, start[1], written))
        return after, written

    def op(kind: DecoderOpType, start: tuple[Shape, int], shape: Shape) -> tuple[Shape, int]:
        return step(DecoderOp(DECODER, kind, shape), start)

    def sequence(prefix: str, start: tuple[Shape, int]) -> tuple[Shape, int]:
        """The decoder's layers under ``prefix`` (an nn.Sequential), in order."""
        for layer in decoder.layers:
            if layer.path.startswith(f"{prefix}."):
                start = step(layer, start)
        return start

    if decoder.type == "transposed":
        x = sequence(f"{DECODER}.layers", features[-1])
    elif decoder.type == "fpn":
        levels = len(features)
        laterals = [step(modules[f"{DECODER}.lateral.{i}"], features[i]) for i in range(levels)]
        for level in range(levels - 1, 0, -1):  # top-down: nearest upsampling added to the finer lateral
            finer = laterals[level - 1][0]
            op("nearest", laterals[level], finer)
            laterals[level - 1] = op("add", laterals[level - 1], finer)
        smoothed = [step(modules[f"{DECODER}.smooth.{i}"], laterals[i]) for i in range(levels)]
        x = smoothed[0]
        for coarser in smoothed[1:]:  # every level resized to the finest and summed
            op("bilinear", coarser, x[0])
            x = op("add", x, x[0])
        x = step(modules[f"{DECODER}.classifier"], x)
    elif decoder.type == "unet":
        x = features[-1]
        for level, skip in enumerate(reversed(features[:-1])):
            x = step(modules[f"{DECODER}.up.{level}"], x)
            x = op("pad", x, (x[0][0], *skip[0][1:]))
            x = op("concat", x, (x[0][0] + skip[0][0], *skip[0][1:]))
            x = sequence(f"{DECODER}.blocks.{level}", x)
        x = step(modules[f"{DECODER}.classifier"], x)
    else:
        raise TypeError(f"no counting model for decoder {decoder.type!r}")
    op("bilinear", x, (x[0][0], *input_size))  # the mask at the input's size
    return out


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
    if isinstance(layer, DecoderOp):  # fvcore's upsample handles: nearest 1, bilinear 4 per output element
        if layer.type in ("nearest", "bilinear"):
            return Counts(0, n_out * (1 if layer.type == "nearest" else 4), n_out, 0)
        return ZERO
    assert_never(layer)


def total_counts(plan: Plan) -> Counts:
    """The whole network's counts in every convention."""
    return total_of(placed(plan))


def total_of(steps: Iterable[Placed]) -> Counts:
    """The counts of a network's placed modules (a classifier's :func:`placed`, or a U-Net's)."""
    return sum((counts(item) for item in steps), ZERO)


def check_convention(name: str) -> Convention:
    """``name`` as a Convention, or a ValueError that lists the choices."""
    for convention in CONVENTIONS:
        if name == convention:
            return convention
    raise ValueError(f"unknown counting convention {name!r}; choose one of {', '.join(CONVENTIONS)}")
