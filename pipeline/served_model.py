"""The MLflow model that every trained network is logged, registered and served as.

A pyfunc around one Keras network, or several whose probabilities it averages
(an ensemble, `pipeline.ensemble`), that carries the preprocessing of people's
images with it. `mlflow models serve -m models:/mnist/Production` answers
`/invocations` for

- MNIST-format arrays, `{"inputs": [...]}` of shape N x 28 x 28 or N x 28 x 28 x 1,
  grayscale in [0, 1], white digit on black;
- image files (any format Pillow reads) as base64 strings,
  `{"dataframe_split": {"columns": ["image"], "data": [["<base64>"], ...]}}`,
  each turned into the MNIST format by `pipeline.images`; an optional `mode`
  column, or the `mode` param, is "digit" (the default) or "number" (read every
  digit of a whole number);

with one answer per image (`pipeline.reading`): `digit`, `confidence`,
`probabilities`, `rejected`, `reason`, and in number mode `number` and `digits`.
The `threshold` param (default 0.5) is the least calibrated confidence that is
accepted. A malformed payload or an image that cannot be decoded is answered 400
with the reason, naming the row.

The probabilities are calibrated: the model carries the temperature fitted on
the validation split (`pipeline.calibration`; 1 for a final fit, which has none).
`.probabilities(images)` of the loaded model
(`mlflow.pyfunc.load_model(uri).unwrap_python_model()`) gives them as an array,
the networks themselves are `.networks`, and their Keras files are the artifacts
`keras_model` (or `keras_model_1`, `keras_model_2`, ... for an ensemble) inside
the logged model. The `pipeline` package travels with the model (`code_paths`),
so it loads wherever the pinned requirements are installed.
"""

import base64
import binascii
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from pipeline import calibration, reading

PACKAGE_DIR = Path(__file__).resolve().parent
KERAS_ARTIFACT = "keras_model"
IMAGE_SIZE = 28


class InputError(MlflowException):
    """A payload the model cannot read (bad shape, pixels, base64, image, mode): the server answers 400 with it."""

    def __init__(self, message):
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def as_images(batch):
    """Return `batch` as float32 (N, 28, 28), or raise InputError saying what is wrong with it."""
    try:
        images = np.asarray(batch, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InputError(f"images must be numbers: {error}") from None
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"expected images of shape N x 28 x 28 or N x 28 x 28 x 1, got {images.shape}")
    if not np.isfinite(images).all() or images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise InputError("pixel values must be in [0, 1] (pixels / 255), white digit on black")
    return images


def decoded(cell, row):
    """The grayscale image in one `image` cell: base64 text (or raw bytes) of an image file."""
    from pipeline import images

    if isinstance(cell, str):
        try:
            cell = base64.b64decode(cell, validate=True)
        except binascii.Error as error:
            raise InputError(f"row {row}: the image is not valid base64: {error}") from None
    if not isinstance(cell, (bytes, bytearray)):
        raise InputError(f"row {row}: the image must be a base64 string, got {type(cell).__name__}")
    try:
        return images.read(cell)
    except images.ImageError as error:
        raise InputError(f"row {row}: {error}") from None


def as_mode(value, row=None):
    where = f"row {row}: " if row is not None else ""
    if value not in reading.MODES:
        raise InputError(f"{where}mode must be one of {', '.join(reading.MODES)}, got {value!r}")
    return value


def as_threshold(value):
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0 <= threshold <= 1:
        raise InputError(f"threshold must be a number in [0, 1], got {value!r}")
    return threshold


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
        config = context.model_config or {}
        self.tta = bool(config.get("tta", False))
        self.temperature = float(config.get("temperature", 1.0))

    def probabilities(self, images):
        """The calibrated class probabilities of MNIST-format images (N x 28 x 28 in [0, 1])."""
        return calibration.scaled(average_probabilities(self.networks, images, self.tta), self.temperature)

    def predict(self, context, model_input, params=None):
        params = params or {}
        threshold = as_threshold(params.get("threshold", reading.DEFAULT_THRESHOLD))
        mode = as_mode(params.get("mode", "digit"))
        if isinstance(model_input, pd.DataFrame) and "image" in model_input.columns:
            return self.read_images(model_input, mode, threshold)
        if mode != "digit":
            raise InputError("mode 'number' needs image files (the `image` column), not MNIST-format arrays")
        images = as_images(model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else model_input)
        return [reading.digit_answer(row, threshold) for row in self.probabilities(images)]

    def read_images(self, frame, mode, threshold):
        modes = [mode] * len(frame)
        if "mode" in frame.columns:
            modes = [mode if pd.isna(value) else as_mode(value, row) for row, value in enumerate(frame["mode"])]
        grays = [decoded(cell, row) for row, cell in enumerate(frame["image"])]
        return reading.answers(grays, modes, self.probabilities, threshold)


def calibrate(networks, validation, tta=False):
    """The temperature fitted on `validation` (images, labels), logged with the calibration it gives.

    The metrics are the validation negative log-likelihood and expected calibration
    error, before (`_uncalibrated`) and after. Without validation images (a final
    fit on every training image) nothing can be fitted and the temperature stays 1.
    """
    images, labels = validation
    if not len(images):
        print("no validation images: the probabilities are left uncalibrated (temperature 1)")
        mlflow.log_metric("temperature", 1.0)
        return 1.0
    raw = average_probabilities(networks, images, tta)
    temperature = calibration.fit_temperature(raw, labels)
    calibrated = calibration.scaled(raw, temperature)
    mlflow.log_metrics({
        "temperature": temperature,
        "val_nll_uncalibrated": calibration.negative_log_likelihood(raw, labels),
        "val_nll": calibration.negative_log_likelihood(calibrated, labels),
        "val_ece_uncalibrated": calibration.expected_calibration_error(raw, labels),
        "val_ece": calibration.expected_calibration_error(calibrated, labels),
    })
    return temperature


def log(networks, example, temperature=1.0, registered_model_name=None, tta=False):
    """Log `networks` as one DigitRecognizer named `model` in the active run; return MLflow's ModelInfo."""
    import keras
    import PIL
    import scipy
    import tensorflow as tf
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    # No input schema: the model takes arrays and data frames of images alike, and checks them itself.
    signature = ModelSignature(params=ParamSchema([
        ParamSpec("mode", "string", "digit"),
        ParamSpec("threshold", "double", reading.DEFAULT_THRESHOLD),
    ]))
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
            signature=signature,
            model_config={"tta": tta, "temperature": temperature},
            input_example=example,
            pip_requirements=[
                f"tensorflow-cpu=={tf.__version__}",
                f"keras=={keras.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
                f"pillow=={PIL.__version__}",
                f"scipy=={scipy.__version__}",
            ],
            registered_model_name=registered_model_name,
        )
