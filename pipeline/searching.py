"""An Optuna search over a version's search space, each trial a nested MLflow run.

The study is a fixed number of trial slots: whoever creates it enqueues `n_trials`
waiting trials, and every worker — a process here, or on another machine sharing
the storage — claims waiting trials one at a time until none is left. A claim is
Optuna's own atomic WAITING -> RUNNING transition, so no trial runs twice and the
study ends with exactly the trials asked for, however many workers share it.

A worker that dies (killed, machine lost) leaves its trial RUNNING. The next
worker to start notices — the trial's process is gone, or its per-epoch heartbeat
is older than `STALE_SECONDS` — marks it FAIL in Optuna and FAILED in MLflow, and
enqueues a replacement, so a rerun of the same study finishes the job. A worker
stopped by Ctrl-C or SIGTERM marks its own trial the same way before it exits.

The objective is the final epoch's validation accuracy; the test set is never
looked at. Optuna's TPE sampler proposes, and a median pruner stops trials whose
per-epoch validation accuracy falls behind.
"""

import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import mlflow
import optuna
from optuna.trial import TrialState

from pipeline import training, versions

DEFAULT_STORAGE = "optuna.journal"  # a journal file beside the tracking store
STALE_SECONDS = 1800  # a trial silent this long (no epoch ended) is taken for dead
SLOTS_WAIT_SECONDS = 120  # how long a joining worker waits for the creator to enqueue the slots
SETTINGS_KEYS = ("learning_rate", "batch_size")  # what a search space may set beside the layers
BEST_PARAMS_ARTIFACT = "search/best_params.json"


class SearchError(RuntimeError):
    """A search that cannot start or go on, and why."""


@dataclass(frozen=True)
class Plan:
    """What every worker of one search needs; picklable, for worker processes."""

    version: int
    study: str
    storage: str
    n_trials: int
    epochs: int
    seed: int
    validation: int
    subset: int
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    deadline: float = float("inf")  # time.time() after which no new trial is claimed
    threads: int = 0  # TensorFlow threads per worker; 0 = one per core


def search(plan, n_jobs=1):
    """Run the search with `n_jobs` workers on this machine; return the study."""
    signal.signal(signal.SIGTERM, interrupt)  # `kill` stops a search like Ctrl-C: trials in flight marked FAIL
    study = open_study(plan)  # create or join first, so that a bad study stops before any worker starts
    fail_stale_trials(study)
    if n_jobs == 1:
        work(plan, study)
        return study
    # Worker processes rather than threads: each has its own TensorFlow and its own MLflow
    # client, and the cores are shared out between them.
    context = multiprocessing.get_context("spawn")
    plan = replace(plan, threads=max(1, (os.cpu_count() or 1) // n_jobs))
    workers = [context.Process(target=work_in_process, args=(plan,)) for _ in range(n_jobs)]
    for process in workers:
        process.start()
    try:
        for process in workers:
            process.join()
    except BaseException:
        for process in workers:
            process.terminate()  # SIGTERM: each marks its trial FAIL before it exits
        for process in workers:
            process.join()
        raise
    failed = [process.exitcode for process in workers if process.exitcode]
    if failed:
        raise SearchError(f"{len(failed)} of {n_jobs} workers failed (exit codes {failed}); "
                          f"rerun with the same study to finish it")
    return study


def work_in_process(plan):
    signal.signal(signal.SIGTERM, interrupt)
    os.environ.pop("MLFLOW_RUN_ID", None)  # set by `mlflow run` for the parent; trials are runs of their own
    mlflow.set_tracking_uri(plan.tracking_uri)
    try:
        work(plan, open_study(plan))
    except KeyboardInterrupt:
        sys.exit(130)


def open_storage(storage):
    """An RDB URL (postgresql://, sqlite:///, mysql://) or else the path of a journal file."""
    if "://" in storage:
        import sqlalchemy.exc

        for attempt in range(1, 6):
            try:
                return optuna.storages.RDBStorage(storage)
            except sqlalchemy.exc.DBAPIError:
                # Workers starting at once on an empty database race to create Optuna's tables;
                # the losers find them made on the next try.
                if attempt == 5:
                    raise
                time.sleep(attempt)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))


def open_study(plan):
    """Create the study with its slots, or join it; returns the Study."""
    storage = open_storage(plan.storage)
    sampler = optuna.samplers.TPESampler(seed=plan.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            study = optuna.create_study(study_name=plan.study, storage=storage, direction="maximize",
                                        sampler=sampler, pruner=pruner)
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=plan.study, storage=storage, sampler=sampler, pruner=pruner)
            return joined(study, plan)
    study.set_user_attr("version", plan.version)
    study.set_user_attr("epochs", plan.epochs)
    # Trial 0 is the version's own configuration: the baseline every other trial is measured against.
    study.enqueue_trial(baseline(versions.get(plan.version)), user_attrs={"baseline": True})
    enqueue(study, plan.n_trials - 1)
    study.set_user_attr("n_trials", plan.n_trials)  # last: joining workers wait for it
    return study


def baseline(version):
    """The version's defaults, as values of the parameters its search space samples."""
    defaults = {**training.resolved_architecture(version),
                "learning_rate": version.learning_rate, "batch_size": version.batch_size}
    return version.search_space(optuna.trial.FixedTrial(defaults))


def joined(study, plan):
    """Check that a study being joined searches the same thing; extend it to `n_trials` slots."""
    deadline = time.monotonic() + SLOTS_WAIT_SECONDS
    while "n_trials" not in study.user_attrs:  # its creator is still enqueuing
        if time.monotonic() > deadline:
            raise SearchError(f"study {plan.study!r} never got its trials queued; was its creator killed? "
                              f"delete it or use another study name")
        time.sleep(1)
    for key in ("version", "epochs"):
        if study.user_attrs[key] != getattr(plan, key):
            raise SearchError(f"study {plan.study!r} searches {key} {study.user_attrs[key]}, not "
                              f"{getattr(plan, key)}; use another study name")
    if plan.n_trials > study.user_attrs["n_trials"]:  # topped up by a rerun asking for more
        enqueue(study, plan.n_trials - study.user_attrs["n_trials"])
        study.set_user_attr("n_trials", plan.n_trials)
    return study


def enqueue(study, count):
    """Add `count` waiting trials for the workers to claim; the sampler chooses their parameters."""
    for _ in range(count):
        study.enqueue_trial({}, skip_if_exists=False)


def work(plan, study):
    """Claim and run waiting trials until none is left; the loop of every worker."""
    if plan.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(plan.threads)
    mlflow.set_experiment(experiment_id=plan.experiment_id)
    splits = None
    while time.time() < plan.deadline and (trial := claim(study, plan.seed)) is not None:
        if splits is None:  # loaded only once there is work
            from pipeline import datasets

            splits = training.split(datasets.load(datasets.MNIST), plan.validation, plan.subset)
        run_trial(study, trial, plan, splits)


def interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def claim(study, seed=0):
    """Atomically take one WAITING trial for this worker, or return None when none is left."""
    storage = study._storage  # Optuna's own claim, as `Study.ask` does it, without creating new trials
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if storage.set_trial_state_values(frozen._trial_id, TrialState.RUNNING):
            # The sampler's randomness is a function of the seed and the trial number, not of the
            # process: a resumed study or a second worker never repeats another trial's draws.
            study.sampler = optuna.samplers.TPESampler(seed=seed + frozen.number)
            trial = optuna.Trial(study, frozen._trial_id)
            trial.set_user_attr("worker", worker_id())
            trial.set_user_attr("heartbeat", time.time())
            return trial
    return None


def worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def run_trial(study, trial, plan, splits):
    from optuna_integration import KerasPruningCallback

    version = versions.get(plan.version)
    sampled = version.search_space(trial)
    architecture = {key: value for key, value in sampled.items() if key not in SETTINGS_KEYS}
    settings = training.Settings.for_version(
        plan.version, epochs=plan.epochs, seed=plan.seed, validation=plan.validation, subset=plan.subset,
        **{key: value for key, value in sampled.items() if key in SETTINGS_KEYS},
    )
    tags = {"mlflow.parentRunId": plan.parent_run_id, "optuna_study": plan.study,
            "optuna_trial": str(trial.number), "version": str(plan.version)}
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"trial {trial.number}", nested=mlflow.active_run() is not None,
                          tags=tags) as run:
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        mlflow.log_params({**settings.params(), **training.resolved_architecture(version, architecture)})
        try:
            _, history = training.fit(settings, splits, architecture=architecture, callbacks=[
                KerasPruningCallback(trial, "val_accuracy"), Heartbeat(trial)])
        except optuna.TrialPruned:
            finish(study, trial, started, TrialState.PRUNED)
            return
        except BaseException:
            finish(study, trial, started, TrialState.FAIL)  # leaving `with`, the run ends FAILED
            enqueue(study, 1)  # the interrupted slot runs again when the study resumes
            raise
        finish(study, trial, started, TrialState.COMPLETE, value=history["val_accuracy"][-1])


def finish(study, trial, started, state, value=None):
    mlflow.set_tag("trial_state", state.name)
    mlflow.log_metric("trial_seconds", time.perf_counter() - started)
    if state == TrialState.COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=state)
    print(f"trial {trial.number}: {state.name}" + (f", val_accuracy {value:.4f}" if value is not None else ""))


class Heartbeat(keras.callbacks.Callback):
    """Stamps the trial at every epoch's end, so other workers can tell it is alive."""

    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch, logs=None):
        self.trial.set_user_attr("heartbeat", time.time())


def fail_stale_trials(study):
    """Mark FAIL the RUNNING trials whose worker is gone, and enqueue a replacement for each."""
    client = mlflow.MlflowClient()
    host = socket.gethostname()
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = frozen.user_attrs.get("worker", ":")
        worker_host, _, pid = worker.rpartition(":")
        # A trial just claimed has no worker or heartbeat yet: it counts as alive from its start.
        started = frozen.datetime_start.timestamp() if frozen.datetime_start else time.time()
        silent = time.time() - frozen.user_attrs.get("heartbeat", started)
        gone = worker_host == host and pid.isdigit() and not process_alive(int(pid))
        if not (gone or silent > STALE_SECONDS) or worker == worker_id():
            continue
        try:
            study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
        except (RuntimeError, ValueError):  # another worker got there first
            continue
        enqueue(study, 1)
        run_id = frozen.user_attrs.get("mlflow_run_id")
        if run_id:
            client.set_tag(run_id, "trial_state", "FAIL")
            client.set_terminated(run_id, "FAILED")
        print(f"trial {frozen.number}: its worker {worker} is gone; marked FAIL, a replacement is queued")


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def summarize(study):
    """Log the study's outcome to the active (parent) run: best trial, table, plots."""
    from pipeline import figures

    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials)
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING,
                            TrialState.WAITING)}
    mlflow.log_metrics({f"trials_{state}": count for state, count in counts.items()})
    table = study.trials_dataframe()
    if not table.empty:
        table = table.astype({column: str for column in table.columns if table[column].dtype.kind in "mM"})
        mlflow.log_text(table.to_csv(index=False), "search/trials.csv")
        mlflow.log_table(table, "search/trials.json")
    if not counts["complete"]:
        return None
    best = study.best_trial
    mlflow.log_metric("best_val_accuracy", best.value)
    reference = [t for t in trials if t.user_attrs.get("baseline") and t.state == TrialState.COMPLETE]
    if reference:
        mlflow.log_metric("baseline_val_accuracy", reference[0].value)
        print(f"search: the version's own configuration (trial {reference[0].number}) reached val_accuracy "
              f"{reference[0].value:.4f}; the best trial {best.number} {best.value:.4f}")
    mlflow.log_params({f"best_{key}": value for key, value in best.params.items()})
    mlflow.set_tag("best_trial", str(best.number))
    best_params = {"version": study.user_attrs["version"], "trial": best.number, "val_accuracy": best.value,
                   **best.params}
    mlflow.log_dict(best_params, BEST_PARAMS_ARTIFACT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.importance import PedAnovaImportanceEvaluator
        from optuna.visualization import matplotlib as plots

        for name, draw in (
            ("optimization_history", lambda: plots.plot_optimization_history(study)),
            ("param_importances", lambda: plots.plot_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator())),
            ("parallel_coordinate", lambda: plots.plot_parallel_coordinate(study)),
        ):
            try:
                axes = draw()
            except (ValueError, RuntimeError, ZeroDivisionError) as error:
                print(f"search plot {name} skipped: {error}")
                continue
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            figures.log(figure, f"search/{name}.png")
    return best_params


def best_params(run_id):
    """The best configuration a search run saved (for `train -P params_from=<run id>`)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=BEST_PARAMS_ARTIFACT,
                                                       dst_path=scratch)
        except mlflow.exceptions.MlflowException as error:
            raise SearchError(f"run {run_id} has no {BEST_PARAMS_ARTIFACT}: is it a finished search? ({error})")
        return json.loads(Path(path).read_text())


def train_best(best, parent_run_id, seed=0, validation=5000, subset=0):
    """Train the best configuration with the version's full epochs, as a nested run; register it."""
    architecture, overrides = split_params(best)
    settings = training.Settings.for_version(best["version"], seed=seed, validation=validation, subset=subset,
                                             **overrides)
    with mlflow.start_run(run_name=f"best of search {parent_run_id[:8]}", nested=True,
                          tags={"params_from": parent_run_id}):
        mlflow.log_param("params_from", parent_run_id)
        outcome = training.train_tracked(settings, architecture=architecture, register=True)
    print(f"best configuration trained for {settings.epochs} epochs: val_accuracy "
          f"{outcome.history['val_accuracy'][-1]:.4f}, registered as version {outcome.model_version} of `mnist`")
    return outcome


def split_params(params):
    """A saved configuration as (architecture, training settings), dropping the bookkeeping."""
    version = versions.get(params["version"])
    layers = training.resolved_architecture(version).keys()
    return ({key: value for key, value in params.items() if key in layers},
            {key: value for key, value in params.items() if key in SETTINGS_KEYS})

