"""torch is an optional dependency: validating, analysing, emitting and drawing never need it.

What does need it (a live module, loading weights, export, training) calls :func:`require_torch`
first, so a missing install is one line naming the command that fixes it, not a traceback.
"""

from __future__ import annotations

INSTALL_HINT = "pip install 'resnet-gen[torch]' (in a checkout of resnet-gen: make torch)"


class TorchMissing(ImportError):
    """torch is not installed, and the thing asked for needs it."""


def require_torch(what: str) -> None:
    """Raise :class:`TorchMissing` saying that ``what`` needs torch, when torch cannot be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TorchMissing(f"{what} needs torch, which is not installed; install it with {INSTALL_HINT}") from None
