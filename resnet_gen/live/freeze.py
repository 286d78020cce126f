"""Frozen stages: no gradients, and held in eval mode so their norm statistics never move."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def freeze(model: nn.Module, names: Iterable[str]) -> None:
    """Stop gradients for every parameter under the top-level modules ``names``."""
    for name in names:
        for parameter in model.get_submodule(name).parameters():
            parameter.requires_grad_(False)


def hold_in_eval(model: nn.Module, names: Iterable[str]) -> None:
    """Put the top-level modules ``names`` back in eval mode (called after every ``train()``)."""
    for name in names:
        model.get_submodule(name).train(False)
