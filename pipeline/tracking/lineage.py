"""What a run trained and was measured on: its datasets as MLflow inputs, and the validation images it used.

Promotion and ensembles compare validation accuracies only between models
measured on the same images; `validation_set` names those images.
"""

from __future__ import annotations

import json
import warnings

import mlflow

from pipeline.data.datasets import FILES, Arrays, Dataset, cache_dir, class_counts, digest


def validation_set(dataset: Dataset, subset: int, validation: int) -> str:
    """The `validation_set` tag: which dataset, its content's digest, and which of its images were held out."""
    return f"{dataset.name}:{digest(dataset)}:subset={subset}:last={validation}"


def log_dataset(dataset: Dataset, arrays: Arrays) -> None:
    """Log the training and test sets as the run's dataset inputs, with their class counts."""
    parts = (
        ("train", "training", arrays.train_images, arrays.train_labels, FILES[:2]),
        ("test", "testing", arrays.test_images, arrays.test_labels, FILES[2:]),
    )
    for part, context, images, labels, files in parts:
        content = "".join(dataset.sha256[file][:8] for file in files)
        with warnings.catch_warnings():
            # MLflow registers two local-path source types and warns that it picked one.
            warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
            data = mlflow.data.from_numpy(
                images, targets=labels, name=f"{dataset.name}-{part}", digest=content, source=str(cache_dir(dataset))
            )
        mlflow.log_input(data, context=context, tags={"class_counts": json.dumps(class_counts(labels, dataset))})
