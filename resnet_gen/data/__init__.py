"""Local image data sets for training and evaluation: read from files on disk, never downloaded.

``open_dataset(source, split)`` names a data set by a short source string:

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, a fixed 80/20 split);
- ``cifar10:PATH`` / ``cifar100:PATH``: the python-pickle batches (``cifar-10-batches-py``);
- ``mnist:PATH``: the four IDX files (``train-images-idx3-ubyte`` ..., optionally ``.gz``);
- ``imagefolder:PATH``: ``PATH/<split>/<class>/<image>`` (or ``PATH/<class>/<image>``);
- ``synthetic[:N]``: N random images (for throughput runs), shaped as asked.

Importing this package does not import torch; opening a data set does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .info import SOURCES, DataError, DatasetInfo, parse_source

if TYPE_CHECKING:
    from .dataset import ImageDataset


def open_dataset(source: str, split: str = "train", **options: Any) -> ImageDataset:
    """A torch ``Dataset`` of ``(image tensor, label)`` pairs with its metadata in ``.info``.

    ``split`` is ``train`` or ``test`` (``val`` is accepted for ``test`` where a data set has only
    two splits). Options: ``size`` (output height and width; fixed-size data sets must already
    have it unless ``augment`` resizes), ``augment`` (an augmentation, see
    :mod:`resnet_gen.data.transforms`), ``normalize`` (``dataset``, ``imagenet`` or ``none``),
    ``eval_crop`` (the centre-crop fraction for data of varying size) and, for ``synthetic``,
    ``channels``, ``num_classes`` and ``seed``. Raises :class:`DataError` naming the path and
    what was expected.
    """
    from .dataset import open_image_dataset

    return open_image_dataset(source, split, **options)


__all__ = ["SOURCES", "DataError", "DatasetInfo", "ImageDataset", "open_dataset", "parse_source"]
