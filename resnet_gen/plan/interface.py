"""What timm's scripts and utilities read off a model, worked out from its plan (no torch): the
pretrained config (input size, normalisation, first conv, classifier) and the parameter groups
for layer-wise learning-rate decay. The live module and the emitted file both carry these."""

from __future__ import annotations

from typing import Any

from .layers import Conv
from .types import Plan

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875  # timm's and torchvision's evaluation crop for ResNets (224 of 256)
CLASSIFIER = "fc"
# Parameter groups past every block: timm's group id for a pre-activation net's final norm.
LAST_GROUP = 99999


def num_classes(plan: Plan) -> int:
    return plan.head.num_classes if plan.head is not None and plan.head.fc is not None else 0


def num_features(plan: Plan) -> int:
    """Channels of the last feature map (the stem's, for a backbone cut after it)."""
    return plan.stages[-1].out_channels if plan.stages else plan.stem_channels


def pretrained_cfg(plan: Plan) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` for this network, as timm's own ResNets give it (no weights URL:
    weights come from local files only). Other channel counts than 3 take the mean of ImageNet's
    statistics per channel."""
    channels = plan.input_channels
    mean: tuple[float, ...]
    std: tuple[float, ...]
    if channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean = (round(sum(IMAGENET_MEAN) / 3, 6),) * channels
        std = (round(sum(IMAGENET_STD) / 3, 6),) * channels
    first_conv = next(layer.path for layer in plan.stem if isinstance(layer, Conv))
    last = plan.stages[-1].out_size if plan.stages else plan.stem_out_size
    return {
        "architecture": plan.name,
        "num_classes": num_classes(plan),
        "input_size": (channels, *plan.input_size),
        "pool_size": tuple(last),
        "crop_pct": CROP_PCT,
        "interpolation": "bilinear",
        "mean": mean,
        "std": std,
        "first_conv": first_conv,
        "classifier": CLASSIFIER,
    }


def group_matcher(plan: Plan, coarse: bool = False) -> dict[str, Any]:
    """Regexes over parameter names, as timm's ``group_matcher``: the stem first, then one group
    per block (per stage when ``coarse``), a final norm after them; the classifier is left to
    the last group, as timm's ``group_with_matcher`` does with names no pattern matches."""
    stem = sorted({layer.path.split(".")[0] for layer in plan.stem if layer.params})
    blocks = r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)"
    final = sorted({layer.path.split(".")[0] for layer in plan.final if layer.params})
    matcher: dict[str, Any] = {"stem": r"^(?:" + "|".join(stem) + r")\." if stem else r"^$"}
    if final:
        matcher["blocks"] = [(blocks, None), (r"^(?:" + "|".join(final) + r")\.", (LAST_GROUP,))]
    else:
        matcher["blocks"] = blocks
    return matcher
