"""Block classes: the plan's blocks grouped into a few classes, each written once with the block's
channels, stride and dilation as constructor arguments, and the stage builder that creates them.

Blocks share a class when they agree on kind, activation order, attention, whether they add a
shortcut, the activation after the addition and the layer zeroed by ``zero_init_residual``;
everything else (channels, stride, which blocks have a downsample or an anti-aliasing pool) is
written by :class:`~resnet_gen.emit.code.SharedCode` and checked against every block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import assert_never, cast

from ..blocks.registry import kind_of
from ..choices import BlockOrder, BlockStep
from ..plan import BlockPlan, Plan
from ..plan.layers import Conv, KindLayer, Layer, Norm
from ..plan.types import Fold
from .code import (
    BRANCH_CONDITIONS,
    CHANNELS_CHANGE,
    SHORTCUT_CONDITIONS,
    Arg,
    Condition,
    Items,
    Member,
    SharedCode,
    Value,
)
from .templates import activation_code, use
from .values import EmitError, check_identifier, paragraphs, py_literal

SYMBOLS: dict[str, tuple[str, ...]] = {
    "channels": ("in_channels", "out_channels", "mid_channels"),
    "out_channels": ("out_channels", "mid_channels", "in_channels"),
    "stride": ("stride",),
    "dilation": ("dilation", "first_dilation"),
    "groups": ("groups",),
}
ARG_ORDER = (
    "in_channels",
    "first_channels",
    "mid_channels",
    "out_channels",
    "stride",
    "first_dilation",
    "dilation",
    "groups",
    "frozen",
)
# The attributes the block template writes itself; a plan layer may not take these names.
OWN_ATTRS = ("drop_path", "act_out", "forward", "training")
# Class names by activation order (He et al. 2016, Fig. 4): BNAfterAddBasicBlock, PreActBottleneck, ...
CLASS_PREFIXES: dict[BlockOrder, str] = {
    "post": "",
    "bn_after_add": "BNAfterAdd",
    "relu_before_add": "ReLUBeforeAdd",
    "relu_preact": "ReLUPreAct",
    "pre": "PreAct",
}
# For the first block of a stage only: what the other blocks of the stage take instead.
FOLLOWS = {"in_channels": "out_channels", "first_dilation": "dilation"}


def block_symbols(block: BlockPlan) -> dict[str, Value]:
    return {
        "in_channels": block.in_channels,
        "first_channels": block.first_channels,
        "mid_channels": block.mid_channels,
        "out_channels": block.out_channels,
        "stride": block.stride,
        "dilation": block.dilation,
        "first_dilation": block.first_dilation,
        "groups": block.groups,
        # Frozen stages have frozen norms (plan.backbone.freeze_modules): the norms choose by it.
        "frozen": any(isinstance(layer, Norm) and layer.type == "frozen_batch" for layer in block.layers),
    }


def class_key(block: BlockPlan) -> tuple[object, ...]:
    return (
        block.type,
        block.order,
        block.attention,
        block.shortcut_type != "none",
        block.post_activation,
        block.zero_init,
        block.step_size,  # written into the forward as a constant
    )


@dataclass(frozen=True)
class StageParam:
    """One argument of the stage builder and how each block of the stage gets its value."""

    name: str
    annotation: str
    block_value: str  # the expression passed to the block, in terms of ``index``
    per_stage: tuple[str, ...]  # the code each stage passes


@dataclass(frozen=True)
class BlockClass:
    name: str
    doc: str
    steps: tuple[BlockStep, ...]  # the forward the template writes
    args: tuple[Arg, ...]
    members: tuple[Member, ...]
    preact: tuple[Member, ...]
    branch: tuple[Member, ...]
    shortcut: Member | None
    after_add: tuple[Member, ...]
    time: tuple[Member, ...]  # a second input's projection (a diffusion ResBlock's time embedding)
    tail: tuple[Member, ...]  # the branch after that input's injection
    residual: bool
    drop_path: bool
    act_out: str | None
    zero_init: str | None
    builder: str  # the model's method that builds one stage of these blocks
    stage_params: tuple[StageParam, ...]
    stages: tuple[int, ...]  # indices into plan.stages
    folds: str | None  # the FOLDS table of the inference form, as code
    step_size: str | None = None  # a tied stage's dt, as a literal, for the scale step

    @property
    def uses_index(self) -> bool:
        return any("index" in param.block_value for param in self.stage_params)


def block_classes(plan: Plan, drop_path_code: Sequence[str] | None) -> list[BlockClass]:
    """The classes of ``plan``'s blocks, in order of first use.

    ``drop_path_code`` is the expression each stage passes for its blocks' drop-path rates (a
    slice of the model's list), or None to pass them as literals.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for stage_index, stage in enumerate(plan.stages):
        keys = {class_key(block) for block in stage.blocks}
        if len(keys) != 1:
            raise EmitError(f"{stage.path}: its blocks need different classes; a stage must use one block class")
        groups.setdefault(keys.pop(), []).append(stage_index)
    names = _class_names(plan, list(groups))
    single = len(groups) == 1
    out = []
    for stages, name in zip(groups.values(), names, strict=True):
        builder = "_make_stage" if single else f"_make_{_snake(name)}_stage"
        out.append(_block_class(plan, name, stages, builder, drop_path_code))
    return out


def resblock_class(blocks: Sequence[BlockPlan], name: str) -> BlockClass:
    """One class for ``blocks`` outside a classifier's stages (a U-Net's ResBlocks): no stage
    builder; its constructor takes the arguments the blocks differ in."""
    # A ResBlock keeps its size: only a change of channels can tell its members apart.
    return _shared_class(list(blocks), name, zero_init_residual=False, conditions=(Condition((CHANNELS_CHANGE,)),))


def _block_class(
    plan: Plan, name: str, stage_indices: list[int], builder: str, drop_path_code: Sequence[str] | None
) -> BlockClass:
    blocks = [block for index in stage_indices for block in plan.stages[index].blocks]
    shared = _shared_class(blocks, name, plan.zero_init_residual)
    stage_params = _stage_params(plan, stage_indices, blocks, list(shared.args), drop_path_code)
    return replace(shared, builder=builder, stage_params=tuple(stage_params), stages=tuple(stage_indices))


def _shared_class(
    blocks: list[BlockPlan], name: str, zero_init_residual: bool, conditions: tuple[Condition, ...] | None = None
) -> BlockClass:
    """The class for ``blocks``: its arguments, members and forward; ``conditions`` (by default,
    the shortcut's and the branch's usual ones) are those that may choose between members."""
    first = blocks[0]
    shared = SharedCode(
        [block_symbols(block) for block in blocks], SYMBOLS, [dict(block.width_names) for block in blocks]
    )
    roles: dict[str, str] = {}
    sequences = []
    per_block: list[dict[str, list[tuple[str | None, Layer]]]] = []
    for block in blocks:
        own: dict[str, list[tuple[str | None, Layer]]] = {}
        order = []
        for role, layers in (
            ("preact", block.preact),
            ("branch", block.branch),
            ("time", block.time),
            ("tail", block.tail),
            ("shortcut", block.shortcut),
            ("after_add", block.after_add),
        ):
            for layer in layers:
                attr, _, rest = layer.path.partition(".")
                if attr in OWN_ATTRS:
                    raise EmitError(f"{block.path}.{layer.path}: the module name {attr!r} is taken by the block itself")
                if roles.setdefault(attr, role) != role:
                    raise EmitError(
                        f"{block.path}.{attr}: is in the {roles[attr]} in one block and the {role} in another"
                    )
                if attr not in own:
                    order.append(attr)
                own.setdefault(attr, []).append((rest or None, layer))
        sequences.append(order)
        per_block.append(own)
    members = []
    shared.start_flow("in_channels")
    for attr in _merged_order(sequences, first.path):
        if roles[attr] == "shortcut":
            shared.start_flow("in_channels")
        usual = SHORTCUT_CONDITIONS if roles[attr] == "shortcut" else BRANCH_CONDITIONS
        items: list[Items | None] = [tuple(own[attr]) if attr in own else None for own in per_block]
        members.append(shared.member(attr, items, conditions or usual))
    by_role = {
        role: tuple(m for m in members if roles[m.attr] == role)
        for role in ("preact", "branch", "time", "tail", "shortcut", "after_add")
    }
    if len(by_role["shortcut"]) > 1:
        raise EmitError(f"{first.path}: a shortcut of several top-level modules cannot be written yet")

    drop_path = any(block.drop_path > 0 for block in blocks)
    if drop_path:
        use("DropPath")
    act_out = activation_code(first.post_activation) if first.post_activation else None
    zero_init = first.zero_init if zero_init_residual else None
    if zero_init is not None:
        member = next((m for m in members if m.attr == zero_init), None)
        if member is None or member.optional:
            raise EmitError(f"{first.path}.{zero_init}: zero_init_residual needs a module every block has")

    args = shared.args(ARG_ORDER)
    if drop_path:
        args.append(Arg("drop_path", [block.drop_path for block in blocks], "value"))
    return BlockClass(
        name=name,
        doc=paragraphs(_doc(first, blocks)),
        steps=_class_steps(blocks),
        step_size=py_literal(first.step_size) if first.step_size is not None else None,
        args=tuple(args),
        members=tuple(members),
        preact=by_role["preact"],
        branch=by_role["branch"],
        shortcut=by_role["shortcut"][0] if by_role["shortcut"] else None,
        after_add=by_role["after_add"],
        time=by_role["time"],
        tail=by_role["tail"],
        residual=first.shortcut_type != "none",
        drop_path=drop_path,
        act_out=act_out,
        zero_init=zero_init,
        builder="",
        stage_params=(),
        stages=(),
        folds=_folds(blocks),
    )


def _class_steps(blocks: list[BlockPlan]) -> tuple[BlockStep, ...]:
    """The steps one class runs for all its blocks: those of its blocks that run most (a block
    without a projection skips the shortcut step, as the class's optional ``downsample`` does)."""
    steps = max((block.steps for block in blocks), key=len)
    for block in blocks:
        if [step for step in steps if step in block.steps] != list(block.steps):
            raise EmitError(f"{block.path}: its steps do not fit one class with {blocks[0].path}'s")
    for step in steps:
        _check_step(step)
    return steps


def _check_step(step: BlockStep) -> None:
    """Every op the block template writes (templates/block.py.j2); a new op must be added there."""
    match step.op:
        case "fork" | "preact" | "shortcut" | "branch" | "drop_path" | "scale" | "add" | "after_add" | "activation":
            return
        case "time_add" | "time_scale_shift" | "tail":
            return
        case _:
            assert_never(step.op)


def _folds(blocks: list[BlockPlan]) -> str | None:
    """The class's FOLDS table: every block's folds, which must agree where they name one layer."""
    merged: dict[str, Fold] = {}
    for block in blocks:
        for fold in block.folds:
            if merged.setdefault(fold.path, fold) != fold:
                raise EmitError(f"{block.path}.{fold.path}: blocks of one class fold different layers into it")
    return folds_table(list(merged.values()))


def _merged_order(sequences: list[list[str]], where: str) -> list[str]:
    """One order of every member that keeps each block's own order (its registration order)."""
    order: list[str] = []
    for sequence in sequences:
        position = -1
        for attr in sequence:
            if attr in order:
                found = order.index(attr)
                if found < position:
                    raise EmitError(f"{where}: blocks of one class order their modules differently")
                position = found
            else:
                position += 1
                order.insert(position, attr)
    return order


def _stage_params(
    plan: Plan, stage_indices: list[int], blocks: list[BlockPlan], args: list[Arg], drop_path_code: Sequence[str] | None
) -> list[StageParam]:
    """How the stage builder gives each block its arguments: one value per stage, the first
    block's own value (stride, input channels), or one value per block."""
    stages = []
    start = 0
    for stage_index in stage_indices:
        count = len(plan.stages[stage_index].blocks)
        stages.append(range(start, start + count))
        start += count
    direct = {arg.name: arg for arg in args if all(_constant([arg.values[i] for i in s]) for s in stages)}
    params = [StageParam("blocks", "int", "", tuple(str(len(s)) for s in stages))]
    for arg in args:
        per_stage = tuple(py_literal(arg.values[s[0]]) for s in stages)
        if arg.name == "drop_path" and drop_path_code is not None:
            codes = tuple(drop_path_code[i] for i in stage_indices)
            params.append(StageParam(arg.name, "list[float]", f"{arg.name}[index]", codes))
        elif arg.name in direct:
            params.append(StageParam(arg.name, arg.annotation, arg.name, per_stage))
        elif (rest := _rest_value(arg, stages, direct)) is not None:
            value = f"{arg.name} if index == 0 else {rest}"
            params.append(StageParam(arg.name, arg.annotation, value, per_stage))
        else:
            tuples = tuple(py_literal(tuple(arg.values[i] for i in s)) for s in stages)
            params.append(StageParam(arg.name, f"tuple[{arg.annotation}, ...]", f"{arg.name}[index]", tuples))
    return params


def _rest_value(arg: Arg, stages: list[range], direct: dict[str, Arg]) -> str | None:
    """What the blocks after the first take, if it is one thing for every stage: the stage
    argument it follows (input channels follow the output channels), else one literal."""
    if not all(_constant([arg.values[i] for i in s[1:]]) for s in stages):
        return None
    rests = [(s[0], arg.values[s[1]]) for s in stages if len(s) > 1]
    partner = FOLLOWS.get(arg.name)
    if (
        isinstance(partner, str)
        and partner in direct
        and all(_same(value, direct[partner].values[first]) for first, value in rests)
    ):
        return partner
    literals = {py_literal(value) for _, value in rests}
    return literals.pop() if len(literals) == 1 else None


def _same(a: Value, b: Value) -> bool:
    return type(a) is type(b) and a == b


def _constant(values: Sequence[Value]) -> bool:
    return len({(type(value).__name__, value) for value in values}) <= 1


def _class_names(plan: Plan, keys: list[tuple[object, ...]]) -> list[str]:
    names = []
    for key in keys:
        kind, order, residual = key[0], key[1], key[3]
        base = kind_of(str(kind)).class_name
        if not residual:
            base = "Plain" + base.removesuffix("Block") + ("Block" if base.endswith("Block") else "")
        base = CLASS_PREFIXES[cast(BlockOrder, order)] + base
        names.append(base)
    out = []
    for key, name in zip(keys, names, strict=True):
        if names.count(name) > 1 and key[2]:
            name = f"{str(key[2]).upper()}{name}"
        out.append(name)
    final = []
    for name in out:
        candidate, number = name, 2
        while candidate in final:
            candidate, number = f"{name}{number}", number + 1
        final.append(check_identifier(candidate, "block class name"))
    return final


def _snake(name: str) -> str:
    out = []
    for position, char in enumerate(name):
        if char.isupper() and position and not name[position - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _doc(first: BlockPlan, blocks: list[BlockPlan]) -> str:
    """One sentence on what the block computes."""
    own = kind_of(first.type).emitted_doc(first)
    if own is not None:
        return own
    kernels = [
        f"{layer.kernel}x{layer.kernel}" if isinstance(layer, Conv) else layer.doc()
        for layer in first.branch
        if isinstance(layer, Conv) or (isinstance(layer, KindLayer) and layer.doc())
    ]
    grouped = any(
        isinstance(layer, (Conv, KindLayer)) and getattr(layer, "groups", 1) > 1
        for block in blocks
        for layer in block.branch
    )
    kind = kind_of(first.type).class_name.removesuffix("Block")
    convs = ", ".join(kernels[:-1]) + f" and {kernels[-1]}" if len(kernels) > 1 else "".join(kernels)
    text = f"{kind} block: {convs} convs" + (" (the 3x3 grouped)" if grouped else "")
    if first.order == "pre" and first.folds:
        text += " after the block's first norm and activation (pre-activation), the later norms folded into the convs"
    elif first.order == "pre":
        text += ", each after its norm and activation (pre-activation)"
    elif first.order == "relu_preact":
        text += ", each after an activation and followed by its norm (ReLU-only pre-activation)"
    elif first.order == "bn_after_add":
        text += ", each but the last followed by its norm (the last norm comes after the addition)"
    elif first.order == "relu_before_add":
        text += ", each followed by its norm and activation (the last activation before the addition)"
    elif first.folds:
        text += ", each with its batch norm folded in"
    else:
        text += ", each followed by its norm"
    if first.attention == "se":
        text += ", squeeze-and-excitation on the branch"
    elif first.attention == "eca":
        text += ", efficient channel attention on the branch"
    elif first.attention:
        text += f", {first.attention} attention on the branch"
    if first.shortcut_type == "none":
        text += "; no shortcut (a plain network)."
    elif first.after_add:
        text += "; the shortcut is added before the last norm and activation."
    elif first.post_activation:
        text += "; the shortcut is added before the final activation."
    else:
        text += "; the shortcut is added with nothing after it."
    return text


def folds_table(folds: Sequence[Fold]) -> str | None:
    """A FOLDS class attribute's value: each layer's (training path, batch norm folded into it)."""
    if not folds:
        return None
    return "{" + ", ".join(f"{fold.path!r}: ({fold.source!r}, {fold.norm!r})" for fold in folds) + "}"
