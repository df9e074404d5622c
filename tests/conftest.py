"""Shared fixtures: real MNIST in the cache, a throwaway MLflow store, the real `mlflow` CLI."""

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def mnist():
    """MNIST, fetched into the cache through the real sources once, then loaded from it."""
    from pipeline.data import datasets, sources

    sources.prepare(datasets.MNIST)
    return datasets.load(datasets.MNIST)


def use_store(folder, monkeypatch):
    """Point this process and the CLIs it starts at a fresh SQLite store and experiment in `folder`."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("tests", artifact_location=(folder / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)  # set_experiment sets it too; this undoes it
    mlflow.set_experiment(experiment_id=experiment)
    return uri


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    yield use_store(tmp_path, monkeypatch)
    mlflow.set_tracking_uri(None)


def run_cli(*args, cwd=REPO, timeout=900, check=True):
    """Run a command with the project's virtual environment first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def mlflow_run(entry_point, env_manager="local", **parameters):
    """`mlflow run . -e ENTRY -P k=v ... --env-manager local`, as a user types it; returns the run."""
    params = [arg for key, value in parameters.items() for arg in ("-P", f"{key}={value}")]
    result = run_cli(BIN / "mlflow", "run", ".", "-e", entry_point, *params, "--env-manager", env_manager)
    client = mlflow.MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("tests").experiment_id],
        filter_string=f"tags.`mlflow.project.entryPoint` = '{entry_point}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    assert runs, f"no {entry_point} run recorded:\n{result.stderr[-3000:]}"
    return runs[0]


def train_tiny(
    version=1, seed=0, subset=600, validation=100, epochs=1, register=True, pieces=None, sequence_reader=None
):
    """A real, tracked `train` run on a few hundred images (and with `pieces`, a piece network; with
    `sequence_reader`, a sequence reader); returns its run id."""
    from pipeline.tracking.run import train_tracked
    from pipeline.training.settings import Settings

    settings = Settings.for_version(
        version,
        epochs=epochs,
        seed=seed,
        subset=subset,
        validation=validation,
        pieces=pieces,
        sequence_reader=sequence_reader,
    )
    with mlflow.start_run(run_name=f"train v{version}") as run:
        train_tracked(settings, register=register)
    return run.info.run_id


@pytest.fixture
def two_tiny_runs(tracking, mnist):
    return [train_tiny(seed=0), train_tiny(seed=1)]


@pytest.fixture(scope="session")
def fashion():
    """Fashion-MNIST, fetched into the cache through the real sources once, then loaded from it.

    Its offline source is a Debian package (`.ci/run` installs it); without any
    source the tests that need it are skipped, saying why.
    """
    from pipeline.data import datasets, sources

    try:
        sources.prepare(datasets.FASHION_MNIST)
    except datasets.DatasetError as error:
        pytest.skip(f"Fashion-MNIST is not available here: {error}")
    return datasets.load(datasets.FASHION_MNIST)


@pytest.fixture(scope="session")
def reader_network(mnist):
    """Version 4 trained on MNIST's first 20,000 training images, in seconds: a real network."""
    from pipeline.training.loop import fit
    from pipeline.training.settings import Settings
    from pipeline.training.splits import split

    trained, _ = fit(Settings.for_version(4, subset=20000, validation=1000), split(mnist, 1000, 20000), verbose=0)
    return trained


@pytest.fixture(scope="session")
def reader(reader_network):
    """The probabilities of `reader_network` for a batch of MNIST-format images."""
    from pipeline.training.loop import predict

    return lambda batch: predict(reader_network, batch)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, reader_network, mnist):
    """`reader_network` (no "not a digit" class) logged as the served model, in a folder: a model URI."""
    from pipeline.tracking import logged_model
    from pipeline.training.splits import scaled

    folder = tmp_path_factory.mktemp("model")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(folder, monkeypatch)
        with mlflow.start_run():
            info = logged_model.log_model([reader_network], scaled(mnist.test_images[:2]))
        path = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(folder / "model"))
        mlflow.set_tracking_uri(None)
    return path
