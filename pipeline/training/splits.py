"""What a run trains, validates and tests on: the splits of a dataset, as the networks take them.

The validation split is the last `validation` training images: the seed
validated on its own training set, which says nothing about unseen digits, so
here every choice made during training looks at this held-out split and the
test set only gives the final figures. Once the choices are made, `validation=0`
trains the same recipe on every training image: a final fit, with no validation
metrics, which `promote` therefore never chooses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.data import datasets, negatives, scans, strokes, typefaces
from pipeline.training.settings import Settings, SettingsError
from pipeline.training.versions import CLASSES

# Fashion-MNIST's training images up to this one give training non-digits, the rest validation ones.
CLOTHING_FOR_TRAINING = 50_000
PRINTED = 0.25  # of the written digits: the rest are drawn in pen strokes


@dataclass(frozen=True)
class Splits:
    """Images as float32 in [0, 1], shape (N, 28, 28); labels as integers."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def validated(self) -> bool:
        """Whether any images are held out: a final fit (`validation=0`) holds out none."""
        return len(self.validation_images) > 0


def scaled(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to the models' input: float32 in [0, 1], as the seed scaled them."""
    return images.astype(np.float32) / 255.0


def split(arrays: datasets.Arrays, validation: int, subset: int = 0) -> Splits:
    """Hold out the last `validation` training images (0: none); optionally keep only the first `subset`."""
    train_images, train_labels = arrays.train_images, arrays.train_labels
    test_images, test_labels = arrays.test_images, arrays.test_labels
    if subset:
        train_images, train_labels = train_images[:subset], train_labels[:subset]
        test_images, test_labels = test_images[:subset], test_labels[:subset]
    if not 0 <= validation < len(train_images):
        raise SettingsError(
            f"validation must be between 0 and {len(train_images) - 1} (the training images), got {validation}"
        )
    cut = len(train_images) - validation
    return Splits(
        scaled(train_images[:cut]),
        train_labels[:cut],
        scaled(train_images[cut:]),
        train_labels[cut:],
        scaled(test_images),
        test_labels,
    )


def additions(settings: Settings, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """What the recipe of `settings` trains on besides MNIST's `digits` training digits, images and labels:
    `settings.negatives` non-digits per digit (`pipeline.data.negatives`, label CLASSES), then
    `settings.written` digits drawn in pen strokes and printed in typefaces per digit; from `settings.seed`.
    Each kind (`added_kinds`) is made on its own (`addition`), so that a pool can make them side by side."""
    return joined([addition(settings, digits, kind) for kind in added_kinds(settings)])


def added_kinds(settings: Settings) -> list[str]:
    """The kinds of image the recipe of `settings` adds to MNIST's digits, in the order of `additions`."""
    return ["non-digits"] * bool(settings.negatives) + ["drawn", "printed"] * bool(settings.written)


def addition(settings: Settings, digits: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One kind of `additions` ("non-digits", "drawn" or "printed"): its images and labels."""
    if kind == "non-digits":
        clothing = datasets.load(datasets.FASHION_MNIST).train_images[:CLOTHING_FOR_TRAINING]
        images = negatives.sample(round(settings.negatives * digits), settings.seed, clothing)
        return images, np.full(len(images), CLASSES, np.uint8)
    count = round(settings.written * digits)
    printed = round(PRINTED * count)
    # Drawn and printed digits are scanned from random streams of their own.
    if kind == "drawn":
        images, labels = strokes.sample(count - printed, settings.seed)
        return scans.coarse(images, settings.coarse, settings.seed), labels
    images, labels = typefaces.sample(printed, settings.seed)
    return scans.coarse(images, settings.coarse, settings.seed + 1), labels


def joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels made in parts (`addition`), one after the other."""
    return np.concatenate([images for images, _ in parts]), np.concatenate([labels for _, labels in parts])


def with_additions(splits: Splits, added: tuple[np.ndarray, np.ndarray]) -> Splits:
    """`splits` with `added` images and labels (`additions`) among its training ones."""
    images, labels = added
    return replace(
        splits,
        train_images=np.concatenate([splits.train_images, images]),
        train_labels=np.concatenate([splits.train_labels, labels]).astype(splits.train_labels.dtype),
    )
