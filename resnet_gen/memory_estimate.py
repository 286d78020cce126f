"""Training-memory estimate from the plan (no torch): what one training step holds at its peak.

parameters and buffers + gradients + optimizer state + the input batch + the tensors torch's
autograd saves for the backward pass + a working set, all in one dtype (the network cast to it,
as ``model.to(torch.bfloat16)``).

Saved tensors follow the backward formulas of torch's autograd for each layer kind: a conv or
linear saves its input, a batch or group norm its input (and float32 statistics per channel or
group), ReLU its output (in place: the same tensor its input was), SiLU/GELU/Mish/Hardswish their
input (in place: a copy of it), max pooling its input and int64 indices, average pooling its input,
dropout its mask (in the input's dtype on CPU), drop-path one value per sample, reflection
padding its input, attention modules their input and their small pooled tensors, a transposed
conv its input; residual sums, constant padding, slicing, the head's global average (a mean) and
a decoder's resizes, sums, concatenations and crops save nothing. A tensor several layers save is
counted once. The working set is the larger of the backward pass's biggest pair of gradients (a
layer's output and input) and the optimizer step's temporaries (AdamW: two copies of the biggest
layer's parameters).

Not modelled: the loss's own tensors, allocator fragmentation, the convolution kernels' scratch
buffers (they depend on the library and the CPU), and mixed precision (float32
master weights with bfloat16 activations): for that, add the float32 copies yourself.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from .counting import DecoderOp, DropPath, HeadPool, Placed, Shape, Step, placed
from .plan import layers as L
from .plan.types import Plan

if sys.version_info >= (3, 11):
    from typing import assert_never
else:  # Python 3.10: pydantic's dependency has it
    from typing_extensions import assert_never

Dtype = Literal["fp32", "bf16", "fp16"]
DTYPES: tuple[Dtype, ...] = get_args(Dtype)
DTYPE_BYTES: dict[Dtype, int] = {"fp32": 4, "bf16": 2, "fp16": 2}
Optimizer = Literal["sgd", "sgd_momentum", "adamw"]
OPTIMIZERS: tuple[Optimizer, ...] = get_args(Optimizer)
# Copies of the trainable parameters each optimizer keeps: momentum buffer; AdamW's two moments.
STATE_COPIES: dict[Optimizer, int] = {"sgd": 0, "sgd_momentum": 1, "adamw": 2}
# Parameter-sized temporaries of one parameter's update (torch's single-tensor CPU optimizers):
# SGD updates in place; AdamW's denominator is a square root, then a quotient.
_STEP_TEMPORARIES: dict[Optimizer, int] = {"sgd": 0, "sgd_momentum": 0, "adamw": 2}
_INDEX_BYTES = 8  # max pooling's int64 indices

# Activations whose backward reads their output (so in place they save the tensor they overwrote).
_SAVE_OUTPUT = {"relu", "tanh"}
_SAVE_OUTPUT_INPLACE = {"leaky_relu", "elu"}


@dataclass(frozen=True)
class Saves:
    """What one layer keeps for its backward pass, per sample unless said otherwise."""

    input: bool = False  # the tensor it reads
    output: bool = False  # the tensor it writes
    elements: int = 0  # further tensors of its own, in the dtype
    bytes: int = 0  # further tensors in other dtypes (indices, masks)
    stats: int = 0  # per batch, not per sample: norm statistics, in the dtype
    inplace: bool = False  # writes over its input


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per item of one training step's peak, and their total."""

    batch: int
    dtype: Dtype
    optimizer: Optimizer
    parameters: int  # parameters and buffers
    gradients: int
    optimizer_state: int
    input: int
    activations: int  # saved for the backward pass
    working: int  # the backward's largest pair of gradients, or the optimizer step's temporaries

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.input + self.activations + self.working

    def rows(self) -> tuple[tuple[str, int], ...]:
        """(item, bytes), the total last."""
        return (
            ("parameters and buffers", self.parameters),
            ("gradients", self.gradients),
            (f"optimizer state ({self.optimizer})", self.optimizer_state),
            ("input batch", self.input),
            ("activations saved for backward", self.activations),
            ("working set", self.working),
            ("total", self.total),
        )


def _numel(shape: Shape) -> int:
    out = 1
    for size in shape:
        out *= size
    return out


def _activation_saves(kind: str, inplace: bool, numel: int) -> Saves:
    if kind == "identity":
        return Saves(inplace=True)
    if kind in _SAVE_OUTPUT or (inplace and kind in _SAVE_OUTPUT_INPLACE):
        return Saves(output=True, inplace=inplace)
    if inplace:  # the backward needs the input the op overwrites: autograd keeps a copy
        return Saves(elements=numel, inplace=True)
    return Saves(input=True)


def saves(item: Placed) -> Saves:
    """What a layer saves for backward, from torch's autograd formulas (training mode)."""
    layer, n_in, n_out = item.step, _numel(item.in_shape), _numel(item.out_shape)
    if isinstance(layer, L.StdConv):  # before Conv: the standardised weight and its statistics
        weights = layer.out_channels * (layer.in_channels // layer.groups) * layer.kernel**2
        return Saves(input=True, stats=weights + 2 * layer.out_channels)
    if isinstance(layer, L.Conv):
        return Saves(input=True)
    if isinstance(layer, L.Norm):
        if layer.type == "group":  # mean and reciprocal std per sample and group
            return Saves(input=True, elements=2 * layer.groups)
        if layer.type == "frozen_batch":  # eval-mode batch norm: no batch statistics
            return Saves(input=True)
        return Saves(input=True, stats=2 * layer.channels)
    if isinstance(layer, L.Act):
        return _activation_saves(layer.type, layer.inplace, n_in)
    if isinstance(layer, L.Pool):
        if layer.type == "max":
            return Saves(input=True, bytes=n_out * _INDEX_BYTES)
        if layer.type == "avg":
            return Saves(input=True)
        if layer.type == "avg_same":  # pads first: the padded copy is what the pool saves
            pad = layer.kernel - 1
            return Saves(elements=item.in_shape[0] * (item.in_shape[1] + pad) * (item.in_shape[2] + pad))
        return Saves(inplace=True)
    if isinstance(layer, L.Dropout):
        # On CPU the mask is a tensor of the input's dtype (scaled 0/1 values), not bools.
        return Saves(elements=n_out) if layer.rate else Saves(inplace=True)
    if isinstance(layer, L.SqueezeExcite):  # pooled input, reduced activation, sigmoid gate
        return Saves(input=True, elements=2 * layer.channels + layer.reduced)
    if isinstance(layer, L.EfficientChannelAttention):  # pooled input, sigmoid gate
        return Saves(input=True, elements=2 * layer.channels)
    if isinstance(layer, (L.ZeroPadShortcut, L.ConstantPad)):
        return Saves()
    if isinstance(layer, L.Linear):
        return Saves(input=True)
    if isinstance(layer, L.EvoNormS0):
        # x * sigmoid(v x) / std, then the affine: sigmoid's output, the product, the expanded
        # std and the quotient, each as big as the input.
        # The expanded std is a view, not a copy, when each group is one channel; the square root
        # of the variance is one per sample and group.
        if not layer.apply_act:
            return Saves(input=True)
        full = 4 if layer.channels > layer.groups else 3
        return Saves(input=True, elements=full * n_in + layer.groups)
    if isinstance(layer, L.FilterResponseNorm):  # the normalised map, and the affine's output for the TLU
        return Saves(input=True, elements=(2 if layer.apply_act else 1) * n_in + layer.channels)
    if isinstance(layer, L.BlurPool):  # reflection padding saves its input; the filter, the padded copy
        return Saves(
            input=True,
            elements=layer.channels * (item.in_shape[1] + 2 * layer.padding) * (item.in_shape[2] + 2 * layer.padding),
        )
    if isinstance(layer, L.KindLayer):
        elements, stats = layer.saved()
        return Saves(input=True, elements=elements, stats=stats)
    if isinstance(layer, L.ConvTranspose):  # its backward needs its input, as a conv's
        return Saves(input=True)
    if isinstance(layer, HeadPool):
        if layer.type == "max":
            return Saves(input=True, bytes=n_out * _INDEX_BYTES)
        return Saves()  # a global average pool is a mean: its backward needs only the shape
    if isinstance(layer, DropPath):  # the branch times a per-sample mask: the multiply saves the mask
        return Saves(elements=1)
    if isinstance(layer, DecoderOp):  # resizes, sums, concatenations and pads: their backward needs only shapes
        return Saves()
    assert_never(layer)


def buffer_elements(layer: Step) -> int:
    """Elements of a layer's buffers (batch-norm statistics, BlurPool's filter)."""
    if isinstance(layer, L.Norm):
        if layer.type == "batch":
            return 2 * layer.channels + 1  # running mean and variance, num_batches_tracked
        if layer.type == "frozen_batch":
            return 4 * layer.channels + 1
        return 0
    if isinstance(layer, L.KindLayer):
        return layer.buffer_elements()
    if isinstance(layer, L.BlurPool):
        return layer.channels * layer.filter_size**2
    if isinstance(
        layer,
        (
            L.Conv,  # StdConv too
            L.Act,
            L.Pool,
            L.Dropout,
            L.SqueezeExcite,
            L.EfficientChannelAttention,
            L.ZeroPadShortcut,
            L.Linear,
            L.EvoNormS0,
            L.FilterResponseNorm,
            L.ConstantPad,
            L.ConvTranspose,
            HeadPool,
            DropPath,
            DecoderOp,
        ),
    ):
        return 0
    assert_never(layer)


def _dtype(name: str) -> Dtype:
    for dtype in DTYPES:
        if name == dtype:
            return dtype
    raise ValueError(f"unknown dtype {name!r}; choose one of {', '.join(DTYPES)}")


def _optimizer(name: str) -> Optimizer:
    for optimizer in OPTIMIZERS:
        if name == optimizer:
            return optimizer
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def estimate(plan: Plan, batch: int, dtype: Dtype | str = "fp32", optimizer: Optimizer | str = "sgd") -> MemoryEstimate:
    """The memory one training step of ``batch`` samples holds at its peak (see the module docstring)."""
    return estimate_of(
        placed(plan), plan.params, (plan.input_channels, *plan.input_size), batch, dtype, optimizer, plan.frozen
    )


def estimate_of(
    steps: Sequence[Placed],
    params: int,
    input_shape: Shape,
    batch: int,
    dtype: Dtype | str = "fp32",
    optimizer: Optimizer | str = "sgd",
    frozen: Collection[str] = (),
) -> MemoryEstimate:
    """:func:`estimate` of any network's placed modules (a classifier's, or a U-Net's), with its
    parameter count, the shape of one input sample and its frozen top-level modules."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a whole number of 1 or more, not {batch!r}")
    dtype, optimizer = _dtype(dtype), _optimizer(optimizer)
    size = DTYPE_BYTES[dtype]
    # By path: a tied stage's block is placed once per application but holds its weights once.
    layers = {item.step.path: item.step for item in steps}
    trainable = sum(layer.params for path, layer in layers.items() if path.split(".")[0] not in frozen)
    alias: dict[int, int] = {}  # tensor written in place -> the tensor it overwrote

    def root(tensor: int) -> int:
        while tensor in alias:
            tensor = alias[tensor]
        return tensor

    saved: dict[int, int] = {}  # tensor -> elements per sample
    own = stats = 0
    largest = _numel(input_shape)
    grad_flows = False  # nothing before the first trainable layer needs a backward pass
    for item in steps:
        layer = item.step
        learns = layer.params > 0 and layer.path.split(".")[0] not in frozen
        rule = saves(item)
        if rule.inplace:
            alias[item.writes] = item.reads
        if not (grad_flows or learns):
            continue
        grad_flows = True
        largest = max(largest, _numel(item.in_shape) + _numel(item.out_shape))
        if rule.input:
            saved[root(item.reads)] = _numel(item.in_shape)
        if rule.output:
            saved[root(item.writes)] = _numel(item.out_shape)
        own += rule.elements * size + rule.bytes
        stats += rule.stats
    saved.pop(0, None)  # the input batch: counted as such
    buffers = sum(buffer_elements(layer) for layer in layers.values())
    biggest_layer = max(item.step.params for item in steps)
    return MemoryEstimate(
        batch=batch,
        dtype=dtype,
        optimizer=optimizer,
        parameters=(params + buffers) * size,
        gradients=trainable * size,
        optimizer_state=STATE_COPIES[optimizer] * trainable * size,
        input=batch * _numel(input_shape) * size,
        activations=batch * (sum(saved.values()) * size + own) + stats * size,
        working=max(batch * largest * size, _STEP_TEMPORARIES[optimizer] * biggest_layer * size),
    )
