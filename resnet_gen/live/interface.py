"""timm's model interface on the live network: what timm's training scripts and utilities call
(``pretrained_cfg``, ``get_classifier``, ``reset_classifier``, ``forward_head(pre_logits=...)``,
``set_grad_checkpointing``, ``group_matcher``, ``no_weight_decay``) and ``feature_info``.
The emitted file writes the same methods into its model class (templates/model.py.j2)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..plan import Plan
from ..plan import interface as cfg
from ..plan.types import FeatureTap
from ..runtime.features import FeatureInfo


def feature_info(taps: list[FeatureTap] | tuple[FeatureTap, ...]) -> FeatureInfo:
    """timm's ``feature_info`` of the feature maps at ``taps``, as the emitted file writes it."""
    return FeatureInfo(
        {"num_chs": tap.channels, "reduction": tap.reduction, "module": tap.module, "index": tap.index} for tap in taps
    )


class ModelInterface(nn.Module):
    """The timm methods, for a network built from ``plan``; the subclass builds the layers."""

    fc: nn.Module | None
    global_pool: nn.Module

    def _set_interface(self, plan: Plan) -> None:
        if not hasattr(self, "fc"):
            self.fc = None  # no head: nothing to classify with until reset_classifier adds one
        self.pretrained_cfg = cfg.pretrained_cfg(plan)
        self.default_cfg = self.pretrained_cfg
        self.num_classes = cfg.num_classes(plan)
        self.num_features = cfg.num_features(plan)
        self.grad_checkpointing = False
        self._matchers = {coarse: cfg.group_matcher(plan, coarse) for coarse in (False, True)}

    def get_classifier(self, name_only: bool = False) -> str | nn.Module:
        if name_only:
            return cfg.CLASSIFIER
        return self.fc if self.fc is not None else nn.Identity()

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier for ``num_classes`` (0: none, the pooled features); ``global_pool``
        ``avg`` or ``max`` replaces the pooling."""
        if not hasattr(self, "global_pool"):
            raise RuntimeError("this network has no head (head: null); it returns its feature map")
        if global_pool is not None:
            if global_pool not in ("avg", "max"):
                raise ValueError(f"global_pool must be 'avg' or 'max', not {global_pool!r}")
            self.global_pool = nn.AdaptiveAvgPool2d(1) if global_pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else None
        self.pretrained_cfg = {**self.pretrained_cfg, "num_classes": num_classes}
        self.default_cfg = self.pretrained_cfg

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in the backward pass instead of keeping them."""
        self.grad_checkpointing = enable

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(self._matchers[coarse])

    def no_weight_decay(self) -> set[str]:
        """Parameters to train without weight decay beyond timm's own rule (norms and biases): none."""
        return set()
