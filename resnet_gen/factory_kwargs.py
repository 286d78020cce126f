"""Model-factory keyword arguments as spec overrides: what ``timm.create_model`` and
``torch.hub.load`` pass (``num_classes=10``, ``in_chans=1``, ...) becomes the network ``--set``
would give. No torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import Location
from .spec import Spec
from .spec.load import apply_overrides
from .spec.yaml_source import LocatedMapping

# timm.create_model keyword -> the spec key it sets.
KWARGS = {
    "num_classes": "head.num_classes",
    "in_chans": "input.channels",
    "drop_path_rate": "drop_path",
    "drop_rate": "head.dropout",
    "global_pool": "head.pool",
    "features_only": "backbone.features_only",
    "out_indices": "backbone.out_indices",
    "output_stride": "backbone.output_stride",
}


def spec_overrides(spec: Spec, kwargs: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The spec overrides for ``timm.create_model``'s keyword arguments ``kwargs``."""
    unknown = sorted(set(kwargs) - set(KWARGS))
    if unknown:
        raise TypeError(
            f"{name}: got {', '.join(unknown)}, which resnet-gen specs do not take; it takes {', '.join(KWARGS)}"
        )
    overrides = {KWARGS[key]: value for key, value in kwargs.items()}
    if spec.head is None and (
        "head.num_classes" in overrides or "head.pool" in overrides or "head.dropout" in overrides
    ):
        raise ValueError(
            f"{name}: the spec has no head (head: null); num_classes, drop_rate and global_pool do not apply"
        )
    indices = overrides.get("backbone.out_indices")
    if isinstance(indices, int):  # timm's shorthand: the last N features
        count = len(spec.stages) + 1
        overrides["backbone.out_indices"] = list(range(count - indices, count))
    elif indices is not None:
        overrides["backbone.out_indices"] = list(indices)
    return overrides


def with_overrides(spec: Spec, overrides: dict[str, Any], where: str = "overrides") -> Spec:
    """``spec`` with dotted-path ``overrides`` applied and compiled, as ``--set`` would."""
    from .compile import compile_mapping

    data = spec.model_dump(mode="python", exclude_unset=True)
    mapping = LocatedMapping(data, {(): Location(where)}, where)
    apply_overrides(mapping, overrides)
    return compile_mapping(mapping)[0]
