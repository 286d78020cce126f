"""Does the data fit the network? Channels, size and class count, with the ``--set`` that fixes it."""

from __future__ import annotations

from ..data import DataError, DatasetInfo
from ..spec.model import Spec


def check_fit(spec: Spec, info: DatasetInfo, *, resizes: bool) -> None:
    """Raise a one-line DataError when ``info``'s images or labels do not suit ``spec``.

    ``resizes``: the input pipeline brings any image to the spec's size (random resized crops,
    data sets of varying size), so only fixed-size data that is not resized must match."""
    fixes: list[str] = []
    found: list[str] = []
    if info.channels != spec.input.channels:
        found.append(f"{info.channels}-channel images into a {spec.input.channels}-channel input")
        fixes.append(f"--set input.channels={info.channels}")
    if not resizes and info.size is not None and info.size != spec.input.hw:
        height, width = info.size
        found.append(f"{height}x{width} images into a {spec.input.hw[0]}x{spec.input.hw[1]} input")
        fixes.append(f"--set input.size={height}" if height == width else f"--set input.size=[{height},{width}]")
    if spec.head is not None and spec.head.has_decoder:
        found.append(f"class labels into a {spec.head.type} head (training takes classifiers; it returns a mask)")
        fixes.append("--set head.type=classifier")
    elif spec.head is None or spec.head.num_classes == 0:
        found.append("a network without a classifier")
        fixes.append(f"--set head.num_classes={info.num_classes}")
    elif spec.head.num_classes != info.num_classes:
        found.append(f"{info.num_classes} classes into a {spec.head.num_classes}-way classifier")
        fixes.append(f"--set head.num_classes={info.num_classes}")
    if found:
        raise DataError(f"{info.source}: {'; '.join(found)}; add {' '.join(fixes)}")
