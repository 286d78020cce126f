"""resnet-gen: a declarative architecture language and code generator for the ResNet family.

Importing the package does not import torch; only :func:`build` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .analysis import Report, analyze
from .errors import SpecError
from .plan import Plan, lower
from .spec import Spec, load_spec

if TYPE_CHECKING:
    from torch import nn

__version__ = "0.1.0"


def build(spec: Spec | Plan, **backbone: Any) -> nn.Module:
    """A live ``torch.nn.Module`` for ``spec``.

    Keyword arguments override the spec's ``backbone`` section, e.g.
    ``build(spec, features_only=True, out_indices=[2, 3, 4], output_stride=16, frozen_stages=1)``.
    """
    from .live import build as build_live

    return build_live(spec, **backbone)


__all__ = ["Plan", "Report", "Spec", "SpecError", "__version__", "analyze", "build", "load_spec", "lower"]
