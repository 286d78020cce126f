"""The key layouts a checkpoint may use, each mapped to our module paths.

``torchvision/timm resnet``: our own layout (torchvision's, as extended by timm's ``resnet.py``):
keys are used as they are. ``timm resnetv2``: timm's ``resnetv2.py`` names, mapped through the
plan by :mod:`resnet_gen.convert.timm_resnetv2`. The layout that matches most keys wins.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from ..plan import Plan

KeyMap = Callable[[str], str | None]


def _identity(key: str) -> str | None:
    return key


def _resnetv2(plan: Plan) -> KeyMap | None:
    try:
        from ..convert.timm_resnetv2 import key_map
    except ImportError:  # pragma: no cover - the converter ships with the package
        return None
    try:
        modules = {theirs: ours for ours, theirs in key_map(plan).items()}
    except ValueError:
        return None  # the network has parts timm's ResNetV2 cannot hold

    def convert(key: str) -> str | None:
        module, _, tensor = key.rpartition(".")
        return f"{modules[module]}.{tensor}" if module in modules else None

    return convert


def choose_layout(keys: Collection[str], model_keys: Collection[str], plan: Plan | None) -> tuple[str, KeyMap]:
    """The layout whose mapping lands the most checkpoint keys on model keys."""
    candidates: list[tuple[str, KeyMap]] = [("torchvision/timm resnet", _identity)]
    if plan is not None:
        resnetv2 = _resnetv2(plan)
        if resnetv2 is not None:
            candidates.append(("timm resnetv2", resnetv2))
    wanted = set(model_keys)

    def hits(mapping: KeyMap) -> int:
        return sum(1 for key in keys if mapping(key) in wanted)

    return max(candidates, key=lambda candidate: hits(candidate[1]))


def mapped(state: Mapping[str, object], mapping: KeyMap) -> dict[str, str | None]:
    """Checkpoint key -> model key (None where the layout has no place for it)."""
    return {key: mapping(key) for key in state}
