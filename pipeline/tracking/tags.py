"""What every run records about where it ran: parameters as resolved, software versions, processor, commit.

MLflow's tracking store is whatever `MLFLOW_TRACKING_URI` names; unset, MLflow 3
uses `sqlite:///mlflow.db` with artifacts under `./mlruns`, so a fresh clone
needs no server.
"""

from __future__ import annotations

import os
import platform
import subprocess

import mlflow

from pipeline.analysis.machine import cpu_name


def log_params(params: dict) -> None:
    """Log `params` to the active run, except those `mlflow run` already logged from the command line.

    MLflow refuses to change a logged parameter, and `mlflow run` logs each `-P` as
    the user typed it (`1e-3`); the value the code resolved (`0.001`) is the same.
    """
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params
    mlflow.log_params({key: value for key, value in params.items() if key not in existing})


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"


def mark_model_training(experiment_id: str) -> None:
    """Tag the experiment as one that trains models, as MLflow's UI reads it where it has no view switch.

    MLflow 3.17's UI has the switch and opens on GenAI; `pipeline.main.ui_url`
    is the experiment's address in its model training view.
    """
    client = mlflow.MlflowClient()
    if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, "custom_model_development")


def environment_tags() -> dict[str, str]:
    """Where and with what a run computed: software versions, processor, threads, source commit."""
    import keras
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    tags = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "mlflow": mlflow.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": str(os.cpu_count()),
        # 0 means TensorFlow's default: one thread per core.
        "threads": str(intra or os.cpu_count()),
    }
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
