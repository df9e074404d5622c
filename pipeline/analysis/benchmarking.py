"""Time to accuracy: how long training takes until the model first reaches a test accuracy.

The clock runs while `model.fit` runs (validation passes included, as in any
training run) and stops while the test set is measured at each epoch's end; that
measurement never steers training (no early stopping, no choice of epoch), it
only records when the target was first met. Every run trains its full epochs, so
the final accuracy is recorded too.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, dataclass

import keras
import mlflow
import numpy as np

from pipeline.training import versions
from pipeline.training.loop import fit, predict
from pipeline.training.settings import Settings
from pipeline.training.splits import Splits


@dataclass(frozen=True)
class SeedResult:
    label: str  # what was trained, e.g. "version 4 (fast)"
    seed: int
    target: float
    seconds_to_target: float  # training seconds until the first epoch end at or above target; inf if never
    epochs_to_target: int  # 0 if never
    test_accuracies: tuple  # at each epoch's end
    val_accuracy: float  # at the end: what choices between recipes look at
    train_seconds: float  # all epochs, test measurements excluded
    train_images: int
    parameters: int

    @property
    def reached(self) -> bool:
        return self.epochs_to_target > 0

    @property
    def final_accuracy(self) -> float:
        return self.test_accuracies[-1]

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / len(self.test_accuracies)

    @property
    def images_per_second(self) -> float:
        return self.train_images * len(self.test_accuracies) / self.train_seconds

    def record(self) -> dict:
        """A JSON-ready dict (an unreached target's time is null)."""
        return {
            **asdict(self),
            "seconds_to_target": self.seconds_to_target if self.reached else None,
            "test_accuracies": list(self.test_accuracies),
            "reached": self.reached,
            "final_accuracy": self.final_accuracy,
            "seconds_per_epoch": self.seconds_per_epoch,
            "images_per_second": self.images_per_second,
        }


class TimeToTarget(keras.callbacks.Callback):
    """Measures test accuracy at each epoch's end with the training clock stopped."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, target: float) -> None:
        super().__init__()
        self.images, self.labels, self.target = images, labels, target
        self.accuracies, self.clock = [], 0.0
        self.seconds_to_target, self.epochs_to_target = math.inf, 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.clock += time.perf_counter() - self._started
        predicted = predict(self.model, self.images).argmax(axis=1)
        accuracy = float((predicted == self.labels).mean())
        self.accuracies.append(accuracy)
        if accuracy >= self.target and not self.epochs_to_target:
            self.seconds_to_target, self.epochs_to_target = self.clock, epoch + 1
        if mlflow.active_run():
            mlflow.log_metrics({"test_accuracy": accuracy, "train_clock_seconds": self.clock}, step=epoch + 1)
        self._started = time.perf_counter()


def time_to_target(
    settings: Settings,
    splits: Splits,
    target: float,
    label: str | None = None,
    architecture: dict | None = None,
    verbose: int = 0,
) -> SeedResult:
    """Train `settings` (with the builder's `architecture` overrides) once on `splits`; return its SeedResult."""
    clock = TimeToTarget(splits.test_images, splits.test_labels, target)
    model, history = fit(settings, splits, architecture=architecture, callbacks=[clock], verbose=verbose)
    version = versions.get(settings.version)
    return SeedResult(
        label=label or f"version {version.number} ({version.name})",
        seed=settings.seed,
        target=target,
        seconds_to_target=clock.seconds_to_target,
        epochs_to_target=clock.epochs_to_target,
        test_accuracies=tuple(clock.accuracies),
        val_accuracy=float(history["val_accuracy"][-1]),
        train_seconds=clock.clock,
        train_images=len(splits.train_images),
        parameters=model.count_params(),
    )


def summary(results: list[SeedResult]) -> dict:
    """Median, min and max time to target over seeds; a seed that never reached it counts as infinitely slow."""
    times = [result.seconds_to_target for result in results]
    reached = [time for time in times if math.isfinite(time)]
    median = statistics.median(times)
    return {
        "label": results[0].label,
        "target": results[0].target,
        "seeds": len(results),
        "seeds_reached": len(reached),
        "median_seconds_to_target": median if math.isfinite(median) else None,
        "min_seconds_to_target": min(reached) if reached else None,
        "max_seconds_to_target": max(reached) if len(reached) == len(times) else None,
        "mean_final_accuracy": float(np.mean([result.final_accuracy for result in results])),
        "mean_val_accuracy": float(np.mean([result.val_accuracy for result in results])),
        "mean_seconds_per_epoch": float(np.mean([result.seconds_per_epoch for result in results])),
        "mean_images_per_second": float(np.mean([result.images_per_second for result in results])),
        "epochs": len(results[0].test_accuracies),
        "parameters": results[0].parameters,
    }


def markdown(summaries: list[dict], host: dict) -> str:
    """The side-by-side table, as BENCHMARKS.md shows it."""
    target = summaries[0]["target"]
    lines = [
        f"Measured on {host['processor']}, {host['cores']} cores, {host['intra_op_threads']} TensorFlow threads, "
        f"TensorFlow {host['tensorflow']}, Keras {host['keras']}.",
        "",
        f"| model | parameters | epochs | median time to {target:.2%} | seeds reaching it | validation accuracy "
        "| final test accuracy | seconds per epoch | training images per second |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summaries:
        median = row["median_seconds_to_target"]
        lines.append(
            f"| {row['label']} | {row['parameters']:,} | {row['epochs']} "
            f"| {'never' if median is None else f'{median:.1f} s'} | {row['seeds_reached']} of {row['seeds']} "
            f"| {row['mean_val_accuracy']:.2%} | {row['mean_final_accuracy']:.2%} "
            f"| {row['mean_seconds_per_epoch']:.1f} "
            f"| {row['mean_images_per_second']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def log(results: list[SeedResult], summaries: list[dict], host: dict) -> dict:
    """Write the results into the active run: summary metrics, a JSON artifact, the table."""
    if len(summaries) == 1:
        row = summaries[0]
        mlflow.log_metrics(
            {
                key: value
                for key, value in row.items()
                if key.endswith(("_to_target", "_reached", "_accuracy", "_per_epoch", "_per_second"))
                and value is not None
            }
        )
    document = {"machine": host, "summaries": summaries, "runs": [result.record() for result in results]}
    mlflow.log_text(json.dumps(document, indent=2), "bench/results.json")
    mlflow.log_text(markdown(summaries, host), "bench/results.md")
    return document
