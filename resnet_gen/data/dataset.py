"""The torch ``Dataset`` over a reader's images: decode, augment (seeded per sample), normalise."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from . import readers
from .info import IMAGENET_MEAN, IMAGENET_STD, DataError, DatasetInfo, check_split, parse_source
from .transforms import Augment, apply, center_crop, resize

NORMALIZE = ("dataset", "imagenet", "none")


class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """``dataset[i]`` is ``(image, label)``: a float tensor (C, H, W), normalised, and an int.

    ``dataset[(i, seed)]`` applies the training augmentation with randomness from ``seed`` (the
    trainer's sampler hands out such pairs); a plain index never augments. ``.info`` describes it.
    """

    def __init__(
        self,
        raw: readers.RawImages,
        info: DatasetInfo,
        *,
        size: tuple[int, int] | None,
        augment: Augment,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        eval_crop: float,
    ) -> None:
        self.raw = raw
        self.info = info
        self.size = size or info.size
        self.augment = augment
        self.eval_crop = eval_crop
        self.labels = torch.from_numpy(raw.labels)
        self._mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        image = self._load(index)
        assert self.size is not None
        if seed is not None and self.augment.type != "none":
            image = apply(self.augment, image, self.size, seed)
        elif tuple(image.shape[-2:]) != self.size:
            image = (
                center_crop(image, self.size, self.eval_crop) if self.info.size is None else resize(image, self.size)
            )
        return (image - self._mean) / self._std, int(self.labels[index])

    def _load(self, index: int) -> torch.Tensor:
        if self.raw.pixels is not None:
            pixels = torch.from_numpy(self.raw.pixels[index])
            return pixels.to(torch.float32) / self.raw.scale
        decoded = readers.decode_image(self.raw.files[index], self.raw.channels)
        return torch.from_numpy(decoded).to(torch.float32) / 255.0


def open_image_dataset(
    source: str,
    split: str = "train",
    *,
    size: int | tuple[int, int] | None = None,
    augment: Augment | str | None = None,
    normalize: str = "dataset",
    eval_crop: float = 1.0,
    channels: int = 3,
    num_classes: int = 10,
    seed: int = 0,
) -> ImageDataset:
    """See :func:`resnet_gen.data.open_dataset`."""
    kind, argument = parse_source(source)
    split = check_split(source, split)
    hw = (size, size) if isinstance(size, int) else ((int(size[0]), int(size[1])) if size is not None else None)
    if kind == "synthetic" and hw is None:
        hw = (32, 32)
    chosen = augment if isinstance(augment, Augment) else Augment(type=augment or "none")
    synthetic: dict[str, Any] = {"channels": channels, "size": hw, "num_classes": num_classes, "seed": seed}
    raw = readers.read(kind, argument, split, synthetic)
    native = tuple(int(d) for d in raw.pixels.shape[-2:]) if raw.pixels is not None else None
    # Image folders carry no statistics of their own: ImageNet's for RGB, mid-grey for greyscale.
    grey = (0.5,) * raw.channels, (0.25,) * raw.channels
    default_mean, default_std = (IMAGENET_MEAN, IMAGENET_STD) if raw.channels == 3 else grey
    info = DatasetInfo(
        source=source,
        split=split,
        num_classes=len(raw.class_names),
        channels=raw.channels,
        size=(native[0], native[1]) if native else None,
        class_names=raw.class_names,
        mean=raw.mean or default_mean,
        std=raw.std or default_std,
        length=len(raw.labels),
    )
    if normalize not in NORMALIZE:
        raise DataError(f"normalize: unknown normalisation {normalize!r}; use dataset, imagenet or none")
    if normalize == "imagenet" and raw.channels != 3:
        raise DataError(f"{source}: ImageNet normalisation needs RGB images; these have {raw.channels} channel(s)")
    mean, std = {
        "dataset": (info.mean, info.std),
        "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
        "none": ((0.0,) * raw.channels, (1.0,) * raw.channels),
    }[normalize]
    if hw is None and info.size is None:
        raise DataError(f"{source}: images here differ in size; give the output size (size=...)")
    return ImageDataset(raw, info, size=hw, augment=chosen, mean=mean, std=std, eval_crop=eval_crop)


def label_counts(dataset: ImageDataset) -> list[int]:
    return np.bincount(dataset.raw.labels, minlength=dataset.info.num_classes).tolist()  # type: ignore[no-any-return]
