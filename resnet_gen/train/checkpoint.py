"""Training checkpoints: one file with everything a run needs to continue exactly.

A checkpoint is a ``torch.save`` mapping: the model's state_dict (torchvision's key layout, so it
loads into the emitted source and into the torchvision / timm model of the same name), optimizer,
scheduler, gradient scaler, EMA, RNG states, the epoch and step, the history so far, and the
resolved spec and recipe. It is written to a temporary file and renamed, and read back with
``weights_only=True`` (no code in a checkpoint runs).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import SpecError
from ..files import write_bytes_atomic
from ..spec.model import Spec
from .recipe import Recipe

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT = "resnet-gen-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the resolved ``spec`` and ``recipe``, the ``model`` state_dict, and
    ``state`` (everything else: optimizer, scheduler, scaler, ema, rng, epoch, step, history)."""

    path: Path
    spec: Spec
    recipe: Recipe
    model: dict[str, torch.Tensor]
    state: dict[str, Any]

    @property
    def data(self) -> str | None:
        """The ``--data`` source the run trained on."""
        value = self.state.get("data")
        return str(value) if value is not None else None

    @property
    def ema(self) -> dict[str, torch.Tensor] | None:
        found = self.state.get("ema")
        return found if isinstance(found, dict) else None

    def build_model(self, *, ema: bool = False) -> nn.Module:
        """The live network of the checkpoint's spec with its weights (the EMA's when ``ema``)."""
        from .. import build

        model = build(self.spec)
        weights = self.ema if ema and self.ema is not None else self.model
        model.load_state_dict(weights)
        return model


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buffer)
    write_bytes_atomic(path, buffer.getvalue(), hint="choose another run folder with --out")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by ``resnet-gen train``; a missing, corrupt or foreign file is a
    one-line SpecError naming it."""
    import pickle

    import torch

    where = Path(path).expanduser()
    label = str(path)
    if not where.is_file():
        raise SpecError(f"{label}: no such checkpoint file; give a .ckpt from a run folder (last.ckpt, best.ckpt)")
    try:
        loaded = torch.load(where, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError):
        raise SpecError(f"{label}: cannot read this checkpoint (truncated or not a torch file); use another") from None
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
        raise SpecError(
            f"{label}: not a resnet-gen training checkpoint (a bare state_dict? load it with resnet-gen weights)"
        )
    if loaded.get("version") != VERSION:
        raise SpecError(f"{label}: checkpoint version {loaded.get('version')!r}; this resnet-gen reads {VERSION}")
    try:
        spec = Spec.model_validate(loaded["spec"])
        recipe = Recipe.model_validate(loaded["recipe"])
        model = loaded["model"]
    except (KeyError, ValidationError):
        raise SpecError(f"{label}: the checkpoint's spec or recipe is missing or invalid; use another") from None
    state = {k: v for k, v in loaded.items() if k not in ("format", "version", "spec", "recipe", "model")}
    return Checkpoint(where, spec, recipe, model, state)


def model_from_checkpoint(path: str | Path, *, ema: bool = False) -> nn.Module:
    """Rebuild the live network a checkpoint was trained as, with its weights, in eval mode."""
    model = load_checkpoint(path).build_model(ema=ema)
    model.eval()
    return model
