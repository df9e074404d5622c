"""Test-set figures of a model, computed from its predicted probabilities and logged to MLflow.

`train` and `evaluate` both log through `log_test_evaluation`, so a freshly trained
model and a reloaded one are measured and reported the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from pipeline.analysis import figures
from pipeline.serving import reading

WORST_ERRORS_SHOWN = 48
EPSILON = 1e-7  # probabilities are clipped like Keras' cross-entropy clips them


@dataclass(frozen=True)
class Evaluation:
    probabilities: np.ndarray  # (N, classes)
    labels: np.ndarray  # (N,)

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean())

    @property
    def errors(self) -> int:
        return int((self.predicted != self.labels).sum())

    @property
    def loss(self) -> float:
        """Mean cross-entropy of the true labels."""
        chosen = self.probabilities[np.arange(len(self.labels)), self.labels]
        return float(-np.log(np.clip(chosen, EPSILON, 1.0)).mean())

    def confusion(self) -> np.ndarray:
        classes = self.probabilities.shape[1]
        matrix = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix

    def predictions_table(self) -> pd.DataFrame:
        table = pd.DataFrame(
            {
                "index": np.arange(len(self.labels)),
                "label": self.labels,
                "predicted": self.predicted,
                "confidence": self.probabilities.max(axis=1),
            }
        )
        for column in range(self.probabilities.shape[1]):
            table[f"p{column}"] = self.probabilities[:, column]
        return table

    def worst_errors(self, count: int = WORST_ERRORS_SHOWN) -> np.ndarray:
        """Indices of the misclassified images, the most confidently wrong first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.probabilities[wrong].max(axis=1))][:count]


def log_test_evaluation(
    probabilities: np.ndarray, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], title: str = ""
) -> Evaluation:
    """Log test metrics and artifacts to the active run; return the Evaluation.

    A column of probabilities beyond `classes` is the "not a digit" class.
    """
    evaluation = Evaluation(np.asarray(probabilities, np.float64), np.asarray(labels, np.int64))
    classes = tuple(classes) + ("not a digit",) * (evaluation.probabilities.shape[1] - len(classes))
    mlflow.log_metrics(
        {
            "test_accuracy": evaluation.accuracy,
            "test_loss": evaluation.loss,
            "test_errors": evaluation.errors,
        }
    )
    matrix = evaluation.confusion()
    confusion_table = pd.DataFrame(matrix, index=pd.Index(classes, name="true"), columns=classes)
    mlflow.log_text(confusion_table.to_csv(), "evaluation/confusion_matrix.csv")
    mlflow.log_text(
        evaluation.predictions_table().to_csv(index=False, float_format="%.6g"), "evaluation/test_predictions.csv"
    )
    figures.log(
        figures.confusion_matrix(matrix, classes, title=f"{title} test confusion matrix"),
        "figures/confusion_matrix.png",
    )
    worst = evaluation.worst_errors()
    captions = [
        f"#{index}: {classes[evaluation.labels[index]]}→{classes[evaluation.predicted[index]]} "
        f"{evaluation.probabilities[index].max():.0%}"
        for index in worst
    ]
    figures.log(
        figures.digit_grid(images[worst], captions, title=f"{title} most confident test errors (true→predicted)"),
        "figures/worst_errors.png",
    )
    return evaluation


def log_rejection(
    prefix: str, digit_probabilities: np.ndarray, other_probabilities: np.ndarray, threshold: float | None = None
) -> tuple[float, float]:
    """Log the fractions of digits accepted and of non-digits rejected by the answers at `threshold`."""
    threshold = reading.DEFAULT_THRESHOLD if threshold is None else threshold
    accepted = np.mean([not reading.digit_answer(row, threshold)["rejected"] for row in digit_probabilities])
    rejected = np.mean([reading.digit_answer(row, threshold)["rejected"] for row in other_probabilities])
    mlflow.log_metrics({f"{prefix}_digits_accepted": float(accepted), f"{prefix}_not_digits_rejected": float(rejected)})
    return float(accepted), float(rejected)
