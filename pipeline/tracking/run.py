"""A tracked training run: train one version inside the active MLflow run and record everything about it.

The path every entry point that trains takes (`train`, the search's best
configuration, the tests): parameters and tags, the datasets, per-epoch metrics,
learning curves and the architecture, the test evaluation, the calibration, how
often a reject class says no, and the model itself, logged and registered.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import mlflow
import numpy as np

from pipeline.analysis import evaluation, figures
from pipeline.data import datasets, negatives, numbers
from pipeline.serving import calibration
from pipeline.serving.model import average_probabilities, in_float32
from pipeline.tracking import lineage, logged_model, tags
from pipeline.training import pieces, sequence_reader, versions
from pipeline.training.loop import fit
from pipeline.training.settings import Settings, resolved_architecture
from pipeline.training.splits import CLOTHING_FOR_TRAINING, Splits, added_kinds, addition, joined, split

log = logging.getLogger(__name__)

BACKGROUND = 19  # the niceness of the processes that make training data beside a training: the lowest priority


class EpochMetrics(keras.callbacks.Callback):
    """Logs each epoch's metrics to the active MLflow run, at `step` = the epoch counted from 1 as Keras prints it."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__()
        self.prefix = prefix

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if mlflow.active_run():
            metrics = {self.prefix + key: float(value) for key, value in (logs or {}).items()}
            mlflow.log_metrics(metrics, step=epoch + 1)


@dataclass
class Outcome:
    """What a tracked training run produced."""

    networks: list[keras.Model]  # averaged into the served model: one, or the version's members
    history: dict  # the first network's
    val_accuracy: float | None  # the served model's; None without a validation split
    train_seconds: float
    evaluation: evaluation.Evaluation
    model_version: str | None  # the registered version's number, or None


def train_tracked(
    settings: Settings, dataset_name: str = "mnist", architecture: dict | None = None, register: bool = True
) -> Outcome:
    """Train inside the active MLflow run and record everything: the path every entry point takes."""
    dataset = datasets.get(dataset_name)
    arrays = datasets.load(dataset)
    splits = split(arrays, settings.validation, settings.subset)
    version = versions.get(settings.version)
    layers = resolved_architecture(version, architecture)

    tags.mark_model_training(mlflow.active_run().info.experiment_id)
    tags.log_params({**settings.params(), "dataset": dataset.name, **layers})
    mlflow.set_tags(
        {
            **tags.environment_tags(),
            "version": str(version.number),
            "version_name": version.name,
            "reject_class": str(version.reject_class).lower(),
            # Promotion compares validation accuracies only between models measured on the same images.
            "validation_set": lineage.validation_set(dataset, settings.subset, settings.validation),
        }
    )
    lineage.log_splits(dataset, splits)

    pool = background_pool()
    try:
        made = made_in_background(pool, settings, splits)
        started = time.perf_counter()
        networks, history = fit_members(settings, splits, layers, made.additions)
        train_seconds = time.perf_counter() - started
        training_pieces = made.pieces.result() if made.pieces else None
        training_lines = numbers.joined_lines([chunk.result() for chunk in made.lines]) if made.lines else None
        made.lines.clear()  # the chunks: their lines are held once, joined
        unseen = unseen_non_digits(pool, splits, settings.seed) if version.reject_class else {}
    finally:
        pool.shutdown(cancel_futures=True)  # a failed training waits for no more than what is being made
    mlflow.log_metric("train_seconds", train_seconds)
    # Served in float32 also where trained in bfloat16: the figures below and the networks logged are those served.
    networks = [in_float32(network) for network in networks]
    mlflow.log_param("parameters", sum(network.count_params() for network in networks))
    title = f"version {version.number} ({version.name})"
    figures.log(figures.learning_curves(history, title=title), "figures/learning_curves.png")
    log_architecture(networks[0])

    validation = None
    if splits.validated:
        validation = evaluation.Evaluation(
            average_probabilities(networks, splits.validation_images), splits.validation_labels
        )
    val_accuracy = history["val_accuracy"][-1] if validation is not None else None
    if len(networks) > 1 and validation is not None:
        # What promotion compares is the served model's: the members' average, not one member's last epoch.
        val_accuracy = validation.accuracy
        mlflow.log_metric("val_accuracy", val_accuracy, step=settings.epochs)
    # Calibrated first, so that the test figures are those of the model as served (and as `evaluate` measures it).
    temperature = logged_model.calibrate(validation)
    probabilities = calibration.scaled(average_probabilities(networks, splits.test_images), temperature)
    result = evaluation.log_test_evaluation(
        probabilities, splits.test_images, splits.test_labels, dataset.classes, title=title
    )
    if version.reject_class:
        log_rejection(networks, splits, unseen, temperature)
    piece_network = None
    if settings.pieces:
        piece_network, piece_metrics = pieces.train(splits, settings.pieces, settings.seed, training_pieces)
        mlflow.log_metrics(piece_metrics)
    reader_network = None
    if settings.sequence_reader:
        reader_network, reader_metrics = sequence_reader.train(
            splits, settings.sequence_reader, settings.seed, precision=settings.precision, prepared=training_lines
        )
        mlflow.log_metrics(reader_metrics)
    # Only digit readers are versions of `mnist`: a clothing model is one of `fashion-mnist`.
    info = logged_model.log_model(
        networks,
        splits.test_images[:3],
        temperature,
        dataset.name if register else None,
        pieces=piece_network,
        sequence_reader=reader_network,
    )
    model_version = None
    if register:
        model_version = logged_model.describe_version(dataset.name, info, str(version.number), version.name, {})
    return Outcome(networks, history, val_accuracy, train_seconds, result, model_version)


def background_pool() -> ProcessPoolExecutor:
    """Processes, one per core, to make training data beside a training, at the lowest priority: they yield the
    cores to the training, which then loses far less to them than at its own priority
    (`benchmarks/background.py`), and have them whenever nothing trains."""
    spawn = multiprocessing.get_context("spawn")  # not forked: a fork of a process running TensorFlow can hang
    return ProcessPoolExecutor(os.cpu_count() or 1, mp_context=spawn, initializer=os.nice, initargs=(BACKGROUND,))


class Made(NamedTuple):
    """What the networks train on besides MNIST's digits (`made_in_background`)."""

    additions: list[list[Future]]  # each member's non-digits and written digits in parts (`splits.added_kinds`)
    pieces: Future | None  # the piece network's pieces, where the recipe trains one
    lines: list[Future]  # the sequence reader's lines in chunks (`numbers.line_chunks`), where it trains one


def made_in_background(pool: ProcessPoolExecutor, settings: Settings, splits: Splits) -> Made:
    """Start making what the networks train on besides MNIST's digits in the processes of the pool: each
    member's non-digits and written digits (`splits.additions`), each kind in a process of its own, the piece
    network's pieces and the sequence reader's lines. The first member's come first, and it trains while the
    rest are made. The drawn and printed digits that the piece network's and the sequence reader's numbers
    are composed from (`pieces.written_digits`) are drawn once, here, while the pool makes the first member's.
    """
    digits = len(splits.train_labels)
    added = [
        [pool.submit(addition, member, digits, kind) for kind in added_kinds(member)]
        for member in settings.each_member()
    ]
    written = pieces.written_digits(settings.seed) if settings.pieces or settings.sequence_reader else None
    made_pieces = None
    if settings.pieces:
        made_pieces = pool.submit(pieces.training_pieces, splits, settings.pieces, settings.seed, written)
    made_lines = []
    if settings.sequence_reader:
        made_lines = sequence_reader.training_lines(pool, splits, settings.sequence_reader, settings.seed, written)
    return Made(added, made_pieces, made_lines)


def fit_members(
    settings: Settings, splits: Splits, layers: dict, added: list[list[Future]]
) -> tuple[list[keras.Model], dict]:
    """Train the version's networks, one per member (`Settings.each_member`), each on MNIST's digits and what
    is `added` for it (`made_in_background`); return them and the first one's history.

    With several members each logs its epoch metrics under `member_<k>/`, so that
    the run's own `val_accuracy` can be the average's.
    """
    networks, histories = [], []
    for number, (member, made) in enumerate(zip(settings.each_member(), added), start=1):
        prefix = f"member_{number}/" if settings.members > 1 else ""
        if settings.members > 1:
            log.info("member %d of %d: seed %d", number, settings.members, member.seed)
        network, history = fit(
            member,
            splits,
            architecture=layers,
            callbacks=[EpochMetrics(prefix)],
            prepared=joined([part.result() for part in made]) if made else None,
        )
        networks.append(network)
        histories.append(history)
    return networks, histories[0]


def unseen_non_digits(pool: Executor, splits: Splits, seed: int) -> dict[str, np.ndarray]:
    """Non-digits the training never saw, for `log_rejection`, each set made in a process of the `pool`:
    validation ones ("val") from the rest of Fashion-MNIST's training images and another seed, test ones
    from its test images and a third; as many as there are validation and test digits."""
    clothing = datasets.load(datasets.FASHION_MNIST)
    made = {"test": pool.submit(negatives.sample, len(splits.test_images), seed + 2, clothing.test_images)}
    if splits.validated:
        rest = clothing.train_images[CLOTHING_FOR_TRAINING:]
        made["val"] = pool.submit(negatives.sample, len(splits.validation_images), seed + 1, rest)
    return {prefix: future.result() for prefix, future in made.items()}


def log_rejection(
    networks: list[keras.Model], splits: Splits, unseen: dict[str, np.ndarray], temperature: float
) -> None:
    """How often the served answer accepts digits and rejects the `unseen` non-digits (`unseen_non_digits`),
    on validation ("val") and on test images."""
    digits = {"test": splits.test_images, "val": splits.validation_images}
    for prefix, others in unseen.items():
        evaluation.log_rejection(
            prefix,
            calibration.scaled(average_probabilities(networks, digits[prefix]), temperature),
            calibration.scaled(average_probabilities(networks, others), temperature),
        )


def log_architecture(model: keras.Model) -> None:
    """The model summary as text and, where pydot and graphviz are installed, the layer diagram."""
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    mlflow.log_text("\n".join(lines), "architecture/summary.txt")
    with tempfile.TemporaryDirectory() as scratch:
        diagram = Path(scratch) / "layers.png"
        try:
            keras.utils.plot_model(model, to_file=str(diagram), show_shapes=True, show_layer_names=True)
        except (ImportError, OSError) as error:
            log.warning("layer diagram skipped: %s", error)
            return
        if diagram.exists():
            mlflow.log_artifact(str(diagram), "architecture")
