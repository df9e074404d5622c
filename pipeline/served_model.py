"""The MLflow model that every trained network is logged, registered and served as.

A pyfunc around one Keras network, or several whose probabilities it averages
(an ensemble, `pipeline.ensemble`): it accepts a batch of MNIST-format images,
N x 28 x 28 grayscale in [0, 1], and returns the ten class probabilities per
image, so

    mlflow models serve -m models:/mnist/Production --env-manager local

answers `{"inputs": [[[0.0, ...], ...]]}` with `{"predictions": [[p0, ..., p9]]}`.
The Keras files themselves are the artifacts `keras_model` (or `keras_model_1`,
`keras_model_2`, ... for an ensemble) inside the logged model, for anyone who
wants the networks back (`keras.models.load_model`), and `.networks` once loaded
(`mlflow.pyfunc.load_model(uri).unwrap_python_model().networks`). The `pipeline`
package travels with the model (`code_paths`), so it loads wherever the
pinned requirements are installed.
"""

import tempfile
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

PACKAGE_DIR = Path(__file__).resolve().parent
KERAS_ARTIFACT = "keras_model"
IMAGE_SIZE = 28


class InputError(MlflowException):
    """A batch that is not MNIST-format images: the server answers 400 with this message."""

    def __init__(self, message):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def as_images(batch):
    """Return `batch` as float32 (N, 28, 28), or raise InputError saying what is wrong with it."""
    try:
        images = np.asarray(batch, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InputError(f"images must be numbers: {error}") from None
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"expected images of shape N x 28 x 28, got {images.shape}")
    if not np.isfinite(images).all() or images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise InputError("pixel values must be in [0, 1] (pixels / 255), white digit on black")
    return images


# Test-time augmentation: the image itself and the image moved one pixel each way.
TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def shifted(images, rows, columns):
    """`images` moved by whole pixels, with black coming in at the edges."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    moved[:, max(rows, 0):height + min(rows, 0), max(columns, 0):width + min(columns, 0)] = \
        images[:, max(-rows, 0):height + min(-rows, 0), max(-columns, 0):width + min(-columns, 0)]
    return moved


def average_probabilities(networks, images, tta=False):
    """The mean of the networks' class probabilities for each image (and, with `tta`, each shift of it)."""
    views = [shifted(images, *shift) for shift in TTA_SHIFTS] if tta else [images]
    return np.mean([
        network.predict(view, batch_size=1000, verbose=0) for network in networks for view in views
    ], axis=0)


class DigitRecognizer(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import keras

        self.networks = [
            keras.models.load_model(path) for name, path in sorted(context.artifacts.items())
            if name.startswith(KERAS_ARTIFACT)
        ]
        self.tta = bool((context.model_config or {}).get("tta", False))

    def predict(self, context, model_input, params=None):
        return average_probabilities(self.networks, as_images(model_input), tta=self.tta)


def log(networks, example, registered_model_name=None, tta=False):
    """Log `networks` as one DigitRecognizer named `model` in the active run; return MLflow's ModelInfo."""
    import keras
    import tensorflow as tf
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as scratch:
        artifacts = {}
        for number, network in enumerate(networks):
            name = KERAS_ARTIFACT if len(networks) == 1 else f"{KERAS_ARTIFACT}_{number + 1}"
            artifacts[name] = str(Path(scratch) / f"{name}.keras")
            network.save(artifacts[name])
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=DigitRecognizer(),
            artifacts=artifacts,
            code_paths=[str(PACKAGE_DIR)],
            signature=infer_signature(example, average_probabilities(networks, example, tta)),
            model_config={"tta": tta},
            input_example=example,
            pip_requirements=[
                f"tensorflow-cpu=={tf.__version__}",
                f"keras=={keras.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"numpy=={np.__version__}",
            ],
            registered_model_name=registered_model_name,
        )
