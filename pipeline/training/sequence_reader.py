"""The sequence reader: a whole number read at once, without cutting it into digits.

A convolutional network reads the line (`pipeline.serving.sequence`) down to
one column of features per frame, a bidirectional GRU reads the frames in
both directions, and a dense layer gives each frame's logits for the ten
digits and the blank. It is trained with the CTC loss (Graves et al., 2006),
which needs no digit's position, only the number: on numbers composed
(`pipeline.data.numbers.lines`) from MNIST's training digits, digits drawn in
pen strokes and printed ones, in the piece network's shares
(`pipeline.training.pieces.SHARES`), spaced, touching or overlapping.

The network reads lines of any width. Each training batch holds lines of one
width (`sequence.read_columns`), cut to it (`batches`): a number fills a
third of its line on average, and the reader trains about twice as fast as
on whole lines.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING

import numpy as np

from pipeline.data import numbers
from pipeline.serving import sequence
from pipeline.training import policy
from pipeline.training.pieces import SHARES, composed_count, written_digits
from pipeline.training.splits import Splits

if TYPE_CHECKING:
    from collections.abc import Iterator

    import keras
    import tensorflow as tf

VALIDATION_SHARE = 0.05  # numbers composed from the validation digits, per training number
EPOCHS = 4
BATCH_SIZE = 64
VALIDATION_BATCH = 256
LEARNING_RATE = 2e-3  # the peak, after a linear warmup, then a cosine decay
WARMUP_STEPS = 500


def build() -> keras.Model:
    import keras
    from keras import layers

    line = keras.Input((sequence.HEIGHT, None))  # any width, in multiples of FRAME_COLUMNS
    x = layers.Reshape((sequence.HEIGHT, -1, 1))(line)
    for filters, pool in ((16, (2, 2)), (32, (2, 2)), (64, None), (64, (2, 1))):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        if pool:
            x = layers.MaxPooling2D(pool)(x)
    x = layers.Permute((2, 1, 3))(x)  # frames first: (width / FRAME_COLUMNS, HEIGHT / 8, 64)
    x = layers.Reshape((-1, sequence.HEIGHT // 8 * 64))(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Bidirectional(layers.GRU(64, return_sequences=True))(x)
    logits = layers.Dense(sequence.BLANK + 1, dtype="float32")(x)  # the loss in float32 under mixed precision
    return keras.Model(line, logits, name="sequence_reader")


def targets(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The numbers' digits with their lengths as a last column: the one array Keras passes to the loss."""
    return np.concatenate([labels, lengths[:, None]], axis=1).astype(np.float32)


def ctc_loss(packed: keras.KerasTensor, logits: keras.KerasTensor) -> keras.KerasTensor:
    from keras import ops

    labels = ops.cast(packed[:, : sequence.MAX_DIGITS], "int32")
    lengths = ops.cast(packed[:, sequence.MAX_DIGITS], "int32")
    frames = ops.full((ops.shape(logits)[0],), ops.shape(logits)[1], dtype="int32")
    return ops.ctc_loss(labels, logits, lengths, frames, mask_index=sequence.BLANK)


def line_sources(
    splits: Splits, seed: int, written: list[tuple[np.ndarray, np.ndarray]] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """What the reader's numbers are composed from: MNIST's training digits and the `written` ones
    (`pieces.written_digits`, drawn here unless the caller has them)."""
    return [(splits.train_images, splits.train_labels), *(written or written_digits(seed))]


def training_lines(
    pool: Executor, splits: Splits, per_digit: float, seed: int, written: list[tuple[np.ndarray, np.ndarray]]
) -> list[Future]:
    """What `train` would compose itself, started in the `pool`'s processes chunk by chunk (`numbers.started_lines`):
    `numbers.joined_lines` of their results is the same to the bit."""
    count = composed_count(splits, per_digit)
    return numbers.started_lines(pool, count, seed, line_sources(splits, seed, written), SHARES)


def train(
    splits: Splits,
    per_digit: float,
    seed: int,
    epochs: int = EPOCHS,
    precision: str = "float32",
    prepared: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[keras.Model, dict]:
    """The reader trained on `per_digit` numbers per training digit, composed from MNIST's and the drawn and
    printed digits (`line_sources`; or the lines `prepared` by `training_lines`), and its metrics: training
    time (composing the lines included where they are composed here), numbers trained on, and the share of
    numbers composed from the validation digits that it reads exactly. `precision`: the version's Keras dtype
    policy (`pipeline.training.processor`)."""
    import keras

    started = time.perf_counter()
    count = composed_count(splits, per_digit)
    lines, labels, lengths = prepared or numbers.lines(count, seed, line_sources(splits, seed), SHARES)

    keras.utils.set_random_seed(seed)
    network = policy.built(build, precision)
    widths = sequence.read_columns(lines)
    per_epoch = batches_per_epoch(widths)
    steps = epochs * per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - WARMUP_STEPS), warmup_target=LEARNING_RATE, warmup_steps=min(WARMUP_STEPS, steps)
    )
    network.compile(keras.optimizers.Adam(schedule), ctc_loss)
    training = batches(lines, widths, targets(labels, lengths), seed)
    network.fit(training, epochs=epochs, steps_per_epoch=per_epoch, shuffle=False, verbose=0)
    metrics = {"reader_train_seconds": time.perf_counter() - started, "reader_trained_on": float(count)}
    if len(splits.validation_labels):
        validation = [(splits.validation_images, splits.validation_labels)]
        held_out, digits, lengths = numbers.lines(max(1, round(VALIDATION_SHARE * count)), seed + 1, validation, [1.0])
        truth = ["".join(map(str, row[:length])) for row, length in zip(digits, lengths)]
        order, exact = np.argsort(sequence.read_columns(held_out)), []
        for start in range(0, len(order), VALIDATION_BATCH):  # lines of like width together, as in training
            chosen = order[start : start + VALIDATION_BATCH]
            frames = sequence.probabilities(network.predict_on_batch(sequence.trimmed(held_out[chosen])))
            exact += [sequence.number_in(line) == truth[index] for line, index in zip(frames, chosen)]
        metrics["reader_val_exact"] = float(np.mean(exact))
    return network, metrics


def batches_per_epoch(widths: np.ndarray) -> int:
    """The training batches of lines of these widths (`sequence.read_columns`) in an epoch."""
    return sum(-(-count // BATCH_SIZE) for count in np.unique(widths, return_counts=True)[1])


def batches(lines: np.ndarray, widths: np.ndarray, packed: np.ndarray, seed: int) -> tf.data.Dataset:
    """Training batches, epoch after epoch: lines of one width (`widths`, `sequence.read_columns`) in each,
    cut to it, so that a batch of short numbers costs what they hold; every epoch the lines shuffled within
    their width and the batches shuffled, from `seed`."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)

    def epoch() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        chosen = []
        for width in np.unique(widths):
            alike = rng.permutation(np.flatnonzero(widths == width))
            chosen += [alike[start : start + BATCH_SIZE] for start in range(0, len(alike), BATCH_SIZE)]
        for index in rng.permutation(len(chosen)):
            batch = chosen[index]
            yield lines[batch, :, : widths[batch[0]]], packed[batch]

    signature = (
        tf.TensorSpec((None, sequence.HEIGHT, None), tf.float32),
        tf.TensorSpec((None, packed.shape[1]), tf.float32),
    )
    return tf.data.Dataset.from_generator(epoch, output_signature=signature).repeat().prefetch(2)
