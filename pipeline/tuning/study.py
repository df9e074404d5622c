"""An Optuna study of a version's search space, as a fixed number of trial slots that workers claim.

Whoever creates the study enqueues `n_trials` waiting trials, and every worker
(`pipeline.tuning.workers`) — a process here, or on another machine sharing the
storage — claims waiting trials one at a time until none is left. A claim is
Optuna's own atomic WAITING -> RUNNING transition in the storage, so no trial runs
twice and the study ends with exactly the trials asked for, however many workers
share it.

While a trial runs, its worker stamps it every `HEARTBEAT_SECONDS`: Optuna's own
heartbeat on an RDB storage (PostgreSQL), a `heartbeat` user attribute in a
journal file. A worker that dies (killed, machine lost) stops stamping; once its
trial is `STALE_SECONDS` silent, any worker marks it FAIL in Optuna and FAILED in
MLflow and queues a replacement with the same parameters (Optuna's
`RetryHeartbeatStaleTrialCallback`), so the baseline stays in the study and a
rerun of the same search finishes the job. Liveness is judged by the heartbeat
alone, never by host names or process ids, which containers and cloned machines
share.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.training import versions
from pipeline.training.settings import resolved_architecture

DEFAULT_STORAGE = "optuna.journal"  # a journal file beside the tracking store

HEARTBEAT_SECONDS = 10  # how often a worker stamps the trial it runs
STALE_SECONDS = 60  # a trial unstamped this long (six stamps missed) is taken for dead

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
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(
                        storage,
                        heartbeat_interval=HEARTBEAT_SECONDS,
                        grace_period=STALE_SECONDS,
                        heartbeat_stale_trial_callback=queue_again,
                    )
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


def open_study(plan: Plan, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study with its slots, or join it; returns the Study."""
    sampler = sampler_for(plan.seed)
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


def sampler_for(seed: int) -> optuna.samplers.TPESampler:
    # Parallel workers: each running trial counts as its worst, so that workers do not all sample alike.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial `number` of the study as the storage has it now."""
    return next(trial for trial in study.get_trials(deepcopy=False) if trial.number == number)


def trial_id(storage: optuna.storages.BaseStorage, study: optuna.Study, number: int) -> int:
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def claim(
    study: optuna.Study, storage: optuna.storages.BaseStorage, worker: str, seed: int = 0
) -> tuple[optuna.Trial, int] | None:
    """Atomically take one WAITING trial for `worker`: (the trial, its id in the storage), or None when none is left."""
    for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        claimed = trial_id(storage, study, waiting.number)
        try:
            if not storage.set_trial_state_values(claimed, TrialState.RUNNING):
                continue  # another worker claimed it first
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker claimed and finished it since the list was read
        # The sampler's randomness is a function of the seed and the trial number, not of the
        # process: a resumed study or a second worker never repeats another trial's draws.
        study.sampler = sampler_for(seed + waiting.number)
        trial = optuna.Trial(study, claimed)
        trial.set_user_attr("worker", worker)
        beat(storage, claimed)
        return trial, claimed
    return None


def beat(storage: optuna.storages.BaseStorage, claimed: int) -> None:
    """Stamp a running trial as alive: Optuna's heartbeat on an RDB storage, a user attribute in a journal."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.record_heartbeat(claimed)
    else:
        storage.set_trial_user_attr(claimed, "heartbeat", time.time())


def new_worker_id() -> str:
    """A name for one worker, unique even where host names and process ids repeat; for people to read."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Mark FAIL the RUNNING trials no worker has stamped for `STALE_SECONDS`, and queue each again."""
    if isinstance(storage, optuna.storages.RDBStorage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # Optuna's heartbeat; it calls `queue_again` for each
        return
    for running in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # A replacement carries its predecessor's old stamp until claimed: the claim itself counts too.
        started = running.datetime_start.timestamp() if running.datetime_start else time.time()
        if time.time() - max(running.user_attrs.get("heartbeat", 0.0), started) <= STALE_SECONDS:
            continue
        stale = trial_id(storage, study, running.number)
        try:
            if not storage.set_trial_state_values(stale, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished, or failed by another worker, since the list was read
        queue_again(study, storage.get_trial(stale))


def queue_again(study: optuna.Study, failed: optuna.trial.FrozenTrial) -> None:
    """Queue a trial with the failed one's parameters, and mark its MLflow run FAILED."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.RetryHeartbeatStaleTrialCallback()(study, failed)
    run_id = failed.user_attrs.get("mlflow_run_id")
    if run_id:
        client = mlflow.MlflowClient()
        client.set_tag(run_id, "trial_state", "FAIL")
        client.set_terminated(run_id, "FAILED")
    log.warning(
        "trial %d: its worker %s stopped; marked FAIL, queued again with the same parameters",
        failed.number,
        failed.user_attrs.get("worker", "?"),
    )
