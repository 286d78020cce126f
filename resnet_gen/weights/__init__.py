"""Loading local checkpoints into a built network: key layouts, input-conv adaptation, a report.

Nothing here downloads anything; checkpoints are files the user already has, or state_dicts.
Importing this package does not import torch; :func:`load_weights` does.
"""

from .report import WeightsError, WeightsReport

__all__ = ["WeightsError", "WeightsReport", "load_weights"]


def __getattr__(name: str) -> object:
    if name == "load_weights":
        from .load import load_weights

        return load_weights
    raise AttributeError(name)
