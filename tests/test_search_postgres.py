"""Scale-out: two workers share one study on a real PostgreSQL and log to a real `mlflow server`."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pytest
from conftest import BIN, REPO
from optuna.trial import TrialState

from pipeline.analysis import scoring_server

TRIALS = 6
ROLE, SECRET = "searcher", "Sw0rdfish-4829"


def wait_for(url, process, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1, with databases `mlflow` and `optuna`."""
    clusters = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not clusters:
        pytest.skip("PostgreSQL is not installed here (Debian: apt-get install postgresql); .ci/run installs it")
    bin_dir = clusters[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if as_postgres:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", scoring_server.free_port()
    subprocess.run(
        [*as_postgres, bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    # The role `searcher` must give its password; the first matching line of pg_hba.conf decides.
    hba = data / "pg_hba.conf"
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    subprocess.run(
        [
            *as_postgres,
            bin_dir / "pg_ctl",
            "-D",
            data,
            "-l",
            folder / "log",
            "-w",
            "start",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder}",
        ],
        check=True,
        capture_output=True,
    )
    try:
        for database in ("mlflow", "optuna"):
            subprocess.run(
                [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
                check=True,
                capture_output=True,
            )
        as_superuser = [bin_dir / "psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c"]
        subprocess.run(
            [*as_superuser, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{SECRET}'"], check=True, capture_output=True
        )
        for database in ("secret_mlflow", "secret_optuna"):
            subprocess.run([*as_superuser, f"CREATE DATABASE {database} OWNER {ROLE}"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory):
    port = scoring_server.free_port()
    server = subprocess.Popen(
        [
            BIN / "mlflow",
            "server",
            "--backend-store-uri",
            f"{postgres}/mlflow",
            "--artifacts-destination",
            tmp_path_factory.mktemp("artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", server)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_two_workers_share_one_study_exactly(postgres, tracking_server, mnist, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    mlflow.set_tracking_uri(tracking_server)
    experiment = mlflow.create_experiment("scale-out")
    command = [
        BIN / "mlflow",
        "run",
        ".",
        "-e",
        "search",
        "--env-manager",
        "local",
        "--experiment-id",
        experiment,
        "-P",
        "version=1",
        "-P",
        f"n_trials={TRIALS}",
        "-P",
        "epochs=2",
        "-P",
        "subset=3000",
        "-P",
        "validation=500",
        "-P",
        f"storage={postgres}/optuna",
        "-P",
        "study=shared",
        "-P",
        "train_best=false",
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    workers = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=1200)[0] for worker in workers]
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-4000:]

    trials = optuna.load_study(study_name="shared", storage=f"{postgres}/optuna").get_trials()
    assert sorted(t.number for t in trials) == list(range(TRIALS)), "no trial lost or duplicated"
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)

    runs = mlflow.search_runs([experiment], filter_string="tags.optuna_study = 'shared'", output_format="list")
    parents = [r for r in runs if "optuna_trial" not in r.data.tags]
    children = [r for r in runs if "optuna_trial" in r.data.tags]
    assert len(parents) == 2
    assert sorted(int(r.data.tags["optuna_trial"]) for r in children) == list(range(TRIALS))
    assert {r.data.tags["mlflow.parentRunId"] for r in children} <= {p.info.run_id for p in parents}
    by_trial = {t.number: t for t in trials}
    for child in children:
        trial = by_trial[int(child.data.tags["optuna_trial"])]
        assert trial.user_attrs["mlflow_run_id"] == child.info.run_id
        assert child.data.tags["trial_state"] == trial.state.name
    mlflow.set_tracking_uri(None)


def everything_recorded(uri, experiment_id, folder):
    """Every param, tag and metric key of every run, and the bytes of every artifact, as one text."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    texts = []
    for run in client.search_runs([experiment_id]):
        texts += [repr(run.data.params), repr(run.data.tags), repr(sorted(run.data.metrics))]
        texts.append(repr([(i.dataset.name, i.dataset.source) for i in run.inputs.dataset_inputs]))
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, dst_path=str(folder / run.info.run_id), tracking_uri=uri
        )
        texts += [path.read_bytes().decode("latin-1") for path in Path(local).rglob("*") if path.is_file()]
    for version in client.search_model_versions():
        texts += [repr(version.tags), version.description or "", version.source]
    return "\n".join(texts)


def test_a_password_never_reaches_the_record(postgres, mnist, tmp_path):
    """Through `mlflow run`, a search on a store and a storage whose role needs a password: it is given in
    PGPASSWORD for Optuna's storage, and it is in MLFLOW_TRACKING_URI, as on many a worker machine."""
    host = postgres.rsplit("@", 1)[1]
    tracking = f"postgresql://{ROLE}:{SECRET}@{host}/secret_mlflow"
    storage = f"postgresql://{ROLE}@{host}/secret_optuna"
    experiment = mlflow.MlflowClient(tracking_uri=tracking).create_experiment(
        "secret", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env['PATH']}", MLFLOW_TRACKING_URI=tracking, PGPASSWORD=SECRET)
    command = [
        BIN / "mlflow", "run", ".", "-e", "search", "--env-manager", "local", "--experiment-id", experiment,
        "-P", "version=1", "-P", "n_trials=2", "-P", "epochs=1", "-P", "subset=600", "-P", "validation=100",
        "-P", f"storage={storage}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert SECRET not in result.stdout + result.stderr
    recorded = everything_recorded(tracking, experiment, tmp_path / "downloaded")
    assert "secret_optuna" in recorded and SECRET not in recorded
    [parent] = mlflow.MlflowClient(tracking_uri=tracking).search_runs(
        [experiment], filter_string="attributes.run_name = 'search v1'"
    )
    assert parent.data.tags["optuna_storage"] == storage and parent.data.tags["optuna_study"] == "mnist-v1"

    # A password in the storage URL is refused before anything is opened, without repeating it.
    with_password = f"postgresql://{ROLE}:{SECRET}@{host}/secret_optuna"
    refused = subprocess.run(
        [sys.executable, "-m", "pipeline.search", "--storage", with_password, "--version", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1 and SECRET not in refused.stdout + refused.stderr
    assert f"postgresql://{ROLE}:***@{host}/secret_optuna holds a password" in refused.stderr
    assert "PGPASSWORD" in refused.stderr

    # A wrong password: one line naming what failed, without any password.
    wrong = subprocess.run(
        [sys.executable, "-m", "pipeline.search", "--storage", storage, "--version", "1", "--n-trials", "1"],
        cwd=REPO, env={**env, "PGPASSWORD": "not-it", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'local.db'}"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert wrong.returncode == 1, wrong.stderr[-3000:]
    assert wrong.stderr.strip().splitlines()[-1].startswith("search: cannot open the storage: ")
    assert "password authentication failed" in wrong.stderr and "not-it" not in wrong.stderr
