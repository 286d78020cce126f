"""Readers for the local file formats: each turns a folder into images in memory (or a list of
image files) with labels and class names, or raises a DataError naming the path and what was
expected. numpy only; torch comes in with the dataset that wraps them."""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .info import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass
class RawImages:
    """One split: ``pixels`` (N, C, H, W) uint8 in memory with ``scale`` the value of white, or
    ``files`` to decode one at a time; ``labels`` and ``class_names`` either way."""

    labels: npt.NDArray[np.int64]
    class_names: tuple[str, ...]
    channels: int
    pixels: npt.NDArray[np.uint8] | None = None
    scale: float = 255.0
    files: list[Path] = field(default_factory=list)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def folder(argument: str, kind: str) -> Path:
    path = Path(argument).expanduser()
    if not path.exists():
        raise DataError(f"{argument}: no such folder; point --data {kind}:PATH at the unpacked data set")
    if not path.is_dir():
        raise DataError(f"{argument}: is a file, not a folder; point --data {kind}:PATH at the folder holding it")
    return path


def read_digits(split: str) -> RawImages:
    """scikit-learn's 8x8 digits (values 0 to 16), split 80/20 by class with a fixed seed."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise DataError(
            "digits: needs scikit-learn, which ships the data set; pip install 'resnet-gen[experiments]'"
        ) from None
    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)[:, None]
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    mean, std = _stats(train_x, 16.0)
    pixels, chosen = (train_x, train_y) if split == "train" else (test_x, test_y)
    names = tuple(str(n) for n in bunch.target_names)
    return RawImages(chosen, names, 1, pixels=np.ascontiguousarray(pixels), scale=16.0, mean=mean, std=std)


def _stats(pixels: npt.NDArray[np.uint8], scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    values = pixels.astype(np.float64) / scale
    return tuple(values.mean(axis=(0, 2, 3)).tolist()), tuple(values.std(axis=(0, 2, 3)).tolist())


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's batches are pickles; allow only what they hold (dicts, lists, numpy arrays), so a
    file planted in a data folder cannot run code."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _unpickle(path: Path, argument: str, kind: str) -> dict[bytes, Any]:
    try:
        with path.open("rb") as handle:
            loaded = _ArraysOnly(handle, encoding="bytes").load()
    except OSError as exc:
        raise DataError(f"{argument}: cannot read {path.name}: {exc.strerror}") from None
    except Exception:
        raise DataError(f"{argument}: {path.name} is not a {kind} python-pickle batch; {_CIFAR_HINT[kind]}") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{argument}: {path.name} is not a {kind} python-pickle batch; {_CIFAR_HINT[kind]}")
    return loaded


_CIFAR_HINT = {
    "cifar10": "expected the unpacked cifar-10-python.tar.gz (data_batch_1 ... data_batch_5, test_batch, batches.meta)",
    "cifar100": "expected the unpacked cifar-100-python.tar.gz (train, test, meta)",
}


def read_cifar(argument: str, split: str, kind: str) -> RawImages:
    root = folder(argument, kind)
    if kind == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta_name, label_key, names_key = "batches.meta", b"labels", b"label_names"
    else:
        names = ["train"] if split == "train" else ["test"]
        meta_name, label_key, names_key = "meta", b"fine_labels", b"fine_label_names"
    missing = [n for n in [*names, meta_name] if not (root / n).is_file()]
    if missing:
        raise DataError(f"{argument}: no {missing[0]} here; {_CIFAR_HINT[kind]}")
    chunks, labels = [], []
    for name in names:
        batch = _unpickle(root / name, argument, kind)
        data, batch_labels = batch.get(b"data"), batch.get(label_key)
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or batch_labels is None:
            raise DataError(
                f"{argument}: {name} does not hold 32x32x3 images and {label_key.decode()}; {_CIFAR_HINT[kind]}"
            )
        chunks.append(data.astype(np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch_labels, dtype=np.int64))
    meta = _unpickle(root / meta_name, argument, kind)
    class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(names_key, []))
    label_array = np.concatenate(labels)
    if not class_names or label_array.min() < 0 or label_array.max() >= len(class_names):
        raise DataError(f"{argument}: {meta_name} and the labels do not agree; {_CIFAR_HINT[kind]}")
    stats = _CIFAR_STATS[kind]
    return RawImages(label_array, class_names, 3, pixels=np.concatenate(chunks), mean=stats[0], std=stats[1])


# Per-channel mean and standard deviation of the training images, as commonly quoted.
_CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_MNIST_FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
_MNIST_HINT = (
    "expected the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., optionally .gz)"
)


def _idx_file(root: Path, stem: str, dims: int, argument: str) -> Path:
    for name in (f"{stem}-idx{dims}-ubyte", f"{stem}.idx{dims}-ubyte"):
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{argument}: no {stem}-idx{dims}-ubyte here; {_MNIST_HINT}")


def _read_idx(path: Path, dims: int, argument: str) -> npt.NDArray[np.uint8]:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{argument}: cannot read {path.name}: {getattr(exc, 'strerror', None) or exc}") from None
    header = 4 + 4 * dims
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != 0x0800 + dims:
        raise DataError(f"{argument}: {path.name} is not an IDX file of unsigned bytes with {dims} dimensions")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise DataError(f"{argument}: {path.name} is truncated: its header says {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist(argument: str, split: str) -> RawImages:
    root = folder(argument, "mnist")
    image_stem, label_stem = _MNIST_FILES[split]
    images = _read_idx(_idx_file(root, image_stem, 3, argument), 3, argument)
    labels = _read_idx(_idx_file(root, label_stem, 1, argument), 1, argument).astype(np.int64)
    if len(images) != len(labels) or (len(labels) and labels.max() > 9):
        raise DataError(f"{argument}: {image_stem} and {label_stem} do not match; {_MNIST_HINT}")
    names = tuple(str(i) for i in range(10))
    return RawImages(labels, names, 1, pixels=np.ascontiguousarray(images[:, None]), mean=(0.1307,), std=(0.3081,))


def read_imagefolder(argument: str, split: str) -> RawImages:
    """``PATH/train/<class>/*`` and ``PATH/test/<class>/*`` (or ``val``); a tree without split
    folders is used whole for every split."""
    root = folder(argument, "imagefolder")
    candidates = ["train"] if split == "train" else ["test", "val"]
    tree = next((root / c for c in candidates if (root / c).is_dir()), None)
    if tree is None:
        if (root / "train").is_dir():
            raise DataError(f"{argument}: has train/ but no test/ or val/ folder for the {split} split")
        tree = root
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{tree}: no class folders; expected {tree}/<class>/<image> (an ImageFolder tree)")
    files: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        found = sorted(p for p in (tree / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        files.extend(found)
        labels.extend([index] * len(found))
    if not files:
        raise DataError(f"{tree}: the class folders hold no images ({', '.join(IMAGE_SUFFIXES)})")
    channels = 1 if _image_mode(files[0], argument) in ("1", "L", "I", "I;16", "F") else 3
    return RawImages(np.asarray(labels, dtype=np.int64), tuple(classes), channels, files=files)


def _image_mode(path: Path, argument: str) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return str(image.mode)
    except (OSError, UnidentifiedImageError):
        raise DataError(f"{path}: cannot decode this image; remove it from {argument} or replace it") from None


def decode_image(path: Path, channels: int) -> npt.NDArray[np.uint8]:
    """One image file as (C, H, W) uint8: greyscale or RGB as the data set's first image was."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
            array = np.asarray(converted, dtype=np.uint8)
    except (OSError, UnidentifiedImageError):
        raise DataError(f"{path}: cannot decode this image; remove it or replace it") from None
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))


def read_synthetic(
    argument: str, split: str, channels: int, size: tuple[int, int], num_classes: int, seed: int
) -> RawImages:
    """Random images and labels, the same for the same arguments (``size`` from the network)."""
    count = int(argument) if argument else 256
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    pixels = rng.integers(0, 256, size=(count, channels, *size), dtype=np.uint8)
    labels = rng.integers(0, num_classes, size=count).astype(np.int64)
    names = tuple(f"class_{i}" for i in range(num_classes))
    half = (0.5,) * channels
    return RawImages(labels, names, channels, pixels=pixels, mean=half, std=(0.29,) * channels)


def read(kind: str, argument: str, split: str, synthetic: dict[str, Any]) -> RawImages:
    if kind == "digits":
        return read_digits(split)
    if kind in ("cifar10", "cifar100"):
        return read_cifar(argument, split, kind)
    if kind == "mnist":
        return read_mnist(argument, split)
    if kind == "imagefolder":
        return read_imagefolder(argument, split)
    return read_synthetic(argument, split, **synthetic)


__all__ = ["RawImages", "decode_image", "read"]
