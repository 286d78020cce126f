"""A trained network and the data to probe it with: a training checkpoint, checked against the
spec it is analysed as, and a data split read once into batches (local files only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..plan import Plan, lower
from ..spec import Spec
from .common import Batch

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Trained:
    """A checkpoint's network (eval mode), its spec, plan and the data it trained on."""

    spec: Spec
    plan: Plan
    model: nn.Module
    data: str | None
    normalize: str  # the recipe's input normalisation, for reading data as it trained
    path: Path


def load_trained(checkpoint: str | Path, spec: Spec | None = None, device: str = "cpu") -> Trained:
    """The checkpoint's network; with ``spec``, a one-line error unless the weights are that spec's."""
    from ..train import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    analysed = spec if spec is not None else loaded.spec
    from .. import build

    model = build(analysed)
    if spec is not None:
        _check_weights_fit(model, loaded.model, str(checkpoint), loaded.spec.name, spec.name)
    model.load_state_dict(loaded.model)
    model.to(device).eval()
    return Trained(analysed, lower(analysed), model, loaded.data, loaded.recipe.normalize, Path(checkpoint))


def _check_weights_fit(model: nn.Module, state: dict[str, torch.Tensor], label: str, trained: str, asked: str) -> None:
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()}
    if expected != found:
        raise SpecError(
            f"{label}: a checkpoint of {trained}, whose weights do not fit {asked}; give a checkpoint of {asked}"
        )


@dataclass(frozen=True)
class EvalData:
    """One split of a data set, read into batches once, to evaluate many variants of a network."""

    source: str
    split: str
    batches: tuple[Batch, ...]

    @property
    def count(self) -> int:
        return sum(batch.labels.shape[0] for batch in self.batches)


def read_split(
    source: str | None,
    spec: Spec,
    *,
    split: str = "test",
    batch: int = 256,
    limit: int | None = None,
    device: str = "cpu",
    normalize: str = "dataset",
    seed: int | None = None,
) -> EvalData:
    """``split`` of ``source`` at the spec's input, without augmentation. ``limit`` keeps that many
    images: the first ones, or with ``seed`` a random subset drawn from it (in data set order)."""
    import random

    import torch

    from ..data import open_dataset
    from ..train.fit import check_fit

    if source is None:
        raise SpecError("no data: give --data (digits, cifar10:PATH, ...); the checkpoint does not name its data")
    dataset = open_dataset(
        source,
        split,
        size=spec.input.hw,
        normalize=normalize,
        channels=spec.input.channels,
        num_classes=spec.head.num_classes if spec.head else 10,
    )
    check_fit(spec, dataset.info, resizes=False)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    if seed is not None and count < len(dataset):
        chosen = sorted(random.Random(seed).sample(range(len(dataset)), count))
    else:
        chosen = list(range(count))
    batches = []
    for start in range(0, count, batch):
        items = [dataset[i] for i in chosen[start : start + batch]]
        images = torch.stack([image for image, _ in items]).to(device)
        labels = torch.tensor([int(label) for _, label in items]).to(device)
        batches.append(Batch(images, labels))
    return EvalData(source, split, tuple(batches))


def error_rate(model: nn.Module, data: EvalData) -> float:
    """Top-1 error of ``model`` (eval mode) on ``data``, as a fraction."""
    import torch

    model.eval()
    wrong = 0
    with torch.no_grad():
        for batch in data.batches:
            wrong += int((model(batch.images).argmax(1) != batch.labels).sum())
    return wrong / data.count
