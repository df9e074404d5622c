"""Logging trained networks as the served model: calibrated, carrying only the serving code, registered.

Every model is logged as one `pipeline.serving.model.DigitRecognizer` named
`model` in the active run. Its `code_paths` hold `pipeline/serving` and the
package's `__init__.py` and nothing else, so a served model depends on serving
code alone; its pip requirements pin the versions it was trained with. The
networks are first compiled and run as the served model runs them: networks it
could not serve raise `NotServable`, nothing is logged as a model or
registered, and their Keras files are kept as the run's artifacts `unservable/`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlflow
import numpy as np

from pipeline.analysis.evaluation import Evaluation
from pipeline.serving import calibration, reading
from pipeline.serving.model import KERAS_ARTIFACT, PIECES_ARTIFACT, READER_ARTIFACT, DigitRecognizer

REGISTRY_DESCRIPTION = (
    "Registry versions count registrations: models:/<name>/7 is the 7th model registered, "
    "whatever was trained. Each version's description and `project_version` tag say which of the "
    "project's versions (1-6, or an ensemble) it is. See the project's README, Promotion."
)
PACKAGE_DIR = Path(__file__).resolve().parents[1]
UNSERVABLE_FOLDER = "unservable"  # where the Keras files of networks that could not be served are kept

log = logging.getLogger(__name__)


def calibrate(validation: Evaluation | None) -> float:
    """The temperature fitted on the model's uncalibrated `validation` probabilities, logged with the
    calibration it gives.

    The metrics are the validation negative log-likelihood and expected calibration
    error, before (`_uncalibrated`) and after. Without validation images (a final
    fit on every training image) nothing can be fitted and the temperature stays 1.
    """
    if validation is None:
        log.info("no validation images: the probabilities are left uncalibrated (temperature 1)")
        mlflow.log_metric("temperature", 1.0)
        return 1.0
    raw, labels = validation.probabilities, validation.labels
    temperature = calibration.fit_temperature(raw, labels)
    calibrated = calibration.scaled(raw, temperature)
    mlflow.log_metrics(
        {
            "temperature": temperature,
            "val_nll_uncalibrated": calibration.negative_log_likelihood(raw, labels),
            "val_nll": calibration.negative_log_likelihood(calibrated, labels),
            "val_ece_uncalibrated": calibration.expected_calibration_error(raw, labels),
            "val_ece": calibration.expected_calibration_error(calibrated, labels),
        }
    )
    return temperature


def serving_code(folder: Path) -> Path:
    """A copy of the package with only its serving subpackage, in `folder`: what a logged model carries."""
    package = folder / PACKAGE_DIR.name
    shutil.copytree(PACKAGE_DIR / "serving", package / "serving", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PACKAGE_DIR / "__init__.py", package / "__init__.py")
    return package


def log_model(
    networks: Sequence,
    example: np.ndarray,
    temperature: float = 1.0,
    registered_model_name: str | None = None,
    tta: bool = False,
    pieces: object | None = None,
    sequence_reader: object | None = None,
) -> mlflow.models.model.ModelInfo:
    """Log the Keras `networks` as one DigitRecognizer named `model` in the active run; return MLflow's ModelInfo.

    `pieces`, a piece network (`pipeline.training.pieces`), goes with them to judge the candidate digits of numbers;
    `sequence_reader`, a sequence reader (`pipeline.training.sequence_reader`), to read numbers whole.
    """
    import keras
    import pandas as pd
    import PIL
    import scipy
    import tensorflow as tf
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    # No input schema: the model takes arrays and data frames of images alike, and checks them itself.
    signature = ModelSignature(
        params=ParamSchema(
            [
                ParamSpec("mode", "string", "digit"),
                ParamSpec("threshold", "double", reading.DEFAULT_THRESHOLD),
            ]
        )
    )
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = saved(networks, pieces, sequence_reader, Path(scratch))
        try:  # compiled and run as the served model runs them, before anything is logged as a model
            DigitRecognizer().ready(networks, pieces, sequence_reader, tta, temperature)
        except Exception as error:
            mlflow.log_artifacts(scratch, UNSERVABLE_FOLDER)
            raise NotServable(
                f"these networks cannot be served, so they were neither logged as a model nor registered "
                f"(their Keras files are the run's artifacts {UNSERVABLE_FOLDER}/): {first_line(error)}"
            ) from error
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=DigitRecognizer(),
            artifacts=artifacts,
            code_paths=[str(serving_code(Path(scratch) / "code"))],
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


def saved(networks: Sequence, pieces: object | None, sequence_reader: object | None, folder: Path) -> dict[str, str]:
    """The networks saved as Keras files in `folder`: their paths by artifact name."""
    names = [KERAS_ARTIFACT] if len(networks) == 1 else [f"{KERAS_ARTIFACT}_{n}" for n in range(1, len(networks) + 1)]
    named = dict(zip(names, networks)) | {PIECES_ARTIFACT: pieces, READER_ARTIFACT: sequence_reader}
    paths = {}
    for name, network in named.items():
        if network is not None:
            paths[name] = str(folder / f"{name}.keras")
            network.save(paths[name])
    return paths


class NotServable(RuntimeError):
    """Trained networks that the served model cannot compile or run."""


def first_line(error: Exception) -> str:
    return next(iter(str(error).strip().splitlines()), type(error).__name__)


def describe_version(
    name: str, model_info: mlflow.models.model.ModelInfo, project_version: str, project_name: str, tags: dict
) -> str:
    """Describe and tag the registered version that `log_model` created; return the registry's number for it.

    The registry numbers every registration (`models:/mnist/7`); the description and
    the `project_version` tag say which of the project's versions was trained.
    """
    client = mlflow.MlflowClient()
    number = model_info.registered_model_version
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, description=REGISTRY_DESCRIPTION)
    run_id = mlflow.active_run().info.run_id
    client.update_model_version(
        name, number, description=f"project version {project_version} ({project_name}), trained in run {run_id}"
    )
    every = {"project_version": project_version, "project_version_name": project_name, "run_id": run_id, **tags}
    for key, value in every.items():
        client.set_model_version_tag(name, number, key, str(value))
    return number
