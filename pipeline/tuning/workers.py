"""The workers of a search: each claims trial slots of the study and runs them as nested MLflow runs.

A worker stopped by Ctrl-C or SIGTERM marks its own trial FAIL in Optuna and
FAILED in MLflow and queues a replacement before it exits. The objective is the
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
import time
from dataclasses import replace

import keras
import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.data import datasets
from pipeline.tracking.run import EpochMetrics
from pipeline.training import versions
from pipeline.training.loop import fit
from pipeline.training.settings import Settings, resolved_architecture
from pipeline.training.splits import Splits, split
from pipeline.tuning.study import SETTINGS_KEYS, Plan, SearchError, claim, enqueue, fail_stale_trials, open_study

log = logging.getLogger(__name__)


def search(plan: Plan, n_jobs: int = 1) -> optuna.Study:
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
        raise SearchError(
            f"{len(failed)} of {n_jobs} workers failed (exit codes {failed}); rerun with the same study to finish it"
        )
    return study


def work_in_process(plan: Plan) -> None:
    signal.signal(signal.SIGTERM, interrupt)
    os.environ.pop("MLFLOW_RUN_ID", None)  # set by `mlflow run` for the parent; trials are runs of their own
    mlflow.set_tracking_uri(plan.tracking_uri)
    try:
        work(plan, open_study(plan))
    except KeyboardInterrupt:
        sys.exit(130)


def work(plan: Plan, study: optuna.Study) -> None:
    """Claim and run waiting trials until none is left; the loop of every worker."""
    if plan.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(plan.threads)
    mlflow.set_experiment(experiment_id=plan.experiment_id)
    splits = None
    while time.time() < plan.deadline and (trial := claim(study, plan.seed)) is not None:
        if splits is None:  # loaded only once there is work
            splits = split(datasets.load(datasets.MNIST), plan.validation, plan.subset)
        run_trial(study, trial, plan, splits)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


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
                callbacks=[EpochMetrics(), KerasPruningCallback(trial, "val_accuracy"), Heartbeat(trial)],
            )
        except optuna.TrialPruned:
            finish(study, trial, started, TrialState.PRUNED)
            return
        except BaseException:
            finish(study, trial, started, TrialState.FAIL)  # leaving `with`, the run ends FAILED
            enqueue(study, 1)  # the interrupted slot runs again when the study resumes
            raise
        finish(study, trial, started, TrialState.COMPLETE, value=history["val_accuracy"][-1])


def finish(
    study: optuna.Study, trial: optuna.Trial, started: float, state: TrialState, value: float | None = None
) -> None:
    mlflow.set_tag("trial_state", state.name)
    mlflow.log_metric("trial_seconds", time.perf_counter() - started)
    if state == TrialState.COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=state)
    log.info("trial %d: %s%s", trial.number, state.name, f", val_accuracy {value:.4f}" if value is not None else "")


class Heartbeat(keras.callbacks.Callback):
    """Stamps the trial at every epoch's end, so other workers can tell it is alive."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.trial.set_user_attr("heartbeat", time.time())
