"""Front end: YAML spec files to validated :class:`Spec` objects."""

from .load import load_spec, resolve, validate
from .model import Spec

__all__ = ["Spec", "load_spec", "resolve", "validate"]
