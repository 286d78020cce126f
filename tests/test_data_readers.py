"""The local readers against files written here in each format, and their one-line errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_gen.data import DataError, open_dataset
from resnet_gen.data.transforms import Augment, apply

RNG = np.random.default_rng(0)


def write_cifar10(root: Path, per_batch: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The python-pickle layout of cifar-10-batches-py: rows of 3072 bytes, R then G then B planes."""
    root.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = RNG.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        batch_labels = RNG.integers(0, 10, size=per_batch).tolist()
        with (root / name).open("wb") as handle:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": batch_labels}, handle)
        if name != "test_batch":
            images.append(data)
            labels.extend(batch_labels)
    names = [
        n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    ]
    with (root / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, handle)
    return np.concatenate(images), np.asarray(labels)


def test_cifar10_pixels_and_labels(tmp_path: Path) -> None:
    images, labels = write_cifar10(tmp_path)
    dataset = open_dataset(f"cifar10:{tmp_path}", "train", normalize="none")
    assert dataset.info.num_classes == 10 and dataset.info.size == (32, 32) and dataset.info.class_names[3] == "cat"
    assert len(dataset) == 20
    image, label = dataset[5]
    expected = torch.from_numpy(images[5].reshape(3, 32, 32).astype(np.float32) / 255)
    assert torch.equal(image, expected) and label == labels[5]
    assert len(open_dataset(f"cifar10:{tmp_path}", "test")) == 4


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_pickles_of_any_protocol(tmp_path: Path, protocol: int) -> None:
    images, labels = write_cifar10(tmp_path)
    with (tmp_path / "test_batch").open("wb") as handle:
        pickle.dump({b"data": images[:3], b"labels": labels[:3].tolist()}, handle, protocol=protocol)
    dataset = open_dataset(f"cifar10:{tmp_path}", "test", normalize="none")
    assert torch.equal(dataset[2][0], torch.from_numpy(images[2].reshape(3, 32, 32).astype(np.float32) / 255))


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    data = RNG.integers(0, 256, size=(6, 3072), dtype=np.uint8)
    for name in ("train", "test"):
        with (tmp_path / name).open("wb") as handle:
            pickle.dump({b"data": data, b"fine_labels": [0, 5, 99, 1, 2, 3], b"coarse_labels": [0] * 6}, handle)
    with (tmp_path / "meta").open("wb") as handle:
        pickle.dump({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}, handle)
    dataset = open_dataset(f"cifar100:{tmp_path}", "test")
    assert dataset.info.num_classes == 100 and dataset[2][1] == 99


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (path.with_name(path.name + ".gz")).write_bytes(gzip.compress(raw)) if compress else path.write_bytes(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx(tmp_path: Path, compress: bool) -> None:
    images = RNG.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.asarray([3, 1, 4, 1, 5, 9, 2], dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels, compress)
    dataset = open_dataset(f"mnist:{tmp_path}", "train", normalize="none")
    assert dataset.info.channels == 1 and dataset.info.size == (28, 28) and len(dataset) == 7
    image, label = dataset[2]
    assert torch.equal(image[0], torch.from_numpy(images[2].astype(np.float32) / 255)) and label == 4


def test_imagefolder_tree(tmp_path: Path) -> None:
    for split in ("train", "val"):
        for name, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for index in range(2):
                Image.new("RGB", (20 + index * 10, 16), colour).save(folder / f"{index}.png")
    dataset = open_dataset(f"imagefolder:{tmp_path}", "test", size=8, normalize="none")
    assert dataset.info.class_names == ("cat", "dog") and dataset.info.size is None and len(dataset) == 4
    image, label = dataset[3]
    assert image.shape == (3, 8, 8) and label == 1
    torch.testing.assert_close(image[:, 4, 4], torch.tensor([0.0, 0.0, 1.0]))


def test_digits_is_sklearns_set_split_in_two() -> None:
    train, test = open_dataset("digits", "train", normalize="none"), open_dataset("digits", "test", normalize="none")
    from sklearn.datasets import load_digits  # a second of import: only this test needs it

    reference = load_digits()
    assert len(train) + len(test) == len(reference.images) and len(test) == 360
    seen = sorted(
        tuple((ds[i][0][0] * 16).round().int().flatten().tolist()) for ds in (train, test) for i in range(len(ds))
    )
    assert seen == sorted(tuple(image.astype(int).flatten().tolist()) for image in reference.images)


def test_crop_flip_is_a_window_of_the_zero_padded_image() -> None:
    image = torch.rand(1, 8, 8)
    padded = torch.zeros(1, 16, 16)
    padded[:, 4:12, 4:12] = image
    for seed in range(20):
        out = apply(Augment(type="crop_flip", padding=4, flip=False), image, (8, 8), seed)
        windows = [padded[:, t : t + 8, s : s + 8] for t in range(9) for s in range(9)]
        assert any(torch.equal(out, w) for w in windows)
    assert torch.equal(
        apply(Augment(type="crop_flip"), image, (8, 8), 7), apply(Augment(type="crop_flip"), image, (8, 8), 7)
    )


@pytest.mark.parametrize(
    ("source", "make", "expected"),
    [
        ("cifar10:{p}/missing", None, "no such folder"),
        ("cifar10:{p}", lambda p: (p / "data_batch_1").write_text("hello"), "no data_batch_2 here"),
        ("cifar10:{p}", "garbage", "is not a cifar10 python-pickle batch"),
        (
            "mnist:{p}",
            lambda p: (p / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00"),
            "not an IDX file",
        ),
        ("mnist:{p}", None, "no train-images-idx3-ubyte here"),
        ("imagefolder:{p}", None, "no class folders"),
        ("imagefolder:{p}", lambda p: (p / "a").mkdir(), "hold no images"),
        ("cifar10", None, "needs a folder"),
        ("svhn:{p}", None, "unknown data source"),
        ("synthetic:-3", None, "positive number"),
    ],
)
def test_bad_data_is_one_line_naming_the_path(tmp_path: Path, source: str, make: object, expected: str) -> None:
    if make == "garbage":
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
            (tmp_path / name).write_bytes(b"\x80\x04not a pickle")
    elif callable(make):
        make(tmp_path)
    with pytest.raises(DataError) as caught:
        open_dataset(source.format(p=tmp_path), "train")
    message = str(caught.value)
    assert expected in message and "\n" not in message
    if "{p}" in source:
        assert str(tmp_path) in message


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def test_a_pickle_that_calls_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_cifar10(tmp_path)
    with (tmp_path / "data_batch_1").open("wb") as handle:
        pickle.dump({b"data": _Exploit(), b"labels": [0]}, handle)
    with pytest.raises(DataError, match="is not a cifar10 python-pickle batch"):
        open_dataset(f"cifar10:{tmp_path}", "train")
    assert "pwned" not in capsys.readouterr().out
