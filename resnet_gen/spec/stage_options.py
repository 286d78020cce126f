"""Per-stage block options and the rules that need each stage's resolved block.

A stage's ``block`` is merged over the network's ``block`` before validation, so a stage says only
what differs (``block: {type: bottleneck}``, ``block: {attention: {kernel: 7}}``). When a stage
changes ``type``, the options that belong to one block kind (expansion, stride_on, groups,
width_per_group, reduce_first) are not inherited; a stage that changes the attention ``type``
starts that attention afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from .model import BlockSpec, Spec

Problem = tuple[tuple[str | int, ...], str, Any]

_KIND_OPTIONS = ("expansion", "stride_on", "groups", "width_per_group", "reduce_first", "radix", "avd", "avd_first")


def _as_mapping(value: Any) -> Any:
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


def _attention_mapping(value: Any) -> Any:
    value = _as_mapping(value)
    return {"type": value} if isinstance(value, str) else value


def merge_block(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """A stage's block options over the network's (see the module docstring for the rules)."""
    merged = dict(base)
    if "type" in own and own["type"] != base.get("type", "basic"):
        for key in _KIND_OPTIONS:
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


def first_width(block: BlockSpec, width: int) -> int:
    """Output width of a block's first conv under the width rule (before any ``inner_channels``)."""
    return block_mid_width(block, width) // block.reduce_first


def block_mid_width(block: BlockSpec, width: int) -> int:
    """A bottleneck's grouped-conv width (timm's ``int(planes * base_width / 64) * cardinality``); a basic block's ``width``."""
    if block.type != "basic":
        return int(width * block.width_per_group / 64) * block.groups
    return width


def stage_problems(spec: Spec) -> list[Problem]:
    """Each way a stage's widths or options do not fit its resolved block: (key path, message, value)."""
    problems: list[Problem] = []
    for index, stage in enumerate(spec.stages):
        here: tuple[str | int, ...] = ("stages", index)
        block = spec.block_for(index)
        if block.order != spec.block.order:
            problems.append(
                (
                    (*here, "block", "order"),
                    f"a stage cannot change the activation order; the network's block.order is {spec.block.order}",
                    block.order,
                )
            )
        groups = block.groups if block.type != "basic" else 1
        if stage.inner_channels is None:
            first = first_width(block, stage.width)
            if first < 1 and block.reduce_first == 1:
                least = next(w for w in range(stage.width, 65_537) if first_width(block, w) >= 1)
                problems.append(
                    (
                        (*here, "width"),
                        f"width {stage.width} leaves the bottleneck no inner channels (int(width * width_per_group {block.width_per_group} / 64) * groups {groups} = 0); use width >= {least}",
                        stage.width,
                    )
                )
            elif first < 1 or (block.reduce_first > 1 and first % groups):
                problems.append(
                    (
                        (*here, "width"),
                        f"reduce_first {block.reduce_first} leaves the first conv {first} channels, which must be >= 1 and divisible by groups {groups}",
                        stage.width,
                    )
                )
            continue
        if len(stage.inner_channels) != stage.blocks:
            problems.append(
                (
                    (*here, "inner_channels"),
                    f"needs one entry per block ({stage.blocks}), got {len(stage.inner_channels)}",
                    stage.inner_channels,
                )
            )
        expected = 2 if block.type != "basic" else 1
        shape = "[conv1, conv2] widths of a bottleneck" if expected == 2 else "[conv1] width of a basic block"
        for position, widths in enumerate(stage.inner_channels):
            where = (*here, "inner_channels", position)
            if len(widths) != expected:
                problems.append((where, f"each entry is the {shape}; got {widths}", widths))
            elif any(width % groups for width in widths):
                problems.append((where, f"widths must be divisible by the block's groups ({groups})", widths))
    return problems


def anti_alias_problems(spec: Spec) -> list[Problem]:
    """Anti-aliasing follows timm's resnet.py: post-activation blocks that stride in the 3x3."""
    for index in range(len(spec.stages)):
        block = spec.block_for(index)
        if block.order != "post":
            return [(("anti_alias",), "anti_alias applies to post-activation blocks (block.order: post) only", None)]
        if block.type == "resnest":
            return [(("anti_alias",), "anti_alias does not apply to resnest blocks (their avd pool downsamples)", None)]
        if block.type == "bottleneck" and block.stride_on != "3x3":
            return [
                (
                    ("anti_alias",),
                    f"anti_alias needs bottlenecks that stride in the 3x3 (stride_on: 3x3); stages[{index}] strides in the 1x1",
                    None,
                )
            ]
    return []
