"""What a search found: its summary in the parent run, its best configuration, and training that configuration."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from pathlib import Path

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.analysis import figures
from pipeline.tracking.run import Outcome, train_tracked
from pipeline.training import versions
from pipeline.training.settings import Settings, resolved_architecture
from pipeline.tuning.study import SETTINGS_KEYS, SearchError

BEST_PARAMS_ARTIFACT = "search/best_params.json"

log = logging.getLogger(__name__)


def summarize(study: optuna.Study) -> dict | None:
    """Log the study's outcome to the active (parent) run: best trial, table, plots."""
    trials = study.get_trials(deepcopy=False)
    counts = {
        state.name.lower(): sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)
    }
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
        log.info(
            "the version's own configuration (trial %d) reached val_accuracy %.4f; the best trial %d %.4f",
            reference[0].number,
            reference[0].value,
            best.number,
            best.value,
        )
    mlflow.log_params({f"best_{key}": value for key, value in best.params.items()})
    mlflow.set_tag("best_trial", str(best.number))
    best_params = {
        "version": study.user_attrs["version"],
        "trial": best.number,
        "val_accuracy": best.value,
        **best.params,
    }
    mlflow.log_dict(best_params, BEST_PARAMS_ARTIFACT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        from optuna.importance import PedAnovaImportanceEvaluator
        from optuna.visualization import matplotlib as plots

        for name, draw in (
            ("optimization_history", lambda: plots.plot_optimization_history(study)),
            ("param_importances", lambda: plots.plot_param_importances(study, evaluator=PedAnovaImportanceEvaluator())),
            ("parallel_coordinate", lambda: plots.plot_parallel_coordinate(study)),
        ):
            try:
                axes = draw()
            except (ValueError, RuntimeError, ZeroDivisionError) as error:
                log.warning("search plot %s skipped: %s", name, error)
                continue
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            figures.log(figure, f"search/{name}.png")
    return best_params


def best_params(run_id: str) -> dict:
    """The best configuration a search run saved (for `train -P params_from=<run id>`)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=BEST_PARAMS_ARTIFACT, dst_path=scratch
            )
        except mlflow.exceptions.MlflowException as error:
            raise SearchError(
                f"run {run_id} has no {BEST_PARAMS_ARTIFACT}: is it a finished search? ({error})"
            ) from None
        return json.loads(Path(path).read_text())


def train_best(best: dict, parent_run_id: str, seed: int = 0, validation: int = 5000, subset: int = 0) -> Outcome:
    """Train the best configuration with the version's full epochs, as a nested run; register it."""
    architecture, overrides = split_params(best)
    settings = Settings.for_version(best["version"], seed=seed, validation=validation, subset=subset, **overrides)
    with mlflow.start_run(
        run_name=f"best of search {parent_run_id[:8]}", nested=True, tags={"params_from": parent_run_id}
    ):
        mlflow.log_param("params_from", parent_run_id)
        outcome = train_tracked(settings, architecture=architecture, register=True)
    log.info(
        "best configuration trained for %d epochs: val_accuracy %.4f, registered as models:/mnist/%s",
        settings.epochs,
        outcome.val_accuracy,
        outcome.model_version,
    )
    return outcome


def split_params(params: dict) -> tuple[dict, dict]:
    """A saved configuration as (architecture, training settings), dropping the bookkeeping."""
    version = versions.get(params["version"])
    layers = resolved_architecture(version).keys()
    return (
        {key: value for key, value in params.items() if key in layers},
        {key: value for key, value in params.items() if key in SETTINGS_KEYS},
    )
