"""The piece network: whether a candidate cut from a number is one whole digit, and which.

Trained on the labelled candidates of numbers composed from the training
digits (`pipeline.data.numbers`): MNIST's, drawn in pen strokes and printed,
in the shares the numbers are drawn from (`SHARES`), plus whole MNIST digits
so that every digit's own shapes are there. Its eleven outputs are the ten
digits and "not one digit"; reading a number, the segmentation judges each
candidate by it and the classifier together (`pipeline.serving.segmentation`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import numbers, strokes, typefaces
from pipeline.training.splits import Splits

if TYPE_CHECKING:
    import keras

SHARES = (0.6, 0.3, 0.1)  # of the numbers: MNIST's handwriting, drawn digits, printed digits
DRAWN, PRINTED = 3000, 1000  # drawn and printed digits to compose from
WHOLE_DIGITS = 30000  # MNIST training digits added as they are
EPOCHS = 4
BATCH_SIZE = 128
VALIDATION_SHARE = 0.1  # numbers composed from the validation digits, per training number


def build() -> keras.Model:
    import keras

    return keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Reshape((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(numbers.NOT_ONE_DIGIT + 1, activation="softmax"),
        ],
        name="pieces",
    )


def written_digits(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The drawn and the printed digits that numbers are composed from besides MNIST's, in `SHARES`' order:
    the piece network's and the sequence reader's."""
    return [strokes.sample(DRAWN, seed), typefaces.sample(PRINTED, seed)]


def training_pieces(
    splits: Splits, per_digit: float, seed: int, written: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """What the piece network trains on: the labelled pieces of `per_digit` composed numbers per training
    digit, from MNIST's and the `written` digits (`written_digits`), and whole MNIST digits."""
    handwriting = (splits.train_images, splits.train_labels)  # MNIST's: `fit` adds the rest, not `split`
    images, labels = numbers.pieces(composed_count(splits, per_digit), seed, [handwriting, *written], SHARES)
    whole = np.random.default_rng(seed).permutation(len(handwriting[1]))[:WHOLE_DIGITS]
    return np.concatenate([images, handwriting[0][whole]]), np.concatenate([labels, handwriting[1][whole]])


def composed_count(splits: Splits, per_digit: float) -> int:
    return max(1, round(per_digit * len(splits.train_labels)))


def train(
    splits: Splits, per_digit: float, seed: int, prepared: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[keras.Model, dict]:
    """The piece network trained on `per_digit` composed numbers per training digit (`training_pieces`, or
    `prepared` where the caller made them beforehand), and its metrics: training time (making the pieces
    included where they are made here), pieces seen, and accuracy on pieces of numbers composed from the
    validation digits."""
    import keras

    started = time.perf_counter()
    images, labels = prepared or training_pieces(splits, per_digit, seed, written_digits(seed))
    count = composed_count(splits, per_digit)

    keras.utils.set_random_seed(seed)
    network = build()
    network.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    network.fit(images, labels, batch_size=BATCH_SIZE, epochs=EPOCHS, shuffle=True, verbose=0)
    metrics = {"pieces_train_seconds": time.perf_counter() - started, "pieces_trained_on": float(len(labels))}
    if len(splits.validation_labels):
        validation = (splits.validation_images, splits.validation_labels)
        held_out = numbers.pieces(max(1, round(VALIDATION_SHARE * count)), seed + 1, [validation], [1.0])
        metrics["pieces_val_accuracy"] = float(network.evaluate(*held_out, verbose=0)[1])
    return network, metrics
