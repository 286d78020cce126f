"""Convert state_dicts between our layout and timm's ResNetV2 (``timm.models.resnetv2``).

Our modules follow torchvision's layout; timm's ResNetV2 names the same tensors differently and
its classifier is a 1x1 conv. The key map is derived from the plan, so every tensor of the network
is mapped and anything timm's ResNetV2 cannot hold (attention, a conv in place of the stem pool)
is an error rather than a silently dropped key::

    ours                                   timm
    conv1                                  stem.conv     (one-conv stem; its norm bn1 -> stem.norm)
    conv1.0, conv1.1, conv1.3, conv1.4,    stem.conv1, stem.norm1, stem.conv2, stem.norm2,
    conv1.6 (deep stems)                   stem.conv3    (its norm bn1 -> stem.norm3)
    layer{S}.{B}.conv{K} / bn{K}           stages.{S-1}.blocks.{B}.conv{K} / norm{K}
    layer{S}.{B}.downsample.<conv / norm>  stages.{S-1}.blocks.{B}.downsample.conv / norm
    norm                                   norm          (the final norm of pre-activation nets)
    fc (Linear, [out, in])                 head.fc       (1x1 Conv2d, [out, in, 1, 1])

Usage::

    ours.load_state_dict(from_timm(timm_model.state_dict(), plan))
    timm_model.load_state_dict(to_timm(ours.state_dict(), plan))

Only tensor methods are used, so importing this module does not import torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..plan import Plan
from ..plan.layers import Conv, EvoNormS0, FilterResponseNorm, Layer, Linear, Norm

if TYPE_CHECKING:
    from torch import Tensor

_NORMS = (Norm, EvoNormS0, FilterResponseNorm)


def _has_tensors(layer: Layer) -> bool:
    return isinstance(layer, (Conv, Linear, *_NORMS))


def _unsupported(path: str, layer: Layer) -> ValueError:
    return ValueError(f"{path}: timm's ResNetV2 has no place for a {type(layer).__name__} layer")


def _in_stem_conv(path: str) -> bool:
    """The stem's own convs and norms (``conv1``, ``conv1.N``, ``bn1``), not a conv in the pool's place."""
    return path in ("conv1", "bn1") or path.startswith("conv1.")


def _stem_names(plan: Plan) -> dict[str, str]:
    convs = [layer for layer in plan.stem if isinstance(layer, Conv)]
    single = len(convs) == 1
    names: dict[str, str] = {}
    count = 0
    for layer in plan.stem:
        if not (_has_tensors(layer) or layer.params):
            continue
        if isinstance(layer, Conv) and _in_stem_conv(layer.path):
            count += 1
            names[layer.path] = "stem.conv" if single else f"stem.conv{count}"
        elif isinstance(layer, _NORMS) and _in_stem_conv(layer.path):
            names[layer.path] = "stem.norm" if single else f"stem.norm{count}"
        else:
            raise _unsupported(layer.path, layer)
    if len(set(names.values())) != len(names):
        raise ValueError("the stem does not fit timm's ResNetV2 stem (one norm after each conv)")
    return names


def key_map(plan: Plan) -> dict[str, str]:
    """Our module path -> timm's module path, for every layer of ``plan`` that holds tensors."""
    names = _stem_names(plan)
    for block in plan.blocks:
        stage = f"stages.{block.stage}.blocks.{block.index}"
        for layer in block.preact + block.branch:
            if not (_has_tensors(layer) or layer.params):
                continue
            norm = re.fullmatch(r"bn(\d)", layer.path)
            if isinstance(layer, _NORMS) and norm:
                names[f"{block.path}.{layer.path}"] = f"{stage}.norm{norm[1]}"
            elif isinstance(layer, Conv) and re.fullmatch(r"conv\d", layer.path):
                names[f"{block.path}.{layer.path}"] = f"{stage}.{layer.path}"
            else:
                raise _unsupported(f"{block.path}.{layer.path}", layer)
        for layer in block.shortcut:
            if isinstance(layer, Conv):
                names[f"{block.path}.{layer.path}"] = f"{stage}.downsample.conv"
            elif isinstance(layer, _NORMS):
                names[f"{block.path}.{layer.path}"] = f"{stage}.downsample.norm"
            elif _has_tensors(layer) or layer.params:
                raise _unsupported(f"{block.path}.{layer.path}", layer)
    for layer in plan.final:
        if isinstance(layer, _NORMS):
            names[layer.path] = "norm"
        elif _has_tensors(layer) or layer.params:
            raise _unsupported(layer.path, layer)
    if plan.head is not None and plan.head.fc is not None:
        names[plan.head.fc.path] = "head.fc"
    return names


def _classifier(plan: Plan) -> str | None:
    return plan.head.fc.path if plan.head is not None and plan.head.fc is not None else None


def _convert(state_dict: Mapping[str, Tensor], names: Mapping[str, str], what: str) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        module, _, tensor_name = key.rpartition(".")
        if module not in names:
            raise KeyError(f"{key!r} is not a tensor of this network in {what} layout")
        out[f"{names[module]}.{tensor_name}"] = tensor
    return out


def to_timm(state_dict: Mapping[str, Tensor], plan: Plan) -> dict[str, Tensor]:
    """Our state_dict for ``plan`` in timm's ResNetV2 layout (the classifier as a 1x1 conv)."""
    names = key_map(plan)
    out = _convert(state_dict, names, "our")
    fc = _classifier(plan)
    if fc is not None and f"{names[fc]}.weight" in out:
        weight = out[f"{names[fc]}.weight"]
        out[f"{names[fc]}.weight"] = weight.reshape(*weight.shape, 1, 1)
    return out


def from_timm(state_dict: Mapping[str, Tensor], plan: Plan) -> dict[str, Tensor]:
    """A timm ResNetV2 state_dict in our layout for ``plan`` (the classifier as a Linear)."""
    names = {theirs: ours for ours, theirs in key_map(plan).items()}
    out = _convert(state_dict, names, "timm's ResNetV2")
    fc = _classifier(plan)
    if fc is not None and f"{fc}.weight" in out:
        weight = out[f"{fc}.weight"]
        out[f"{fc}.weight"] = weight.reshape(weight.shape[0], -1)
    return out
