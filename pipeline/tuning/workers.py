"""The workers of a search: each claims trial slots of the study and runs them as nested MLflow runs.

A worker stopped by Ctrl-C or SIGTERM marks its own trial FAIL in Optuna and
FAILED in MLflow and queues a replacement with the same parameters before it
exits; further signals are ignored meanwhile, so the cleanup cannot be cut
short. With `n_jobs` > 1 the first process passes the stop on to its workers and
waits for their cleanup. A worker with no trial left to claim waits while others'
trials run, so that a trial whose worker dies is replaced and run. The objective is the
final epoch's validation accuracy; the test set is never looked at. Optuna's TPE
sampler proposes, and a median pruner stops trials whose per-epoch validation
accuracy falls behind.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.data import datasets
from pipeline.tracking.run import EpochMetrics
from pipeline.training import versions
from pipeline.training.loop import fit
from pipeline.training.settings import Settings, resolved_architecture
from pipeline.training.splits import Splits, split
from pipeline.tuning import study as studies
from pipeline.tuning.study import SETTINGS_KEYS, Plan, SearchError

CLEANUP_SECONDS = 120  # how long a stopped search waits for its workers to mark their trials

log = logging.getLogger(__name__)


def search(plan: Plan, n_jobs: int = 1) -> optuna.Study:
    """Run the search with `n_jobs` workers on this machine; return the study."""
    stop_on_signals()
    storage = studies.open_storage(plan.storage)
    study = studies.open_study(plan, storage)  # create or join first: a bad study stops before any worker starts
    if n_jobs == 1:
        work(plan, study, storage)
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
    except KeyboardInterrupt:
        for process in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: each marks its trial FAIL and queues it again
        deadline = time.monotonic() + CLEANUP_SECONDS
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()  # its trial goes stale and is replaced by the next worker
        raise
    failed = [process.exitcode for process in workers if process.exitcode]
    if failed:
        raise SearchError(
            f"{len(failed)} of {n_jobs} workers failed (exit codes {failed}); rerun with the same study to finish it"
        )
    return study


def work_in_process(plan: Plan) -> None:
    stop_on_signals()
    os.environ.pop("MLFLOW_RUN_ID", None)  # set by `mlflow run` for the parent; trials are runs of their own
    mlflow.set_tracking_uri(plan.tracking_uri)
    try:
        storage = studies.open_storage(plan.storage)
        work(plan, studies.open_study(plan, storage), storage)
    except KeyboardInterrupt:
        sys.exit(130)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the search the same way, once: later ones are ignored while it cleans up."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def interrupt(signum: int, frame: object) -> None:
    for ignored in (signal.SIGINT, signal.SIGTERM):
        signal.signal(ignored, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def work(plan: Plan, study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Claim and run waiting trials until none is left and none is running; the loop of every worker."""
    if plan.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(plan.threads)
    mlflow.set_experiment(experiment_id=plan.experiment_id)
    worker = studies.new_worker_id()
    splits = None
    while time.time() < plan.deadline:
        studies.fail_stale_trials(study, storage)
        claimed = studies.claim(study, storage, worker, plan.seed)
        if claimed is None:
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                return
            time.sleep(studies.HEARTBEAT_SECONDS)  # others' trials run: one may fail and need running again
            continue
        if splits is None:  # loaded only once there is work
            splits = split(datasets.load(datasets.MNIST), plan.validation, plan.subset)
        trial, trial_id = claimed
        with beating(storage, trial_id):
            run_trial(study, trial, plan, splits)


@contextmanager
def beating(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Stamp the trial every HEARTBEAT_SECONDS from a thread of its own while the block runs."""
    stop = threading.Event()

    def stamp() -> None:
        while not stop.wait(studies.HEARTBEAT_SECONDS):
            studies.beat(storage, trial_id)

    thread = threading.Thread(target=stamp, name=f"heartbeat {trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_trial(study: optuna.Study, trial: optuna.Trial, plan: Plan, splits: Splits) -> None:
    from optuna_integration import KerasPruningCallback

    version = versions.get(plan.version)
    sampled = version.search_space(trial)
    architecture = {key: value for key, value in sampled.items() if key not in SETTINGS_KEYS}
    settings = Settings.for_version(
        plan.version,
        epochs=plan.epochs,
        seed=plan.seed,
        validation=plan.validation,
        subset=plan.subset,
        **{key: value for key, value in sampled.items() if key in SETTINGS_KEYS},
    )
    tags = {
        "mlflow.parentRunId": plan.parent_run_id,
        "optuna_study": plan.study,
        "optuna_trial": str(trial.number),
        "version": str(plan.version),
    }
    started = time.perf_counter()
    with mlflow.start_run(run_name=f"trial {trial.number}", nested=mlflow.active_run() is not None, tags=tags) as run:
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        mlflow.log_params({**settings.params(), **resolved_architecture(version, architecture)})
        try:
            _, history = fit(
                settings,
                splits,
                architecture=architecture,
                callbacks=[EpochMetrics(), KerasPruningCallback(trial, "val_accuracy")],
            )
        except optuna.TrialPruned:
            finish(study, trial, started, TrialState.PRUNED)
            return
        except BaseException:
            if finish(study, trial, started, TrialState.FAIL):  # leaving `with`, the run ends FAILED
                # The interrupted slot runs again, with the same parameters, when the study resumes.
                studies.queue_again(study, studies.frozen(study, trial.number))
            raise
        finish(study, trial, started, TrialState.COMPLETE, value=history["val_accuracy"][-1])


def finish(
    study: optuna.Study, trial: optuna.Trial, started: float, state: TrialState, value: float | None = None
) -> bool:
    """Record how the trial ended, in MLflow and Optuna; False if another worker took it for dead meanwhile."""
    mlflow.set_tag("trial_state", state.name)
    mlflow.log_metric("trial_seconds", time.perf_counter() - started)
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, value)
        else:
            study.tell(trial, state=state)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        if studies.frozen(study, trial.number).state == TrialState.RUNNING:
            raise  # a real error, not a trial finished elsewhere
        log.warning("trial %d: taken for dead by another worker meanwhile; this result is dropped", trial.number)
        return False
    log.info("trial %d: %s%s", trial.number, state.name, f", val_accuracy {value:.4f}" if value is not None else "")
    return True
