"""An Optuna study of a version's search space, as a fixed number of trial slots that workers claim.

Whoever creates the study enqueues `n_trials` waiting trials, and every worker
(`pipeline.tuning.workers`) — a process here, or on another machine sharing the
storage — claims waiting trials one at a time until none is left. A claim is
Optuna's own atomic WAITING -> RUNNING transition, so no trial runs twice and the
study ends with exactly the trials asked for, however many workers share it.

A worker that dies (killed, machine lost) leaves its trial RUNNING. The next
worker to start notices — the trial's process is gone, or its per-epoch heartbeat
is older than `STALE_SECONDS` — marks it FAIL in Optuna and FAILED in MLflow, and
enqueues a replacement, so a rerun of the same study finishes the job.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.training import versions
from pipeline.training.settings import resolved_architecture

DEFAULT_STORAGE = "optuna.journal"  # a journal file beside the tracking store

STALE_SECONDS = 1800  # a trial silent this long (no epoch ended) is taken for dead

SLOTS_WAIT_SECONDS = 120  # how long a joining worker waits for the creator to enqueue the slots

SETTINGS_KEYS = ("learning_rate", "batch_size")  # what a search space may set beside the layers

log = logging.getLogger(__name__)


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


def open_storage(storage: str) -> optuna.storages.BaseStorage:
    """An RDB URL (postgresql://, sqlite:///, mysql://) or else the path of a journal file."""
    if "://" in storage:
        import sqlalchemy.exc

        for attempt in range(1, 6):
            try:
                return optuna.storages.RDBStorage(storage)
            except sqlalchemy.exc.DBAPIError as error:
                # Workers starting at once on an empty database race to create Optuna's tables;
                # the losers find them made on the next try.
                if attempt == 5:
                    reason = str(error.orig).strip().splitlines()[0]
                    raise SearchError(f"cannot open the storage: {reason}") from None
                time.sleep(attempt)
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage))


def open_study(plan: Plan) -> optuna.Study:
    """Create the study with its slots, or join it; returns the Study."""
    storage = open_storage(plan.storage)
    sampler = optuna.samplers.TPESampler(seed=plan.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            study = optuna.create_study(
                study_name=plan.study, storage=storage, direction="maximize", sampler=sampler, pruner=pruner
            )
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


def baseline(version: versions.Version) -> dict:
    """The version's defaults, as values of the parameters its search space samples."""
    defaults = {
        **resolved_architecture(version),
        "learning_rate": version.learning_rate,
        "batch_size": version.batch_size,
    }
    return version.search_space(optuna.trial.FixedTrial(defaults))


def joined(study: optuna.Study, plan: Plan) -> optuna.Study:
    """Check that a study being joined searches the same thing; extend it to `n_trials` slots."""
    deadline = time.monotonic() + SLOTS_WAIT_SECONDS
    while "n_trials" not in study.user_attrs:  # its creator is still enqueuing
        if time.monotonic() > deadline:
            raise SearchError(
                f"study {plan.study!r} never got its trials queued; was its creator killed? "
                f"delete it or use another study name"
            )
        time.sleep(1)
    for key in ("version", "epochs"):
        if study.user_attrs[key] != getattr(plan, key):
            raise SearchError(
                f"study {plan.study!r} searches {key} {study.user_attrs[key]}, not "
                f"{getattr(plan, key)}; use another study name"
            )
    if plan.n_trials > study.user_attrs["n_trials"]:  # topped up by a rerun asking for more
        enqueue(study, plan.n_trials - study.user_attrs["n_trials"])
        study.set_user_attr("n_trials", plan.n_trials)
    return study


def enqueue(study: optuna.Study, count: int) -> None:
    """Add `count` waiting trials for the workers to claim; the sampler chooses their parameters."""
    for _ in range(count):
        study.enqueue_trial({}, skip_if_exists=False)


def claim(study: optuna.Study, seed: int = 0) -> optuna.Trial | None:
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


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_stale_trials(study: optuna.Study) -> None:
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
        log.warning("trial %d: its worker %s is gone; marked FAIL, a replacement is queued", frozen.number, worker)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
