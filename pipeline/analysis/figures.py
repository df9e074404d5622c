"""The figures runs log: learning curves, confusion matrices and grids of digits.

Each function returns a matplotlib Figure, for `log`; nothing here
shows a window, so it works on a machine with no screen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import mlflow  # noqa: E402
import numpy as np  # noqa: E402


def log(figure: plt.Figure, artifact_file: str) -> None:
    """Log `figure` as a PNG artifact of the active run and free it."""
    mlflow.log_figure(figure, artifact_file)
    plt.close(figure)


def learning_curves(history: dict, title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch, training beside validation."""
    epochs = np.arange(1, len(history["loss"]) + 1)
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.plot(epochs, history[metric], marker="o", label="training")
        if f"val_{metric}" in history:
            axes.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def confusion_matrix(matrix: np.ndarray, classes: Sequence[str], title: str = "") -> plt.Figure:
    """Counts of (true label, predicted label), the diagonal being the correct ones."""
    figure, axes = plt.subplots(figsize=(7, 6))
    # Log scale, so the few errors off the diagonal are visible beside thousands on it.
    image = axes.imshow(matrix + 1, cmap="Blues", norm=matplotlib.colors.LogNorm())
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            dark = count > matrix.max() / 10
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    axes.set_xticks(range(len(classes)), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="count + 1")
    figure.tight_layout()
    return figure


def digit_grid(images: Sequence[np.ndarray], captions: Sequence[str], columns: int = 8, title: str = "") -> plt.Figure:
    """A grid of 28x28 images, each with a caption under it."""
    rows = max(1, math.ceil(len(images) / columns))
    figure, grid = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.4), squeeze=False)
    for index, axes in enumerate(grid.flat):
        axes.axis("off")
        if index < len(images):
            axes.imshow(images[index], cmap="gray_r", vmin=0, vmax=images[index].max() or 1)
            axes.set_title(captions[index], fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
