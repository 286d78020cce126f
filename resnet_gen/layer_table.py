"""The per-layer table, as torchinfo's ``summary(depth=...)`` lays it out: every module down to a
depth, with its output shape, parameters, MACs in a chosen convention, and their share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .counting import Convention, DecoderOp, HeadPool, Placed, Shape, Step, counts, placed
from .plan import layers as L
from .plan.heads import DECODER
from .plan.types import Plan


@dataclass(frozen=True)
class LayerRow:
    """One module: ``path`` as in the state_dict, ``depth`` its number of dotted parts."""

    path: str
    depth: int
    kind: str
    output_shape: Shape  # batch 1 left out: (channels, height, width), or (features,)
    params: int
    macs: int
    share: float  # of the network's MACs in the same convention


def _kind(step: Step) -> str:
    if isinstance(step, L.StdConv):
        return f"std conv {step.kernel}x{step.kernel}"
    if isinstance(step, L.Conv):
        return f"conv {step.kernel}x{step.kernel}" + (f" /{step.stride}" if step.stride > 1 else "")
    if isinstance(step, L.Norm):
        return f"{step.type} norm"
    if isinstance(step, (L.Act, L.Pool)):
        return step.type + (" pool" if isinstance(step, L.Pool) else "")
    if isinstance(step, HeadPool):
        return f"global {step.type} pool"
    if isinstance(step, DecoderOp):
        return f"{step.type} resize" if step.type in ("nearest", "bilinear") else step.type
    if isinstance(step, L.ConvTranspose):
        return f"transposed conv {step.kernel}x{step.kernel} x{step.stride}"
    words = {
        "SqueezeExcite": "squeeze-excite",
        "EfficientChannelAttention": "ECA",
        "ZeroPadShortcut": "zero-pad",
        "DropPath": "drop path",
        # a diffusion U-Net's own layers (resnet_gen.unet.plan)
        "Sinusoid": "sinusoid",
        "TokenLinear": "linear",
        "AttentionProducts": "qk^T, softmax, @v",
        "TimeScaleShift": "scale and shift",
    }
    name = type(step).__name__
    return words.get(name, name.lower() if name in ("Linear", "Dropout") else name)


def per_layer(plan: Plan, depth: int, convention: Convention = "torchvision") -> tuple[LayerRow, ...]:
    """Rows for every module whose path has at most ``depth`` parts, parents before children, as
    the modules are registered.

    A decoder's resizes, sums and concatenations are no modules: they count in the ``decoder``
    row only, so its children's MACs need not add up to its own."""
    containers = {DECODER: "decoder"}
    containers.update({block.path: "block" for block in plan.blocks})
    containers.update({stage.path: "stage" for stage in plan.stages})
    return rows_of(placed(plan), depth, convention, containers)


def rows_of(
    steps: Sequence[Placed], depth: int, convention: Convention, containers: Mapping[str, str]
) -> tuple[LayerRow, ...]:
    """:func:`per_layer` of any network's placed modules; ``containers`` names the kind of the
    modules that hold others (the rest are ``sequential``). A tensor operation that is no module
    counts in the row of the module whose forward runs it."""
    if depth < 1:
        raise ValueError(f"depth must be 1 or more, not {depth}")
    cost = [counts(item).convention(convention) for item in steps]
    total = sum(cost) or 1
    order: list[str] = []
    params: dict[str, int] = {}
    macs: dict[str, int] = {}
    shape: dict[str, Shape] = {}
    kind: dict[str, str] = {}
    counted: set[str] = set()  # a tied stage runs its block's layers again: their weights count once
    for item, item_macs in zip(steps, cost, strict=True):
        parts = item.step.path.split(".")
        item_params = 0 if item.step.path in counted else item.step.params
        counted.add(item.step.path)
        for level in range(1, min(depth, len(parts)) + 1):
            path = ".".join(parts[:level])
            if path not in params:
                order.append(path)
                params[path] = macs[path] = 0
                if path in containers:
                    kind[path] = containers[path]
                elif level == len(parts):
                    kind[path] = _kind(item.step)
                else:
                    kind[path] = "sequential"
            params[path] += item_params
            macs[path] += item_macs
            shape[path] = item.out_shape  # the last module under a path writes its output
    # Each parent's children in the order they first run, depth first: a U-Net decoder's
    # up-convs and blocks alternate when run, yet each ModuleList lists its own together.
    children: dict[str, list[str]] = {"": []}
    for path in order:
        children[path] = []
        children[path.rpartition(".")[0]].append(path)

    def tree(parent: str) -> list[str]:
        return [row for path in children[parent] for row in (path, *tree(path))]

    return tuple(
        LayerRow(path, path.count(".") + 1, kind[path], shape[path], params[path], macs[path], macs[path] / total)
        for path in tree("")
    )


def stage_macs(plan: Plan, convention: Convention) -> dict[str, int]:
    """MACs in ``convention`` per row of the paper-style table: ``stem``, each stage, ``head``,
    and ``decoder`` for a segmentation or multitask head."""
    stages = [stage.path for stage in plan.stages]
    out = {"stem": 0, **dict.fromkeys(stages, 0), "head": 0}
    if plan.decoder is not None:
        out[DECODER] = 0
    seen_stage = False
    for item in placed(plan):
        top = item.step.path.split(".")[0]
        seen_stage = seen_stage or top in out
        key = top if top in stages or top == DECODER else "head" if seen_stage else "stem"
        out[key] += counts(item).convention(convention)
    return out
