"""The block kinds: what one kind of residual block must say, and the registry that holds them.

A kind is one module in this package (``basic.py``, ``bottleneck.py``, ``resnest.py``) that
defines a :class:`BlockKind` subclass and calls :func:`register` on it. The spec, the planner,
the report and the diagram ask :func:`kind_of` (or :func:`kinds`) instead of branching on
``block.type``, so adding a kind means adding one module and one line in :data:`KIND_MODULES`.
A kind with a layer torch has not got adds two more files, four in all (ResNeSt's: ``resnest.py``,
``runtime/split_attention.py``, ``templates/layers/SplitAttention.py.j2``, its line here): the
layer's torch class in a module of :mod:`resnet_gen.runtime` (found there by reading the files,
with no table to extend) and the template that writes it in emitted source.

The interface a kind implements:

* ``name``: the spec's ``block.type``; ``options``: its pydantic model, a subclass of
  :class:`~resnet_gen.spec.model.BlockSpec` whose ``type`` is ``Literal[name]`` and which takes
  only its own options (a key of another kind is refused with the message in ``refused``, or
  accepted and dropped when it has the value in ``fixed``, the value that kind's form implies);
* ``class_name`` and ``title``: what the emitter calls its class and the report and diagram call it;
* ``inner_convs``: how many widths a stage's ``inner_channels`` gives per block (``inner_shape``
  says which, for messages);
* :meth:`BlockKind.expansion`, :meth:`BlockKind.widths`, :meth:`BlockKind.groups`: the width rule
  (:meth:`BlockKind.width_rule` writes it out for messages);
* :meth:`BlockKind.stage_problems` and :meth:`BlockKind.anti_alias_problem`: rules that need the
  stage (located problems, as :mod:`resnet_gen.spec.stage_options` reports them);
* :meth:`BlockKind.detail`: its words in the ``info`` report (from the plan's layers);
* :meth:`BlockKind.preactivation`: what a pre-activation block runs before both paths;
* :meth:`BlockKind.steps`: its forward as data (He et al. 2016's units, unless it says otherwise);
* :meth:`BlockKind.lower`: the branch as plan layers (see :class:`BranchInputs`, :class:`Branch`),
  with the norm that Fig. 4(b) moves after the addition and the width each conv writes (which
  the emitted class names its constructor arguments after). A layer torch has not got is a
  :class:`~resnet_gen.plan.layers.KindLayer` subclass in the kind's module, carrying its cost,
  labels and torch module; its template is ``templates/layers/<ClassName>.py.j2``.

The set of kinds is open: a test or a user's module can register one. So a kind's name is typed
``str`` in the spec (``BlockSpec.type``) and the plan (``BlockPlan.type``), not a ``Literal`` kept
by hand, and checked against this registry instead: each kind's options model narrows ``type`` to
``Literal[name]``, the spec's ``block`` is validated by the model its ``type`` names (an unknown
name is refused with the registered names and the nearest), and the JSON schema lists
:func:`names` as the enum. Nothing outside this package compares a type with a kind's name.

A kind that needs a second input (the diffusion ResBlock's time embedding, ``diffusion.py``)
splits its branch where the input enters: the plan's ``time`` layers project it, a ``time_add`` or
``time_scale_shift`` step injects it and ``tail`` runs the rest of the branch. The interpreters of
the steps (``live/build.py``, ``templates/block.py.j2`` with ``emit/blocks._check_step``,
``diagram/blocks.py``, the U-Net's report) each handle every op of
:data:`resnet_gen.choices.BlockStepOp`, and mypy names any that does not (their dispatch ends in
``assert_never``). A kind whose whole block is one layer of its own needs none: the Neural-ODE
block (``ode.py``) carries its integration time inside its layer, and its steps are ``branch``.

This module imports no torch: validate, build and diagram load it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..choices import ORDER_PREFIXES, PRE_ACTIVATION_ORDERS, BlockOrder, BlockStep, WidthName

if TYPE_CHECKING:
    from ..plan.layer_builder import LayerBuilder
    from ..plan.layers import Layer, Size
    from ..plan.types import BlockPlan
    from ..spec.model import AntiAliasSpec, BlockSpec, StageSpec

# One line per kind: the modules that register the shipped kinds, imported on first use.
KIND_MODULES = (
    "resnet_gen.blocks.basic",
    "resnet_gen.blocks.bottleneck",
    "resnet_gen.blocks.resnest",
    "resnet_gen.blocks.ode",
    "resnet_gen.blocks.diffusion",
)

# The kind of a block whose spec leaves ``type`` out.
DEFAULT_KIND = "basic"

Problem = tuple[tuple[str | int, ...], str, Any]


@dataclass(frozen=True)
class Widths:
    """A block's inner widths: its first conv's output (``first``) and its middle conv's
    (``mid``, the grouped 3x3 of a bottleneck; a basic block's only inner width).

    ``first_is_mid``: the rule makes the first width the middle width (no reduce_first, no
    ``inner_channels``); ``mid_is_out``: it makes the middle width the output width (a basic
    block of expansion 1). Where one is, the two are one quantity and go by the wider's name.
    """

    first: int
    mid: int
    first_is_mid: bool = False
    mid_is_out: bool = False

    def name_of(self, width: WidthName) -> WidthName:
        """The name a width goes by in emitted code."""
        if width == "first_channels" and self.first_is_mid:
            width = "mid_channels"
        if width == "mid_channels" and self.mid_is_out:
            width = "out_channels"
        return width


@dataclass(frozen=True)
class BranchInputs:
    """What a kind lowers its branch from: the resolved widths, geometry and the layer maker."""

    make: LayerBuilder
    in_channels: int
    widths: Widths
    out_channels: int
    stride: int
    dilation: int
    first_dilation: int
    size: Size
    order: BlockOrder
    anti_alias: AntiAliasSpec | None


@dataclass(frozen=True)
class Branch:
    """A lowered branch: its layers in execution order, its output size, the layers that run
    after the addition (the last norm, in Fig. 4(b)'s order), and the width each conv writes."""

    layers: tuple[Layer, ...]
    out_size: Size
    after_add: tuple[Layer, ...] = ()
    # Which block width each layer writes (path -> width): the emitter names arguments from it.
    width_names: tuple[tuple[str, WidthName], ...] = ()


class BlockKind:
    """One kind of residual block (see the module docstring for the interface)."""

    name: ClassVar[str]
    options: ClassVar[type[BlockSpec]]
    class_name: ClassVar[str]
    title: ClassVar[str]
    inner_convs: ClassVar[int]
    inner_shape: ClassVar[str]  # what one entry of inner_channels holds, for messages
    default_expansion: ClassVar[int]
    # Options of other kinds this kind accepts at one value (what its form implies), and those it
    # refuses with a message of its own; any other foreign key "applies to <kinds> blocks only".
    fixed: ClassVar[dict[str, Any]] = {}
    refused: ClassVar[dict[str, str]] = {}

    def expansion(self, block: BlockSpec) -> int:
        return block.expansion if block.expansion is not None else self.default_expansion

    def widths(self, block: BlockSpec, width: int) -> Widths:
        """The width rule: (first, mid) for a stage of ``width`` (before any ``inner_channels``)."""
        raise NotImplementedError

    def groups(self, block: BlockSpec) -> int:
        return 1

    def width_rule(self, block: BlockSpec, width: int) -> str:
        """How the inner width follows from ``width``, for messages."""
        return f"width {width:,}"

    def inner_widths(self, block: BlockSpec, width: int) -> tuple[int, ...]:
        """The normalised inner widths under the width rule, as ``inner_channels`` would list them."""
        widths = self.widths(block, width)
        return (widths.first, widths.mid)[: self.inner_convs]

    def stage_problems(self, block: BlockSpec, stage: StageSpec, here: tuple[str | int, ...]) -> list[Problem]:
        """Problems of a stage's widths under this kind's rule (``inner_channels`` unset): by
        default, a first conv that ``reduce_first`` (SENet-154's, in the kinds that have it)
        leaves empty or not divisible by the kind's groups."""
        reduce_first = getattr(block, "reduce_first", 1)
        if reduce_first == 1:
            return []
        first, groups = self.widths(block, stage.width).first, self.groups(block)
        if first >= 1 and first % groups == 0:
            return []
        return [
            (
                (*here, "width"),
                f"reduce_first {reduce_first} leaves the first conv {first} channels, which must be >= 1 and divisible by groups {groups}",
                stage.width,
            )
        ]

    def anti_alias_problem(self, block: BlockSpec, index: int) -> str | None:
        """Why ``anti_alias`` cannot apply to this stage's blocks, or None."""
        return None

    def classifier_problem(self) -> str | None:
        """Why a classifier's stages cannot use this kind (one that reads a second input), or None."""
        return None

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        raise NotImplementedError

    def detail(self, block: BlockPlan) -> str:
        """The report's words for a block: its branch's convs as the paper's tables write them
        (``[1x1 64, 3x3 64, 1x1 256]``), then its order, attention and dilation."""
        from ..plan.layers import Conv, KindLayer

        parts = []
        for layer in block.branch:
            if isinstance(layer, Conv):
                parts.append(f"{layer.kernel}x{layer.kernel} {layer.out_channels}")
                if layer.groups > 1:
                    parts.append(f"{layer.groups} groups")
            elif isinstance(layer, KindLayer):
                parts.extend(layer.report())
        extras = [ORDER_PREFIXES[block.order]] if block.order != "post" else []
        if block.attention:
            extras.append(block.attention)
        if block.dilation > 1:
            extras.append(f"dilation {block.dilation}")
        return f"[{', '.join(parts)}]" + (f" ({', '.join(extras)})" if extras else "")

    def emitted_doc(self, block: BlockPlan) -> str | None:
        """The emitted class's docstring, where the residual-unit sentence does not describe it."""
        return None

    def preactivation(self, make: LayerBuilder, in_channels: int, order: BlockOrder) -> list[Layer]:
        """The layers a pre-activation block runs before both paths (He et al. 2016)."""
        if order == "pre":
            return [*make.norm("bn1", in_channels), make.act("act1")]
        if order == "relu_preact":
            # Not in place: an identity shortcut still reads the block's input.
            return [make.act("act1", inplace=False)]
        return []

    def steps(self, order: BlockOrder, *, residual: bool, projects: bool) -> tuple[BlockStep, ...]:
        """The block's forward as data: He et al. 2016's units (Fig. 4) for every shipped kind.

        The shortcut forks from the block's input, except for a pre-activation block's
        projection, which reads the pre-activation (an identity shortcut still reads the input).
        A projection runs after the branch, just before the addition, as torchvision's blocks run
        theirs: run first, its output (and in the backward pass its gradient) would be held while
        the branch runs.
        """
        pre = order in PRE_ACTIVATION_ORDERS
        steps: list[BlockStep] = []
        if residual:
            steps.append(BlockStep("fork"))
        if pre:
            steps.append(BlockStep("preact"))
        steps += [BlockStep("branch"), BlockStep("drop_path")]
        if residual:
            if projects:
                steps.append(BlockStep("shortcut", reads="preact" if pre else "fork"))
            steps.append(BlockStep("add"))
        if order == "bn_after_add":
            steps.append(BlockStep("after_add"))
        if order in ("post", "bn_after_add"):
            steps.append(BlockStep("activation"))
        return tuple(steps)


_KINDS: dict[str, BlockKind] = {}
_loaded = False


def register(kind: type[BlockKind]) -> type[BlockKind]:
    """Add a kind (used as a class decorator by each kind's module)."""
    _KINDS[kind.name] = kind()
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register one of their own take it out again)."""
    _KINDS.pop(name, None)


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in KIND_MODULES:
            importlib.import_module(module)


def _ordered() -> list[BlockKind]:
    """Shipped kinds in :data:`KIND_MODULES` order (whichever module imported one first), then
    the others in registration order: the schema and the field reference list them so."""
    _load()
    position = {module: index for index, module in enumerate(KIND_MODULES)}
    found = list(_KINDS.values())
    return sorted(found, key=lambda kind: (position.get(type(kind).__module__, len(position)), found.index(kind)))


def kinds() -> Iterator[BlockKind]:
    """Every registered kind, shipped ones first, in :data:`KIND_MODULES` order."""
    return iter(_ordered())


def names() -> tuple[str, ...]:
    return tuple(kind.name for kind in _ordered())


def kind_of(name: str) -> BlockKind:
    """The kind a spec's (or plan's) ``block.type`` names."""
    _load()
    return _KINDS[name]


def known(name: object) -> bool:
    _load()
    return isinstance(name, str) and name in _KINDS
