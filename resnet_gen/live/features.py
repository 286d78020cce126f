"""Feature-map backbones: a live network that returns the feature maps the plan taps."""

from __future__ import annotations

from typing import Any

import torch

from ..plan import Plan
from ..plan.types import FeatureTap
from .build import ResNet


class FeatureInfo(list[dict[str, Any]]):
    """One dict per returned feature map (``num_chs``, ``reduction``, ``module``, ``index``), with
    timm's accessors ``channels()``, ``reduction()`` and ``module_name()``."""

    def __init__(self, taps: tuple[FeatureTap, ...]) -> None:
        super().__init__(
            {"num_chs": tap.channels, "reduction": tap.reduction, "module": tap.module, "index": tap.index}
            for tap in taps
        )

    def channels(self) -> list[int]:
        return [int(info["num_chs"]) for info in self]

    def reduction(self) -> list[int]:
        return [int(info["reduction"]) for info in self]

    def module_name(self) -> list[str]:
        return [str(info["module"]) for info in self]


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
