"""Feature-map backbones: a live network that returns the feature maps the plan taps."""

from __future__ import annotations

import torch

from ..plan import Plan
from .build import ResNet
from .interface import feature_info


class FeatureResNet(ResNet):
    """``forward`` returns the list of feature maps at the plan's taps, in network order."""

    features_only = True  # as the emitted file says it: what exporters read to name the outputs

    def __init__(self, plan: Plan) -> None:
        super().__init__(plan)
        self.feature_info = feature_info(plan.features)
        self.taps = [tap.module for tap in plan.features]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        out: list[torch.Tensor] = []
        for name in (*self.stem, *self.stages):
            x = self._modules[name](x)  # type: ignore[misc]
            if name in self.taps:
                out.append(x)
        return out
