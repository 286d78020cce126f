"""Frozen stages: no gradients. The plan has already made them mode-independent (frozen norms,
no dropout or drop-path; see ``plan.backbone.freeze_modules``), so nothing depends on ``train()``."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def freeze(model: nn.Module, names: Iterable[str]) -> None:
    """Stop gradients for every parameter under the top-level modules ``names``."""
    for name in names:
        model.get_submodule(name).requires_grad_(False)
