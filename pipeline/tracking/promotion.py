"""Choosing which registered version of `mnist` serves in Production.

The choice looks only at **validation** accuracy, the final `val_accuracy` of the
run that trained each version, never at the test set. Validation accuracies are
comparable only when measured on the same images, so each candidate carries its
run's `validation_set` tag and only versions with the same one as the current
Production model (or, before there is one, as the newest version) compete.

A promotion sets both names MLflow resolves: the stage `Production`
(`models:/mnist/Production`, deprecated in MLflow 3 but still served) and the
alias `production` (`models:/mnist@production`). The version it replaces is
archived. A better Production model is never replaced by a worse one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException

STAGE = "Production"
ALIAS = "production"


class PromotionError(RuntimeError):
    """Nothing can be promoted, and why."""


@dataclass(frozen=True)
class Candidate:
    version: int
    run_id: str
    val_accuracy: float | None
    validation_set: str | None
    in_production: bool


@dataclass(frozen=True)
class Decision:
    promote: Candidate | None  # None: Production stays as it is
    current: Candidate | None
    reason: str
    compared: tuple  # the candidates that competed


def candidates(client: mlflow.MlflowClient, name: str) -> list[Candidate]:
    """Every registered version of `name`, with its training run's validation accuracy."""
    found = []
    registered = client.search_model_versions(f"name = '{name}'")
    current = production_version(client, name, registered)
    for model_version in registered:
        metrics, tags = {}, {}
        if model_version.run_id:
            run = client.get_run(model_version.run_id)
            metrics, tags = run.data.metrics, run.data.tags
        found.append(
            Candidate(
                version=int(model_version.version),
                run_id=model_version.run_id,
                val_accuracy=metrics.get("val_accuracy"),
                validation_set=tags.get("validation_set"),
                in_production=int(model_version.version) == current,
            )
        )
    return sorted(found, key=lambda candidate: candidate.version)


def production_version(client: mlflow.MlflowClient, name: str, registered: list) -> int | None:
    """The version serving now: the alias if set, else the newest of `registered` in the stage."""
    try:
        return int(client.get_model_version_by_alias(name, ALIAS).version)
    except MlflowException:  # the alias is not set
        pass
    staged = [int(v.version) for v in registered if v.current_stage == STAGE]
    return max(staged) if staged else None


def decide(found: list[Candidate], requested: int | None = None) -> Decision:
    """Pick the version to promote, or explain why Production stays as it is.

    `requested` asks for one version number instead of the best; it is still refused
    when it is worse than, or not comparable with, the current Production model.
    """
    if not found:
        raise PromotionError("no registered versions to choose from; train one first")
    current = next((candidate for candidate in found if candidate.in_production), None)
    measured = [candidate for candidate in found if candidate.val_accuracy is not None]
    if current is not None and current.val_accuracy is None:
        current_measured = None  # registered by hand, say: nothing to compare it with
    else:
        current_measured = current
    reference = current_measured or (max(measured, key=lambda candidate: candidate.version) if measured else None)
    if reference is None:
        raise PromotionError("no registered version has a validation accuracy (val_accuracy) to compare")
    compared = tuple(candidate for candidate in measured if candidate.validation_set == reference.validation_set)

    if requested is None:
        # Highest validation accuracy; on a tie the current one stays, then the newer wins.
        chosen = max(compared, key=lambda c: (c.val_accuracy, c.in_production, c.version))
    else:
        chosen = next((candidate for candidate in found if candidate.version == requested), None)
        if chosen is None:
            raise PromotionError(f"version {requested} is not registered")
        if chosen.val_accuracy is None:
            return Decision(
                None,
                current,
                f"version {requested} has no validation accuracy (trained on every "
                f"training image, or registered by hand); refused",
                compared,
            )
        if chosen not in compared:
            return Decision(
                None,
                current,
                f"version {requested} was not validated on the same images "
                f"as the Production version {reference.version}; refused",
                compared,
            )

    if current is None:
        return Decision(
            chosen,
            None,
            f"first promotion: version {chosen.version} (val_accuracy {chosen.val_accuracy:.4f})",
            compared,
        )
    if chosen.version == current.version:
        return Decision(
            None,
            current,
            f"version {current.version} is already in Production and is the best "
            f"(val_accuracy {current.val_accuracy:.4f})",
            compared,
        )
    if current_measured is None:
        return Decision(
            chosen,
            current,
            f"version {chosen.version} (val_accuracy {chosen.val_accuracy:.4f}) replaces "
            f"version {current.version}, which has no validation accuracy",
            compared,
        )
    if chosen.val_accuracy <= current.val_accuracy:
        return Decision(
            None,
            current,
            f"refused: version {chosen.version} (val_accuracy {chosen.val_accuracy:.4f}) "
            f"is not better than Production version {current.version} "
            f"({current.val_accuracy:.4f})",
            compared,
        )
    return Decision(
        chosen,
        current,
        f"version {chosen.version} (val_accuracy {chosen.val_accuracy:.4f}) replaces "
        f"version {current.version} ({current.val_accuracy:.4f})",
        compared,
    )


def apply(client: mlflow.MlflowClient, name: str, decision: Decision) -> None:
    """Move the chosen version to the stage and the alias; archive the one it replaces."""
    if decision.promote is None:
        return
    version = str(decision.promote.version)
    with warnings.catch_warnings():
        # Stages are deprecated in favour of aliases, but `models:/mnist/Production` is how
        # this project's users serve; both are kept until MLflow removes stages.
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(name, version, STAGE, archive_existing_versions=True)
    client.set_registered_model_alias(name, ALIAS, version)
