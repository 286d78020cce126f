"""What a data set is (classes, channels, size, normalisation), and parsing a ``--data`` source."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError

SOURCES = ("digits", "cifar10", "cifar100", "mnist", "imagefolder", "synthetic")
SPLITS = ("train", "test")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataError(SpecError):
    """A data source that cannot be read: missing, malformed, or not what the network takes."""


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of one split of a data set. ``size`` is ``None`` when images differ in size."""

    source: str
    split: str
    num_classes: int
    channels: int
    size: tuple[int, int] | None
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    length: int


def parse_source(source: str) -> tuple[str, str]:
    """``cifar10:~/data/x`` -> ``("cifar10", "~/data/x")``; ``digits`` -> ``("digits", "")``."""
    kind, _, argument = source.partition(":")
    kind = kind.strip().lower()
    if kind not in SOURCES:
        raise DataError(
            f"{source}: unknown data source; use digits, synthetic[:N], cifar10:PATH, cifar100:PATH, "
            "mnist:PATH or imagefolder:PATH"
        )
    if kind in ("cifar10", "cifar100", "mnist", "imagefolder") and not argument:
        raise DataError(f"{source}: {kind} needs a folder, as in --data {kind}:PATH")
    if kind == "digits" and argument:
        raise DataError(f"{source}: digits ships with scikit-learn and takes no path; use --data digits")
    if kind == "synthetic" and argument and not (argument.isdigit() and int(argument) > 0):
        raise DataError(f"{source}: synthetic takes a positive number of images, as in --data synthetic:512")
    return kind, argument


def check_split(source: str, split: str) -> str:
    """``val`` is the test split of the two-split data sets; anything else is an error."""
    name = "test" if split == "val" else split
    if name not in SPLITS:
        raise DataError(f"{source}: unknown split {split!r}; use train or test")
    return name
