"""Evaluating a checkpoint (or a live model) on a data split, as plain data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from ..data import open_dataset
from ..errors import SpecError
from ..spec.model import Spec
from . import distributed
from .checkpoint import load_checkpoint
from .fit import check_fit
from .metrics import evaluate_model
from .recipe import Recipe


def evaluate(
    checkpoint: str | Path | nn.Module,
    data: str | None,
    *,
    split: str = "test",
    spec: Spec | None = None,
    recipe: Recipe | None = None,
    batch_size: int = 256,
    device: str | None = None,
    ema: bool = False,
) -> dict[str, Any]:
    if isinstance(checkpoint, nn.Module):
        if spec is None:
            raise SpecError("evaluate: a live model needs its spec (spec=...)")
        model = checkpoint
        recipe = recipe or Recipe()
    else:
        loaded = load_checkpoint(checkpoint)
        spec, recipe = spec or loaded.spec, recipe or loaded.recipe
        data = data or loaded.data
        model = loaded.build_model(ema=ema)
    if data is None:
        raise SpecError("evaluate: give --data (the checkpoint does not name its data)")
    dataset = open_dataset(
        data,
        split,
        size=spec.input.hw,
        normalize=recipe.normalize,
        eval_crop=recipe.eval_crop,
        channels=spec.input.channels,
        num_classes=spec.head.num_classes if spec.head else 10,
        seed=recipe.seed,
    )
    check_fit(spec, dataset.info, resizes=False)
    target = distributed.pick_device(device, 0)
    model.to(target)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=recipe.workers)
    result = evaluate_model(model, loader, dataset.info.num_classes, target, amp=recipe.amp)
    return {**result, "class_names": list(dataset.info.class_names), "data": data, "split": dataset.info.split}
