"""The Optuna search: its spaces, its objective, and whole searches through the real CLI."""

import os
import signal
import socket
import subprocess
import sys
import time

import mlflow
import numpy as np
import optuna
import pytest
from conftest import BIN, REPO, mlflow_run
from optuna.trial import TrialState

from pipeline.data.datasets import Arrays
from pipeline.training import versions
from pipeline.training.settings import Settings, resolved_architecture
from pipeline.training.splits import split
from pipeline.tuning import study as studies
from pipeline.tuning import summary, workers


@pytest.mark.parametrize("number", sorted(versions.VERSIONS))
def test_every_sampled_configuration_builds_a_valid_model(number):
    version = versions.get(number)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=number))
    for _ in range(6):
        trial = study.ask()
        sampled = version.search_space(trial)
        architecture = {k: v for k, v in sampled.items() if k not in studies.SETTINGS_KEYS}
        model = version.build(**resolved_architecture(version, architecture))
        assert model.output_shape == (None, version.classes)
        settings = {k: v for k, v in sampled.items() if k in studies.SETTINGS_KEYS}
        Settings.for_version(number, **settings)  # every setting is a real one
        study.tell(trial, 0.5)


@pytest.mark.parametrize("number", sorted(versions.VERSIONS))
def test_the_baseline_trial_is_the_versions_own_configuration(number):
    version = versions.get(number)
    baseline = studies.baseline(version)
    defaults = resolved_architecture(version)
    assert {k: v for k, v in baseline.items() if k in defaults} == defaults
    assert baseline["learning_rate"] == version.learning_rate


def tiny_splits():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
    labels = np.arange(120, dtype=np.uint8) % 10
    return split(Arrays(images, labels, images[:20], labels[:20]), validation=20)


def memory_study(*params, **options):
    """A study in memory with one waiting trial per `params` (a dict, or {} for the sampler to choose)."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, direction="maximize", **options)
    for fixed in params:
        study.enqueue_trial(fixed)
    return study, storage


def plan_for(parent, tracking, **changes):
    return studies.Plan(
        **{
            "version": 1,
            "study": "s",
            "storage": "",
            "n_trials": 1,
            "epochs": 3,
            "seed": 0,
            "validation": 20,
            "subset": 0,
            "parent_run_id": parent.info.run_id,
            "experiment_id": parent.info.experiment_id,
            "tracking_uri": tracking,
            **changes,
        }
    )


def test_a_pruned_trial_reports_as_pruned_in_optuna_and_mlflow(tracking):
    # A threshold no accuracy reaches: every trial is pruned after its first epoch.
    study, storage = memory_study({}, pruner=optuna.pruners.ThresholdPruner(lower=1.1))
    trial, _ = studies.claim(study, storage, "worker")
    with mlflow.start_run() as parent:
        workers.run_trial(study, trial, plan_for(parent, tracking), tiny_splits())
    [frozen] = study.get_trials()
    assert frozen.state == TrialState.PRUNED and list(frozen.intermediate_values) == [0]
    [child] = mlflow.search_runs(filter_string="attributes.run_name = 'trial 0'", output_format="list")
    assert child.data.tags["trial_state"] == "PRUNED" and child.info.status == "FINISHED"
    assert studies.claim(study, storage, "worker") is None, "no slot is left"


def test_a_claim_from_a_stale_list_skips_what_another_worker_finished(monkeypatch):
    study, storage = memory_study({}, {})
    snapshot = study.get_trials(deepcopy=True, states=(TrialState.WAITING,))
    first, _ = studies.claim(study, storage, "other")
    study.tell(first, 0.5)  # another worker took trial 0 and finished it since the snapshot
    monkeypatch.setattr(study, "get_trials", lambda **_: snapshot)
    trial, _ = studies.claim(study, storage, "me")
    assert trial.number == 1


def test_a_silent_trial_is_failed_and_queued_again_with_its_parameters(tracking, monkeypatch):
    baseline = {"units": 77, "learning_rate": 0.002}
    study, storage = memory_study(baseline)
    trial, trial_id = studies.claim(study, storage, "gone")
    trial.suggest_int("units", 32, 1024, log=True)
    trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True)
    trial.set_user_attr("baseline", True)
    with mlflow.start_run() as run:
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
    stamped = time.time()
    storage.set_trial_user_attr(trial_id, "heartbeat", stamped)
    with monkeypatch.context() as later:  # its worker never stamps it again
        later.setattr(time, "time", lambda: stamped + studies.STALE_SECONDS + 1)
        studies.fail_stale_trials(study, storage)
    failed, again = study.get_trials()
    assert failed.state == TrialState.FAIL and again.state == TrialState.WAITING
    assert again.params == baseline and again.user_attrs["baseline"] is True, "the baseline stays the baseline"
    stopped = mlflow.get_run(run.info.run_id)
    assert stopped.info.status == "FAILED" and stopped.data.tags["trial_state"] == "FAIL"
    claimed, _ = studies.claim(study, storage, "next")
    assert claimed.suggest_int("units", 32, 1024, log=True) == 77, "the replacement runs the same configuration"


def test_a_stamped_trial_is_alive_whatever_its_host_and_process(tracking):
    # A worker in another container with the same host name and a process id this machine does not have.
    study, storage = memory_study({})
    trial, trial_id = studies.claim(study, storage, f"{socket.gethostname()}:999999999:abcd1234")
    storage.set_trial_user_attr(trial_id, "heartbeat", time.time() - studies.STALE_SECONDS / 2)
    studies.fail_stale_trials(study, storage)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]


def test_a_trial_claimed_a_moment_ago_is_not_taken_for_dead(tracking):
    # A replacement carries its predecessor's old stamp until its new worker stamps it: the claim counts.
    study, storage = memory_study({})
    [waiting] = study.get_trials(states=(TrialState.WAITING,))
    trial_id = studies.trial_id(storage, study, waiting.number)
    storage.set_trial_user_attr(trial_id, "heartbeat", time.time() - 10 * studies.STALE_SECONDS)
    assert storage.set_trial_state_values(trial_id, TrialState.RUNNING)
    studies.fail_stale_trials(study, storage)
    assert [trial.state for trial in study.get_trials()] == [TrialState.RUNNING]


def search_runs(parent_id=None):
    runs = mlflow.search_runs(output_format="list", filter_string="tags.optuna_trial != ''")
    return [r for r in runs if parent_id is None or r.data.tags["mlflow.parentRunId"] == parent_id]


def test_a_search_through_the_cli_logs_every_trial_and_registers_the_best(tracking, mnist, tmp_path):
    parent = mlflow_run(
        "search", version=1, n_trials=4, epochs=2, subset=2000, validation=500, storage=tmp_path / "study.journal"
    )
    children = search_runs(parent.info.run_id)
    assert sorted(int(r.data.tags["optuna_trial"]) for r in children) == [0, 1, 2, 3]
    client = mlflow.MlflowClient()
    for child in children:
        assert {"units", "learning_rate", "epochs"} <= set(child.data.params)
        assert child.data.tags["trial_state"] in ("COMPLETE", "PRUNED")
        assert [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")][0] == 1
        assert child.data.metrics["trial_seconds"] > 0
    assert parent.data.metrics["trials_complete"] + parent.data.metrics["trials_pruned"] == 4
    best = summary.best_params(parent.info.run_id)
    assert best["val_accuracy"] == pytest.approx(parent.data.metrics["best_val_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "search")}
    assert {
        "search/trials.csv",
        "search/optimization_history.png",
        "search/param_importances.png",
        "search/parallel_coordinate.png",
        "search/best_params.json",
    } <= artifacts
    [version] = client.search_model_versions("name = 'mnist'")
    trained_best = client.get_run(version.run_id)
    assert trained_best.data.tags["params_from"] == parent.info.run_id
    assert trained_best.data.params["units"] == str(best["units"])

    # The saved configuration reproduces: `train -P params_from=<search run>`.
    again = mlflow_run("train", version=1, params_from=parent.info.run_id, subset=2000, validation=500)
    assert again.data.params["units"] == str(best["units"])
    assert float(again.data.params["learning_rate"]) == pytest.approx(best["learning_rate"])
    assert again.data.metrics["val_accuracy"] == pytest.approx(trained_best.data.metrics["val_accuracy"])


def test_a_killed_search_resumes_and_marks_the_lost_trial_failed(tracking, mnist, tmp_path):
    journal = tmp_path / "study.journal"
    command = [
        sys.executable,
        "-m",
        "pipeline.search",
        "--version",
        "3",
        "--n-trials",
        "3",
        "--epochs",
        "3",
        "--subset",
        "4000",
        "--validation",
        "500",
        "--storage",
        str(journal),
        "--train-best",
        "false",
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = studies.open_storage(str(journal))
    deadline = time.monotonic() + 300
    while True:  # kill it in the middle of a trial, once that trial has its MLflow run
        assert first.poll() is None and time.monotonic() < deadline, "the search ended before it could be killed"
        try:
            running = [
                t
                for t in optuna.load_study(study_name="mnist-v3", storage=storage).get_trials(
                    states=(TrialState.RUNNING,)
                )
                if "mlflow_run_id" in t.user_attrs
            ]
        except KeyError:  # the study does not exist yet
            running = []
        if running:
            break
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    first.wait()

    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # A message, not a result: it is logged on stderr (`pipeline.console`).
    assert f"trial {running[0].number}: its worker" in result.stderr
    trials = optuna.load_study(study_name="mnist-v3", storage=studies.open_storage(str(journal))).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.FAIL) == 1
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    killed = mlflow.get_run(running[0].user_attrs["mlflow_run_id"])
    assert killed.info.status == "FAILED" and killed.data.tags["trial_state"] == "FAIL"


def test_n_jobs_workers_on_one_machine_share_the_study(tracking, mnist, tmp_path):
    journal = tmp_path / "study.journal"
    parent = mlflow_run(
        "search",
        version=1,
        n_trials=4,
        epochs=1,
        subset=1500,
        validation=300,
        n_jobs=2,
        storage=journal,
        train_best="false",
    )
    children = search_runs(parent.info.run_id)
    assert sorted(int(r.data.tags["optuna_trial"]) for r in children) == [0, 1, 2, 3]
    trials = optuna.load_study(study_name="mnist-v1", storage=studies.open_storage(str(journal))).get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) + [t.state for t in trials].count(
        TrialState.PRUNED
    ) == 4 and len(trials) == 4


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_a_stopped_parallel_search_queues_every_interrupted_trial_again(tracking, mnist, tmp_path, stop):
    """Ctrl-C reaches every process of the terminal's group; `kill` reaches the first process only."""
    journal = tmp_path / "study.journal"
    # 30 epochs, so that no trial can finish while the stop is on its way; the stop cuts them short.
    command = [
        sys.executable, "-m", "pipeline.search", "--version", "3", "--n-trials", "3", "--epochs", "30",
        "--subset", "4000", "--validation", "500", "--storage", str(journal), "--n-jobs", "2",
        "--train-best", "false",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    search = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    storage = studies.open_storage(str(journal))
    deadline = time.monotonic() + 300
    while True:  # stop it once both workers are training: in a trial with its MLflow run, an epoch done
        assert search.poll() is None and time.monotonic() < deadline, "the search ended before it could be stopped"
        try:
            trials = optuna.load_study(study_name="mnist-v3", storage=storage).get_trials()
        except KeyError:  # the study does not exist yet
            trials = []
        training = [t for t in trials if t.state == TrialState.RUNNING and "mlflow_run_id" in t.user_attrs]
        if len(training) == 2 and all(t.intermediate_values for t in training):
            break
        time.sleep(0.5)
    if stop == "ctrl-c":
        os.killpg(search.pid, signal.SIGINT)
    else:
        search.send_signal(signal.SIGTERM)
    _, stderr = search.communicate(timeout=300)
    assert search.returncode != 0 and "search: stopped" in stderr, stderr[-3000:]

    trials = optuna.load_study(study_name="mnist-v3", storage=studies.open_storage(str(journal))).get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(failed) == 2 and not [t for t in trials if t.state == TrialState.RUNNING]
    # Each interrupted trial is queued again with its parameters, besides the slot never claimed.
    assert len(waiting) == 3
    assert sorted(str(t.params) for t in failed) == sorted(str(t.params) for t in waiting if t.params)
    for baseline in [t for t in failed if t.number == 0]:
        assert [t.user_attrs.get("baseline") for t in waiting if t.params == baseline.params] == [True]
    for trial in failed:
        stopped = mlflow.get_run(trial.user_attrs["mlflow_run_id"])
        assert stopped.info.status == "FAILED" and stopped.data.tags["trial_state"] == "FAIL"
