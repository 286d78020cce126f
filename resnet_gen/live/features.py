"""Feature-map backbones: a live network that returns the feature maps the plan taps."""

from __future__ import annotations

from typing import Any

import torch

from ..plan import Plan
from ..plan.types import FeatureTap
from .build import ResNet


class FeatureInfo(list[dict[str, Any]]):
    """One dict per returned feature map (``num_chs``, ``reduction``, ``module``, ``index``), with
    timm's accessors: ``channels()``, ``reduction()``, ``module_name()``, ``get(key)`` and
    ``get_dicts()``, each for every feature or at ``idx`` (one position or a list of them).

    The emitted file writes the same class (templates/modules/FeatureInfo.py.j2)."""

    def __init__(self, taps: tuple[FeatureTap, ...]) -> None:
        super().__init__(
            {"num_chs": tap.channels, "reduction": tap.reduction, "module": tap.module, "index": tap.index}
            for tap in taps
        )

    def get(self, key: str, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def get_dicts(self, keys: list[str] | None = None, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        def pick(info: dict[str, Any]) -> dict[str, Any]:
            return info if keys is None else {key: info[key] for key in keys}

        if idx is None:
            return [pick(info) for info in self]
        if isinstance(idx, (list, tuple)):
            return [pick(self[i]) for i in idx]
        return pick(self[idx])

    def channels(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | list[int] | tuple[int, ...] | None = None) -> Any:
        return self.get("module", idx)


class FeatureResNet(ResNet):
    """``forward`` returns the list of feature maps at the plan's taps, in network order."""

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.feature_info = FeatureInfo(plan.features)
        self.taps = [tap.module for tap in plan.features]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        out: list[torch.Tensor] = []
        for name in (*self.stem, *self.stages):
            x = self._modules[name](x)  # type: ignore[misc]
            if name in self.taps:
                out.append(x)
        return out
