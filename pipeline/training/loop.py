"""The one training code path: `train`, the search, the benchmarks and the tests all fit through `fit`.

Pure Keras: nothing here records anything in MLflow; a caller that tracks the
run passes its callbacks in (`pipeline.tracking.run.EpochMetrics`).

The whole dataset is held in memory (60,000 x 28 x 28 floats is 188 MB). Without
augmentation Keras feeds those arrays itself; with it, `training_data` builds a
`tf.data` pipeline that shuffles, batches, varies each batch
(`pipeline.training.augmentation`) and prefetches, so the next batch is prepared
while this one trains.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pipeline.training import policy, versions
from pipeline.training.augmentation import augment
from pipeline.training.normalization import as_keras
from pipeline.training.settings import Settings, SettingsError
from pipeline.training.splits import Splits, additions, with_additions


def fit(
    settings: Settings,
    splits: Splits,
    architecture: dict | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str | None = None,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[keras.Model, dict]:
    """Build, compile and train the version's model; return it with its per-epoch history.

    `architecture` overrides the version's layer sizes (keyword arguments of its builder).
    The history holds Keras' metrics per epoch plus `epoch_seconds`; training time is
    the wall clock of `model.fit`, validation passes included. The model returned holds
    Keras' layers only (`normalization.as_keras`). With `settings.negatives`
    the training images also hold that many non-digits per digit, labelled "not a digit",
    and with `settings.written` that many drawn and printed digits per MNIST digit
    (`splits.additions`, made here unless the caller `prepared` them); validation stays on
    MNIST's digits, so validation accuracies compare across versions.
    """
    version = versions.get(settings.version)
    if settings.negatives or settings.written:
        splits = with_additions(
            splits, prepared if prepared is not None else additions(settings, len(splits.train_labels))
        )
    # Same seed, same weights, same batches, same kernels: the same metrics twice.
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    keras.backend.clear_session()
    model = policy.built(version.build, settings.precision, **(architecture or {}))
    steps_per_epoch = math.ceil(len(splits.train_images) / settings.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(settings, steps_per_epoch),
            use_ema=bool(settings.ema),
            ema_momentum=settings.ema or 0.99,
        ),
        loss=loss(version.loss, settings.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=settings.steps_per_execution,
        jit_compile=settings.jit_compile,
    )

    def encode(labels: np.ndarray) -> np.ndarray:
        return one_hot(labels, version.classes) if version.loss == "categorical_crossentropy" else labels

    if verbose is None:
        # A progress bar on a terminal; one line per epoch in logs and `mlflow run` output.
        verbose = "auto" if sys.stdout.isatty() else 2
    history = model.fit(
        **training_data(settings, splits.train_images, encode(splits.train_labels)),
        epochs=settings.epochs,
        validation_data=(splits.validation_images, encode(splits.validation_labels)) if splits.validated else None,
        callbacks=[EpochTimer(), *callbacks],
        verbose=verbose,
    )
    return as_keras(model), history.history


def learning_rate(settings: Settings, steps_per_epoch: int) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Adam's learning rate: constant, or a schedule over all `epochs * steps_per_epoch` steps."""
    if settings.schedule == "constant":
        return settings.learning_rate
    steps = settings.epochs * steps_per_epoch
    warmup_steps = int(settings.warmup * steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings.learning_rate / 10 if warmup_steps else settings.learning_rate,
        decay_steps=steps - warmup_steps,
        warmup_target=settings.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def loss(name: str, label_smoothing: float) -> str | keras.losses.Loss:
    if not label_smoothing:
        return name
    if name != "categorical_crossentropy":
        raise SettingsError(f"label smoothing needs one-hot labels (categorical_crossentropy), not {name}")
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def training_data(settings: Settings, images: np.ndarray, labels: np.ndarray) -> dict:
    """`model.fit`'s data arguments: the arrays themselves, or an augmenting tf.data pipeline."""
    if not settings.augmentation:
        return {"x": images, "y": labels, "batch_size": settings.batch_size}

    def varied(number: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        # Each batch's variations come from (seed, batch number), so a run is repeatable.
        batch_images, batch_labels = batch
        seed = tf.stack([tf.constant(settings.seed, tf.int64), number])
        return augment(batch_images, seed, settings.augmentation), batch_labels

    # Repeated, so that batches run on across epoch ends.
    batches = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=settings.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(settings.batch_size)
        .enumerate()
        .map(varied, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"x": batches, "steps_per_epoch": math.ceil(len(images) / settings.batch_size), "shuffle": False}


def one_hot(labels: np.ndarray, classes: int = versions.CLASSES) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels]


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return model.predict(images, batch_size=batch_size, verbose=0)


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch, validation included, and adds it to the epoch's metrics as `epoch_seconds`.

    Keras hands one `logs` dict to every callback in turn, and its History and
    progress bar come last: so the history, the progress line and any callback
    after this one (the MLflow logger) all see `epoch_seconds`.
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
