"""What a run trained and was measured on: its datasets as MLflow inputs, and the validation images it used.

Promotion and ensembles compare validation accuracies only between models
measured on the same images; `validation_set` names those images.
"""

from __future__ import annotations

import json
import warnings

import mlflow
import numpy as np

from pipeline.data.datasets import FILES, Arrays, Dataset, cache_dir, class_counts, digest, sha256
from pipeline.training.splits import Splits


def validation_set(dataset: Dataset, subset: int, validation: int) -> str:
    """The `validation_set` tag: which dataset, its content's digest, and which of its images were held out."""
    return f"{dataset.name}:{digest(dataset)}:subset={subset}:last={validation}"


def log_dataset(dataset: Dataset, arrays: Arrays) -> None:
    """Log the whole training and test files as the run's dataset inputs (what `prep` verified)."""
    log_part(dataset, "train", "training", arrays.train_images, arrays.train_labels, 0)
    log_part(dataset, "test", "testing", arrays.test_images, arrays.test_labels, 0)


def log_splits(dataset: Dataset, splits: Splits) -> None:
    """Log what a run trained, validated and tested on, each as a dataset input of its own."""
    trained = len(splits.train_labels)
    log_part(dataset, "train", "training", splits.train_images, splits.train_labels, 0)
    if splits.validated:
        log_part(dataset, "validation", "validation", splits.validation_images, splits.validation_labels, trained)
    log_part(dataset, "test", "testing", splits.test_images, splits.test_labels, 0)


def log_part(dataset: Dataset, part: str, context: str, images: np.ndarray, labels: np.ndarray, first: int) -> None:
    """One dataset input: the rows `first` on of the dataset's training or test files, with their class counts.

    Its digest is that of the files' published checksums and of the rows taken, so the
    same images have the same digest wherever they were fetched.
    """
    files = FILES[2:] if part == "test" else FILES[:2]
    rows = f"{first}-{first + len(labels) - 1}"
    content = sha256(("".join(dataset.sha256[file] for file in files) + rows).encode())[:16]
    with warnings.catch_warnings():
        # MLflow registers two local-path source types and warns that it picked one.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        data = mlflow.data.from_numpy(
            images, targets=labels, name=f"{dataset.name}-{part}", digest=content, source=str(cache_dir(dataset))
        )
    tags = {"class_counts": json.dumps(class_counts(labels, dataset)), "file": files[0], "rows": rows}
    mlflow.log_input(data, context=context, tags=tags)
