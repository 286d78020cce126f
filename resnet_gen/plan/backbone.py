"""Backbone use of a plan: dilation for an output stride, the feature taps, the frozen modules.

Numbering (shared with the spec's ``backbone`` section): feature 0 is the stem's output before
its pool, feature i is the output of stage ``layer{i}``.

Frozen modules are frozen in the plan itself, as torchvision's detection backbones do: their
batch norms become frozen (buffer-only) norms under the same keys, their dropout and drop-path
go, so they compute the same thing in train and eval mode. That survives any re-parenting
(``BackboneWithFPN``, ``create_feature_extractor``, ``symbolic_trace``), which an overridden
``train()`` does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..spec.model import Spec
from .layers import Conv, Dropout, Layer, Norm, Pool, Size
from .types import BlockPlan, FeatureTap, Plan, StagePlan


def stride_of(layers: Sequence[Layer]) -> int:
    """The product of the strides of ``layers`` (convs and pools stride; the rest keep the size)."""
    stride = 1
    for layer in layers:
        stride *= int(getattr(layer, "stride", 1))
    return stride


def stage_geometry(spec: Spec, stem_stride: int) -> list[tuple[int, int]]:
    """Each stage's (stride, dilation) once ``backbone.output_stride`` is applied.

    As timm's ``make_blocks`` and torchvision's ``replace_stride_with_dilation``: once the network
    has reached the output stride, a stage's stride becomes 1 and its dilation is multiplied by
    the stride it gave up (the first block of a stage keeps the previous stage's dilation, which
    lowering handles as ``first_dilation``).
    """
    target = spec.backbone.output_stride
    if target is None:
        return [(int(stage.stride), stage.dilation) for stage in spec.stages]
    out: list[tuple[int, int]] = []
    reached, dilation = stem_stride, 1
    for stage in spec.stages:
        stride = stage.stride
        if reached >= target:
            dilation *= stride
            stride = 1
        else:
            reached *= stride
        out.append((stride, dilation))
    return out


def _stem_pool_start(stem: Sequence[Layer]) -> int:
    """Index of the first layer of the stem's pooling part (the feature is taken before it)."""
    for position, layer in enumerate(stem):
        if isinstance(layer, Pool) or layer.path.split(".")[0] == "maxpool":
            return position
    return len(stem)


def _stem_tap(stem: Sequence[Layer], input_size: Size, channels: int) -> FeatureTap:
    cut = _stem_pool_start(stem)
    before = stem[:cut]
    size = input_size
    for layer in before:
        if isinstance(layer, Conv):
            size = layer.out_size
            channels = layer.out_channels
    return FeatureTap(0, before[-1].path.split(".")[0], channels, stride_of(before), size)


def feature_taps(plan: Plan) -> list[FeatureTap]:
    """Every feature map of a whole (untrimmed) plan: the stem's, then each stage's output."""
    taps = [_stem_tap(plan.stem, plan.input_size, plan.stem_channels)]
    reduction = stride_of(plan.stem)
    for stage in plan.stages:
        reduction *= stage.stride
        taps.append(FeatureTap(stage.index + 1, stage.path, stage.out_channels, reduction, stage.out_size))
    return taps


def apply_backbone(spec: Spec, plan: Plan) -> Plan:
    """Apply ``features_only``/``out_indices`` (the taps, and trimming what no tap needs) and ``frozen_stages``."""
    options = spec.backbone
    frozen = _frozen(options.frozen_stages, plan.stem, plan.stages, plan.final)
    plan = freeze_modules(plan, frozen)
    if not options.features_only:
        return replace(plan, frozen=frozen)
    taps = feature_taps(plan)
    wanted = options.out_indices if options.out_indices is not None else list(range(len(taps)))
    last = max(wanted)
    stem = plan.stem if last > 0 else plan.stem[: _stem_pool_start(plan.stem)]
    stages = plan.stages[:last]
    kept = {layer.path.split(".")[0] for layer in stem} | {stage.path for stage in stages}
    return replace(
        plan,
        stem=stem,
        stem_out_size=plan.stem_out_size if last > 0 else taps[0].size,
        stages=stages,
        final=(),
        head=None,
        features=tuple(taps[index] for index in wanted),
        frozen=tuple(name for name in frozen if name in kept),
    )


def _frozen(
    frozen_stages: int | None, stem: Sequence[Layer], stages: Sequence[StagePlan], final: Sequence[Layer]
) -> tuple[str, ...]:
    """Top-level module names frozen by ``frozen_stages`` K: the stem, layer1..layerK, and a
    pre-activation net's final norm when every stage is frozen (it belongs to the last stage's output)."""
    if frozen_stages is None:
        return ()
    names = list(dict.fromkeys(layer.path.split(".")[0] for layer in stem))
    names += [stage.path for stage in stages[:frozen_stages]]
    if frozen_stages >= len(stages):
        names += list(dict.fromkeys(layer.path.split(".")[0] for layer in final))
    return tuple(names)


def _frozen_layers(layers: Sequence[Layer], frozen: set[str]) -> tuple[Layer, ...]:
    """``layers`` with those under a frozen top-level module made mode-independent."""
    out: list[Layer] = []
    for layer in layers:
        if layer.path.split(".")[0] in frozen:
            if isinstance(layer, Dropout):
                continue
            if isinstance(layer, Norm) and layer.type == "batch":
                layer = replace(layer, type="frozen_batch")
        out.append(layer)
    return tuple(out)


def _frozen_block(block: BlockPlan) -> BlockPlan:
    everything = {layer.path.split(".")[0] for layer in block.layers}
    return replace(
        block,
        preact=_frozen_layers(block.preact, everything),
        branch=_frozen_layers(block.branch, everything),
        shortcut=_frozen_layers(block.shortcut, everything),
        drop_path=0.0,
    )


def freeze_modules(plan: Plan, frozen: Sequence[str]) -> Plan:
    """``plan`` with the top-level modules ``frozen`` computing the same in train and eval mode:
    batch norms frozen (their statistics and affine terms as buffers), no dropout, no drop-path."""
    names = set(frozen)
    if not names:
        return plan
    stages = tuple(
        replace(stage, blocks=tuple(_frozen_block(block) for block in stage.blocks)) if stage.path in names else stage
        for stage in plan.stages
    )
    return replace(
        plan,
        stem=_frozen_layers(plan.stem, names),
        stages=stages,
        final=_frozen_layers(plan.final, names),
        frozen=tuple(frozen),
    )
