"""Front end: YAML spec files to validated :class:`Spec` objects (``resnet_gen.compile`` goes on
to the plan; ``rg.load_spec`` is there)."""

from .load import resolve, validate
from .model import Spec

__all__ = ["Spec", "resolve", "validate"]
