"""The plan: a network with every block resolved. Plain frozen dataclasses, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from ..choices import (
    ActivationType,
    AttentionType,
    BlockOrder,
    BlockStep,
    HeadPoolType,
    InitScheme,
    NormType,
    PlanTarget,
    ShortcutKind,
    WidthName,
)
from .layers import Layer, Size

if TYPE_CHECKING:
    from .heads import DecoderPlan


@dataclass(frozen=True)
class Fold:
    """Where a layer of an inference plan takes its tensors from in a training checkpoint: the
    layer at ``source`` (its training path), with the batch norm at ``norm`` (eps ``eps``) folded
    into it when ``norm`` is set. Paths are relative to the block (or the network) that lists it."""

    path: str
    source: str
    norm: str | None = None
    eps: float = 0.0


def _sum_params(layers: tuple[Layer, ...]) -> int:
    return sum(layer.params for layer in layers)


def _sum_macs(layers: tuple[Layer, ...]) -> int:
    return sum(layer.macs for layer in layers)


@dataclass(frozen=True)
class BlockPlan:
    """One residual block.

    ``steps`` is the block's forward as data (see :class:`~resnet_gen.choices.BlockStep`): the
    order in which its layer groups run and the tensors they read. ``branch`` is the residual path
    in execution order and ``shortcut`` the skip path (empty for identity). Paths in both are
    relative to ``path``. For pre-activation blocks the first norm and activation (``preact``) run
    before both paths, as in He et al. 2016; ``after_add`` runs on the sum (the norm of Fig.
    4(b)), then ``post_activation``. ``first_channels`` and ``mid_channels`` are the widths the
    block's kind gave its first and middle convs (or the stage's ``inner_channels``).
    """

    path: str
    stage: int
    index: int
    type: str  # a registered kind's name (resnet_gen.blocks.registry.kind_of)
    order: BlockOrder
    in_channels: int
    first_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    dilation: int
    first_dilation: int
    groups: int
    in_size: Size
    out_size: Size
    shortcut_type: ShortcutKind
    steps: tuple[BlockStep, ...]
    preact: tuple[Layer, ...]
    branch: tuple[Layer, ...]
    shortcut: tuple[Layer, ...]
    after_add: tuple[Layer, ...]
    attention: AttentionType | None
    drop_path: float
    post_activation: ActivationType | None  # activation after the addition (post orders), else None
    zero_init: str | None  # relative path of the layer zeroed by zero_init_residual
    # Which block width each layer writes (relative path -> width), as its kind's rule gives it.
    width_names: tuple[tuple[str, WidthName], ...] = ()
    # Inference plans only: the layers that take folded or renamed tensors from a training checkpoint.
    folds: tuple[Fold, ...] = ()
    # A tied stage's step size dt (the ``scale`` step multiplies the branch by it); None: no scaling.
    step_size: float | None = None
    # A block with a second input (a diffusion ResBlock's time embedding): the layers that project
    # it (run on it at its injection step), the branch's layers after the injection, and its width.
    time: tuple[Layer, ...] = ()
    tail: tuple[Layer, ...] = ()
    time_channels: int = 0

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self.preact + self.branch + self.time + self.tail + self.shortcut + self.after_add

    # Counted once per block: a stage's repeated blocks are copies that carry the totals along.
    @cached_property
    def params(self) -> int:
        return _sum_params(self.layers)

    @cached_property
    def macs(self) -> int:
        return _sum_macs(self.layers)


@dataclass(frozen=True)
class StagePlan:
    """A stage's blocks. A tied stage holds one block, applied ``repeats`` times with the same
    weights (forward Euler with step ``step_size`` when the block scales its branch): its
    parameters are that block's, its MACs ``repeats`` times the block's."""

    path: str  # layer1
    index: int
    blocks: tuple[BlockPlan, ...]
    width: int
    stride: int
    dilation: int
    tied: bool = False
    repeats: int = 1  # how many times a tied stage applies its block; 1 untied
    step_size: float = 1.0  # a tied stage's dt
    # A tied stage's drop-path rate at each application, rising as its untied blocks' would (its
    # block's ``drop_path`` is the largest, so that the block has the module); () where all are 0.
    drop_paths: tuple[float, ...] = ()

    @property
    def depth(self) -> int:
        """How many blocks the stage runs: its blocks, or a tied stage's applications."""
        return self.repeats if self.tied else len(self.blocks)

    @property
    def tied_words(self) -> str | None:
        """What the report and diagram say of a tied stage: forward Euler, N steps of size h."""
        if not self.tied:
            return None
        return f"tied: {self.repeats} steps of h={self.step_size:g} (forward Euler)"

    @property
    def in_channels(self) -> int:
        return self.blocks[0].in_channels

    @property
    def out_channels(self) -> int:
        return self.blocks[-1].out_channels

    @property
    def out_size(self) -> Size:
        return self.blocks[-1].out_size

    # Counted once: the parameter limit and the report both read a stage's totals.
    @cached_property
    def params(self) -> int:
        return sum(block.params for block in self.blocks)

    @cached_property
    def macs(self) -> int:
        return sum(block.macs for block in self.blocks) * self.repeats


@dataclass(frozen=True)
class HeadPlan:
    """Global pool, flatten, optional dropout and classifier (``fc`` is None for pooled features)."""

    pool: HeadPoolType
    dropout: float
    fc: Layer | None
    in_channels: int
    num_classes: int

    @property
    def layers(self) -> tuple[Layer, ...]:
        return (self.fc,) if self.fc is not None else ()


@dataclass(frozen=True)
class FeatureTap:
    """One feature map a backbone returns: the output of top-level module ``module``.

    ``index`` follows the backbone numbering (0 = stem before its pool, i = stage ``layer{i}``);
    ``reduction`` is how many times smaller than the input it is (timm's ``feature_info``).
    """

    index: int
    module: str
    channels: int
    reduction: int
    size: Size


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    family: str
    input_channels: int
    input_size: Size
    stem: tuple[Layer, ...]
    stem_out_size: Size
    stem_channels: int
    stages: tuple[StagePlan, ...]
    final: tuple[Layer, ...]  # pre-activation nets: the last norm and activation
    head: HeadPlan | None
    init_scheme: InitScheme
    zero_init_residual: bool
    activation: ActivationType
    norm: NormType
    # Backbone use: the feature maps forward returns (empty: it returns logits) and the
    # top-level modules kept frozen (no gradients; frozen norms, no dropout or drop-path).
    features: tuple[FeatureTap, ...] = ()
    frozen: tuple[str, ...] = ()
    # Inference plans only (see plan.inference): the stem's and final layers' folds, and the
    # target the plan was made for.
    folds: tuple[Fold, ...] = ()
    target: PlanTarget = "training"
    # What the back ends read of the spec beyond its layers: the network's drop-path rate (the
    # emitted model's drop_path_rate argument; each block holds its own rate) and the sha256 of
    # the resolved spec (the emitted header's), so that no back end needs the Spec.
    drop_path: float = 0.0
    spec_hash: str = ""
    # A segmentation or multitask head's decoder (plan.heads); None for classifiers.
    decoder: DecoderPlan | None = None

    @property
    def blocks(self) -> tuple[BlockPlan, ...]:
        return tuple(block for stage in self.stages for block in stage.blocks)

    @property
    def feature_channels(self) -> int:
        return self.stages[-1].out_channels

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer of the network, stem to head, with full module paths."""
        out = list(self.stem)
        for block in self.blocks:
            out.extend(_prefixed(block.path, layer) for layer in block.layers)
        out.extend(self.final)
        if self.head is not None:
            out.extend(self.head.layers)
        if self.decoder is not None:
            out.extend(self.decoder.layers)
        return tuple(out)

    # Summed from the parts (stages hold their own totals; a tied stage counts its block's MACs
    # once per step), never through ``layers``, which copies every layer to give it its full path.
    @cached_property
    def params(self) -> int:
        ends = _sum_params((*self.stem, *self.final, *(self.head.layers if self.head is not None else ())))
        decoder = self.decoder.params if self.decoder is not None else 0
        return ends + sum(stage.params for stage in self.stages) + decoder

    @cached_property
    def macs(self) -> int:
        ends = _sum_macs((*self.stem, *self.final, *(self.head.layers if self.head is not None else ())))
        decoder = self.decoder.macs if self.decoder is not None else 0
        return ends + sum(stage.macs for stage in self.stages) + decoder


def _prefixed(prefix: str, layer: Layer) -> Layer:
    from dataclasses import replace

    return replace(layer, path=f"{prefix}.{layer.path}")
