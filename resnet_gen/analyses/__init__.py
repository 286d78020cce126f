"""Analyses of a network's structure and of its gradients (gradient flow, shattered gradients,
paths), each returning plain dataclasses. Modules that need torch import it only when called."""

from __future__ import annotations

from .paths import PathLengths, path_lengths

__all__ = ["PathLengths", "path_lengths"]
