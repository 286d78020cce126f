"""The inference form of a plan: the network as it runs once its weights are fixed.

Each batch norm that directly follows a plain convolution is folded into it (the conv gains a
bias; a weight-standardised conv keeps its norm, since standardising would undo the scaling),
dropout and drop path go, and nothing is initialised or frozen: the weights come from a training
checkpoint through the :class:`~resnet_gen.plan.types.Fold` entries the plan lists. Module paths
stay those of the training form, except inside a Sequential that lost a norm, which is
renumbered (``conv1.3`` becomes ``conv1.2``) so that it is still a plain Sequential; the folds
record the training names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..choices import PlanTarget
from .layers import Conv, Dropout, Layer, Norm
from .types import BlockPlan, FeatureTap, Fold, Plan

# What a plan (and the source written from it) can be for.
TARGETS: tuple[PlanTarget, ...] = ("training", "inference")
# Norms that are a fixed per-channel affine map at inference, so a conv can absorb them.
FOLDABLE_NORMS = ("batch", "frozen_batch")


def for_inference(plan: Plan) -> Plan:
    """``plan`` in its inference form (a plan already in that form is returned as it is)."""
    if plan.target == "inference":
        return plan
    stem, stem_folds, stem_moves = _fold(plan.stem)
    final, final_folds, final_moves = _fold(plan.final)
    stages = tuple(replace(stage, blocks=tuple(_block(block) for block in stage.blocks)) for stage in plan.stages)
    moves = stem_moves | final_moves
    return replace(
        plan,
        stem=stem,
        final=final,
        stages=stages,
        head=replace(plan.head, dropout=0.0) if plan.head is not None else None,
        init_scheme="default",
        zero_init_residual=False,
        features=tuple(_moved_tap(tap, moves) for tap in plan.features),
        frozen=(),
        folds=stem_folds + final_folds,
        target="inference",
    )


def _block(block: BlockPlan) -> BlockPlan:
    preact, preact_folds, _ = _fold(block.preact)
    branch, branch_folds, _ = _fold(block.branch)
    shortcut, shortcut_folds, _ = _fold(block.shortcut)
    # A norm after the addition follows no conv: it stays a norm (in eval mode).
    after_add, after_add_folds, _ = _fold(block.after_add)
    return replace(
        block,
        preact=preact,
        branch=branch,
        shortcut=shortcut,
        after_add=after_add,
        drop_path=0.0,
        zero_init=None,
        folds=preact_folds + branch_folds + shortcut_folds + after_add_folds,
    )


def _fold(layers: Sequence[Layer]) -> tuple[tuple[Layer, ...], tuple[Fold, ...], dict[str, str]]:
    """One sequence of layers (run in order) folded: the layers, their folds, and where each
    top-level module that vanished went (a norm's output is now its conv's)."""
    kept: list[Layer] = [layer for layer in layers if not isinstance(layer, Dropout)]
    out: list[Layer] = []
    folds: dict[str, Fold] = {}
    moves: dict[str, str] = {}
    position = 0
    while position < len(kept):
        layer = kept[position]
        after = kept[position + 1] if position + 1 < len(kept) else None
        if type(layer) is Conv and isinstance(after, Norm) and after.type in FOLDABLE_NORMS:
            out.append(replace(layer, bias=True))
            folds[layer.path] = Fold(layer.path, layer.path, after.path, after.eps)
            moves[_top(after.path)] = _top(layer.path)
            position += 2
            continue
        out.append(layer)
        position += 1
    renamed = _renumbered(kept, out)
    layers_out = tuple(replace(layer, path=renamed.get(layer.path, layer.path)) for layer in out)
    fold_list = []
    for layer in out:
        new_path = renamed.get(layer.path, layer.path)
        if layer.path in folds:
            fold_list.append(replace(folds[layer.path], path=new_path))
        elif new_path != layer.path and layer.params:
            fold_list.append(Fold(new_path, layer.path))
    return layers_out, tuple(fold_list), moves


def _renumbered(before: Sequence[Layer], after: Sequence[Layer]) -> dict[str, str]:
    """New paths for the layers of a Sequential (numbered 0, 1, ...) that lost members: numbered
    0, 1, ... again. Containers with other names, or gaps of their own, keep their names."""

    def children(layers: Sequence[Layer]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for layer in layers:
            top, _, rest = layer.path.partition(".")
            if rest:
                out.setdefault(top, []).append(rest)
        return out

    old = children(before)
    renamed = {}
    for top, names in children(after).items():
        was_sequential = old[top] == [str(number) for number in range(len(old[top]))]
        if was_sequential and len(names) < len(old[top]):
            renamed.update({f"{top}.{name}": f"{top}.{number}" for number, name in enumerate(names)})
    return renamed


def _top(path: str) -> str:
    return path.partition(".")[0]


def _moved_tap(tap: FeatureTap, moves: dict[str, str]) -> FeatureTap:
    return replace(tap, module=moves.get(tap.module, tap.module))
