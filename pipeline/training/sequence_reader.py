"""The sequence reader: a whole number read at once, without cutting it into digits.

A convolutional network reads the line (`pipeline.serving.sequence`) down to
one column of features per frame, a bidirectional GRU reads the frames in
both directions, and a dense layer gives each frame's logits for the ten
digits and the blank. It is trained with the CTC loss (Graves et al., 2006),
which needs no digit's position, only the number: on numbers composed
(`pipeline.data.numbers.lines`) from MNIST's training digits, digits drawn in
pen strokes and printed ones, in the piece network's shares
(`pipeline.training.pieces.SHARES`), spaced, touching or overlapping.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import numbers, strokes, typefaces
from pipeline.serving import sequence
from pipeline.training.pieces import DRAWN, PRINTED, SHARES
from pipeline.training.splits import Splits

if TYPE_CHECKING:
    import keras

VALIDATION_SHARE = 0.05  # numbers composed from the validation digits, per training number
EPOCHS = 4
BATCH_SIZE = 64
LEARNING_RATE = 2e-3  # the peak, after a linear warmup, then a cosine decay
WARMUP_STEPS = 500


def build() -> keras.Model:
    import keras
    from keras import layers

    line = keras.Input((sequence.HEIGHT, sequence.WIDTH))
    x = layers.Reshape((sequence.HEIGHT, sequence.WIDTH, 1))(line)
    for filters, pool in ((16, (2, 2)), (32, (2, 2)), (64, None), (64, (2, 1))):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if pool:
            x = layers.MaxPooling2D(pool)(x)
    x = layers.Permute((2, 1, 3))(x)  # frames first: (FRAMES, HEIGHT / 8, 64)
    x = layers.Reshape((sequence.FRAMES, sequence.HEIGHT // 8 * 64))(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Bidirectional(layers.GRU(64, return_sequences=True))(x)
    logits = layers.Dense(sequence.BLANK + 1)(x)
    return keras.Model(line, logits, name="sequence_reader")


def targets(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The numbers' digits with their lengths as a last column: the one array Keras passes to the loss."""
    return np.concatenate([labels, lengths[:, None]], axis=1).astype(np.float32)


def ctc_loss(packed: keras.KerasTensor, logits: keras.KerasTensor) -> keras.KerasTensor:
    from keras import ops

    labels = ops.cast(packed[:, : sequence.MAX_DIGITS], "int32")
    lengths = ops.cast(packed[:, sequence.MAX_DIGITS], "int32")
    frames = ops.full((ops.shape(logits)[0],), sequence.FRAMES, dtype="int32")
    return ops.ctc_loss(labels, logits, lengths, frames, mask_index=sequence.BLANK)


def train(splits: Splits, count: int, seed: int, epochs: int = EPOCHS) -> tuple[keras.Model, dict]:
    """The reader trained on `count` composed numbers, and its metrics: training time, and the share of
    numbers composed from the validation digits that it reads exactly."""
    import keras

    started = time.perf_counter()
    handwriting = (splits.train_images, splits.train_labels)
    sources = [handwriting, strokes.sample(DRAWN, seed), typefaces.sample(PRINTED, seed)]
    lines, labels, lengths = numbers.lines(count, seed, sources, SHARES)

    keras.utils.set_random_seed(seed)
    network = build()
    steps = epochs * -(-count // BATCH_SIZE)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - WARMUP_STEPS), warmup_target=LEARNING_RATE, warmup_steps=min(WARMUP_STEPS, steps)
    )
    network.compile(keras.optimizers.Adam(schedule), ctc_loss)
    network.fit(lines, targets(labels, lengths), batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)
    metrics = {"reader_train_seconds": time.perf_counter() - started, "reader_trained_on": float(count)}
    if len(splits.validation_labels):
        validation = [(splits.validation_images, splits.validation_labels)]
        held_out, digits, lengths = numbers.lines(max(1, round(VALIDATION_SHARE * count)), seed + 1, validation, [1.0])
        frames = sequence.probabilities(network.predict(held_out, batch_size=256, verbose=0))
        truth = ["".join(map(str, row[:length])) for row, length in zip(digits, lengths)]
        exact = [sequence.number_in(line) == right for line, right in zip(frames, truth)]
        metrics["reader_val_exact"] = float(np.mean(exact))
    return network, metrics
