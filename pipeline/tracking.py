"""What every run records about itself in MLflow: parameters, environment tags, datasets, registry tags.

MLflow's tracking store is whatever `MLFLOW_TRACKING_URI` names; unset, MLflow 3
uses `sqlite:///mlflow.db` with artifacts under `./mlruns`, so a fresh clone
needs no server.
"""

import json
import os
import platform
import subprocess
import warnings

import mlflow

REGISTERED_MODEL = "mnist"


def log_params(params):
    """Log `params` to the active run, except those `mlflow run` already logged from the command line.

    MLflow refuses to change a logged parameter, and `mlflow run` logs each `-P` as
    the user typed it (`1e-3`); the value the code resolved (`0.001`) is the same.
    """
    run = mlflow.active_run()
    existing = mlflow.get_run(run.info.run_id).data.params
    mlflow.log_params({key: value for key, value in params.items() if key not in existing})


def environment_tags():
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


def cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit():
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def log_dataset(dataset, arrays):
    """Log the training and test sets as the run's dataset inputs, with their class counts."""
    from pipeline.datasets import FILES, cache_dir, class_counts

    parts = (
        ("train", "training", arrays.train_images, arrays.train_labels, FILES[:2]),
        ("test", "testing", arrays.test_images, arrays.test_labels, FILES[2:]),
    )
    for part, context, images, labels, files in parts:
        digest = "".join(dataset.sha256[file][:8] for file in files)
        with warnings.catch_warnings():
            # MLflow registers two local-path source types and warns that it picked one.
            warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
            data = mlflow.data.from_numpy(
                images, targets=labels, name=f"{dataset.name}-{part}", digest=digest,
                source=str(cache_dir(dataset)),
            )
        mlflow.log_input(data, context=context, tags={"class_counts": json.dumps(class_counts(labels, dataset))})


def register_tags(model_info, tags):
    """Tag the model version that `log_model(..., registered_model_name=...)` created."""
    client = mlflow.MlflowClient()
    version = model_info.registered_model_version
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL, version, key, str(value))
    return version
