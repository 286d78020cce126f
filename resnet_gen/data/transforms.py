"""Augmentations that draw their randomness from a per-sample seed, not from a global generator.

Each training sample arrives with a seed derived from (run seed, epoch, position), so the images a
run sees do not depend on the number of loader workers or processes, and a resumed run sees the
same images as one that never stopped. Images are float tensors (C, H, W) in [0, 1].
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """``none``; ``crop_flip``: zero-pad by ``padding`` and crop back at random (He et al. 2015's
    CIFAR scheme); ``random_resized_crop``: a random area in ``scale`` and aspect in ``ratio``,
    resized to the output size (the ImageNet scheme). ``flip``: a horizontal flip half the time."""

    type: str = "none"
    padding: int = 4
    flip: bool = True
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    @property
    def resizes(self) -> bool:
        return self.type == "random_resized_crop"


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def center_crop(image: torch.Tensor, size: tuple[int, int], fraction: float) -> torch.Tensor:
    """Resize the shorter side to ``size / fraction``, then take the centre ``size`` (evaluation)."""
    height, width = image.shape[-2:]
    target_h, target_w = size
    factor = max(target_h, target_w) / fraction / min(height, width)
    scaled = (max(target_h, round(height * factor)), max(target_w, round(width * factor)))
    image = resize(image, scaled)
    top, left = (scaled[0] - target_h) // 2, (scaled[1] - target_w) // 2
    return image[:, top : top + target_h, left : left + target_w]


def apply(augment: Augment, image: torch.Tensor, size: tuple[int, int], seed: int) -> torch.Tensor:
    rng = random.Random(seed)
    if augment.type == "crop_flip":
        pad = augment.padding
        padded = F.pad(image, (pad, pad, pad, pad)) if pad else image
        top = rng.randint(0, padded.shape[-2] - size[0])
        left = rng.randint(0, padded.shape[-1] - size[1])
        image = padded[:, top : top + size[0], left : left + size[1]]
    elif augment.type == "random_resized_crop":
        top, left, height, width = _resized_crop_box(image.shape[-2], image.shape[-1], augment, rng)
        image = resize(image[:, top : top + height, left : left + width], size)
    if augment.flip and augment.type != "none" and rng.random() < 0.5:
        image = image.flip(-1)
    return image


def _resized_crop_box(height: int, width: int, augment: Augment, rng: random.Random) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop rule: ten tries at a random area and aspect, else the centre."""
    area = height * width
    log_ratio = (math.log(augment.ratio[0]), math.log(augment.ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*augment.scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    aspect = width / height
    if aspect < augment.ratio[0]:
        w, h = width, round(width / augment.ratio[0])
    elif aspect > augment.ratio[1]:
        h, w = height, round(height * augment.ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w
