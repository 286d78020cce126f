"""Per-stage block options and the rules that need each stage's resolved block.

A stage's ``block`` is merged over the network's ``block`` before validation, so a stage says only
what differs (``block: {type: bottleneck}``, ``block: {attention: {kernel: 7}}``). When a stage
changes ``type``, the options that belong to one block kind (``expansion`` and every option a kind
adds to the shared ones: stride_on, groups, width_per_group, reduce_first, dropout, radix, ...) are
not inherited; a stage that changes the attention ``type`` starts that attention afresh.

The rules that depend on the kind are the kind's own (:mod:`resnet_gen.blocks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from .model import Spec

Problem = tuple[tuple[str | int, ...], str, Any]


def _kind_options() -> set[str]:
    """The options that belong to one kind: expansion and those the kinds add to the shared ones."""
    from ..blocks.registry import kinds
    from .model import BlockSpec

    shared = set(BlockSpec.model_fields) - {"expansion"}
    return {name for kind in kinds() for name in kind.options.model_fields} - shared


def _as_mapping(value: Any) -> Any:
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


def _attention_mapping(value: Any) -> Any:
    value = _as_mapping(value)
    return {"type": value} if isinstance(value, str) else value


def merge_block(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """A stage's block options over the network's (see the module docstring for the rules)."""
    from ..blocks.registry import DEFAULT_KIND

    merged = dict(base)
    if "type" in own and own["type"] != base.get("type", DEFAULT_KIND):
        for key in _kind_options():
            merged.pop(key, None)
    for key, value in own.items():
        if key == "attention":
            old, value = _attention_mapping(merged.get(key)), _attention_mapping(value)
            if (
                isinstance(old, dict)
                and isinstance(value, dict)
                and value.get("type", old.get("type")) == old.get("type")
            ):
                value = {**old, **value}
        merged[key] = value
    return merged


def merge_stage_blocks(data: Any) -> Any:
    """Raw spec data with every stage's ``block`` merged over the network's ``block``."""
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        return data
    base = _as_mapping(data.get("block", {}))
    if not isinstance(base, dict):
        return data  # the network's block is itself invalid; its own error says so
    stages = []
    for stage in data["stages"]:
        stage = _as_mapping(stage)
        own = _as_mapping(stage.get("block")) if isinstance(stage, dict) else None
        if isinstance(own, dict):
            stage = {**stage, "block": merge_block(base, own)}
        stages.append(stage)
    return {**data, "stages": stages}


def stage_problems(spec: Spec) -> list[Problem]:
    """Each way a stage's widths or options do not fit its resolved block: (key path, message, value)."""
    from ..blocks.registry import kind_of

    problems: list[Problem] = []
    for index, stage in enumerate(spec.stages):
        here: tuple[str | int, ...] = ("stages", index)
        block = spec.block_for(index)
        kind = kind_of(block.type)
        refused = kind.classifier_problem()
        if refused is not None:
            where = (*here, "block", "type") if stage.block is not None else ("block", "type")
            if not any(problem[0] == where for problem in problems):
                problems.append((where, refused, block.type))
            continue
        if block.order != spec.block.order:
            problems.append(
                (
                    (*here, "block", "order"),
                    f"a stage cannot change the activation order; the network's block.order is {spec.block.order}",
                    block.order,
                )
            )
        if stage.inner_channels is None:
            problems.extend(kind.stage_problems(block, stage, here))
            continue
        if len(stage.inner_channels) != stage.blocks:
            problems.append(
                (
                    (*here, "inner_channels"),
                    f"needs one entry per block ({stage.blocks}), got {len(stage.inner_channels)}",
                    stage.inner_channels,
                )
            )
        groups = kind.groups(block)
        for position, widths in enumerate(stage.inner_channels):
            where = (*here, "inner_channels", position)
            if len(widths) != kind.inner_convs:
                problems.append((where, f"each entry is the {kind.inner_shape}; got {widths}", widths))
            elif any(width % groups for width in widths):
                problems.append((where, f"widths must be divisible by the block's groups ({groups})", widths))
    return problems


def anti_alias_problems(spec: Spec) -> list[Problem]:
    """Anti-aliasing follows timm's resnet.py: post-activation blocks that stride in the 3x3."""
    from ..blocks.registry import kind_of

    for index in range(len(spec.stages)):
        block = spec.block_for(index)
        if block.order != "post":
            return [(("anti_alias",), "anti_alias applies to post-activation blocks (block.order: post) only", None)]
        problem = kind_of(block.type).anti_alias_problem(block, index)
        if problem is not None:
            return [(("anti_alias",), problem, None)]
    return []


def tied_problems(spec: Spec) -> list[Problem]:
    """A tied stage applies one block again and again, so the block must keep its input's shape
    (stride 1, as many channels out as in, an identity shortcut); ``step_size`` is its ``dt``."""
    problems: list[Problem] = []
    for index, stage in enumerate(spec.stages):
        here: tuple[str | int, ...] = ("stages", index)
        if stage.step_size is not None and not stage.tied:
            problems.append(
                ((*here, "step_size"), "step_size applies to tied stages only; add tied: true", stage.step_size)
            )
        elif stage.step_size is not None and not stage.step_size > 0:
            problems.append(((*here, "step_size"), "must be > 0 (the Euler step dt)", stage.step_size))
        if not stage.tied:
            continue
        if stage.inner_channels and any(widths != stage.inner_channels[0] for widths in stage.inner_channels):
            problems.append(
                (
                    (*here, "inner_channels"),
                    "a tied stage has one block, so its entries must all be the same",
                    stage.inner_channels,
                )
            )
        in_channels = spec.stage_out_channels(index - 1) if index else spec.stem.width
        out_channels = spec.stage_out_channels(index)
        if stage.stride != 1:
            why = f"a tied stage must keep the feature map's size, but this one has stride {stage.stride}"
        elif in_channels != out_channels:
            why = f"a tied stage must keep the width, but this one takes {in_channels:,} channels and gives {out_channels:,}"
        elif spec.shortcut.type == "projection_all":
            why = "a tied stage needs an identity shortcut, but shortcut.type projection_all projects in every block"
        else:
            continue
        problems.append(
            (
                (*here, "tied"),
                f"{why}; put the downsampling or width change in an untied stage of its own before the tied one",
                True,
            )
        )
    return problems
