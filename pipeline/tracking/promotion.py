"""Choosing which registered version of a model serves in Production.

`models:/mnist/Production` is what people send their images to, so only a
version that can say "not a digit" (one with a reject class, as version 6 has)
and was trained on MNIST may serve there. Among those, the choice looks only at
**validation** accuracy, the final `val_accuracy` of the run that trained each
version, never at the test set. Validation accuracies are comparable only when
measured on the same images, so each candidate carries its run's
`validation_set` tag and only versions with the same one as the current
Production model (or, before there is one, as the newest eligible version)
compete. Another registered model (`fashion-mnist`) has no such rule: the best by
validation serves.

A version can also be chosen by hand (`promote -P model_version=N`): it is
promoted if it may serve at all, whatever its accuracy, and the promotion says so.

A promotion sets both names MLflow resolves: the stage `Production`
(`models:/mnist/Production`, deprecated in MLflow 3 but still served) and the
alias `production` (`models:/mnist@production`). The version it replaces is
archived. The stage is what every default URI serves, so where the two disagree
(a promotion stopped between its two calls, a change made by hand in the UI)
`reconcile` makes the alias follow the stage.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.data import datasets
from pipeline.training import versions

STAGE = "Production"
ALIAS = "production"
DIGITS = datasets.MNIST.name  # the registered model of digit readers is named after their dataset


class PromotionError(RuntimeError):
    """Nothing can be promoted, and why."""


@dataclass(frozen=True)
class Candidate:
    version: int  # the registry's number: models:/mnist/<version>
    run_id: str
    val_accuracy: float | None
    validation_set: str | None
    in_production: bool
    project_version: str  # the project's version that was trained ("6", "ensemble"), not the registry's number
    dataset: str | None  # what it was trained on
    can_refuse: bool  # has a "not a digit" class


@dataclass(frozen=True)
class Decision:
    promote: Candidate | None  # None: Production stays as it is
    current: Candidate | None
    reason: str
    compared: tuple  # the candidates that competed


def candidates(client: mlflow.MlflowClient, name: str) -> list[Candidate]:
    """Every registered version of `name`, with what its training run recorded."""
    found = []
    registered = client.search_model_versions(f"name = '{name}'")
    current = production_version(registered)
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
                project_version=tags.get("version", "?"),
                dataset=(tags.get("validation_set") or "").split(":")[0] or None,
                can_refuse=can_refuse(tags),
            )
        )
    return sorted(found, key=lambda candidate: candidate.version)


def can_refuse(run_tags: dict) -> bool:
    """Whether the run's model has a "not a digit" class: its `reject_class` tag, or else its version's."""
    if "reject_class" in run_tags:
        return run_tags["reject_class"] == "true"
    try:  # runs logged before the tag existed
        return versions.get(run_tags.get("version", "")).reject_class
    except ValueError:
        return False


def production_version(registered: list) -> int | None:
    """The version `models:/<name>/Production` serves: the newest one in the stage."""
    staged = [int(v.version) for v in registered if v.current_stage == STAGE]
    return max(staged) if staged else None


def reconcile(client: mlflow.MlflowClient, name: str) -> str | None:
    """Make stage and alias name one version, the stage's; return what was repaired, or None."""
    registered = client.search_model_versions(f"name = '{name}'")
    staged = production_version(registered)
    try:
        aliased = int(client.get_model_version_by_alias(name, ALIAS).version)
    except MlflowException:  # the alias is not set
        aliased = None
    extra = sorted(int(v.version) for v in registered if v.current_stage == STAGE and int(v.version) != staged)
    if staged == aliased and not extra:
        return None
    if staged is None:
        set_stage(client, name, str(aliased))
        return f"the stage {STAGE} was empty while the alias {ALIAS} named version {aliased}: both name it now"
    client.set_registered_model_alias(name, ALIAS, str(staged))
    set_stage(client, name, str(staged))  # archives any other version left in the stage
    was = f"named version {aliased}" if aliased is not None else "was not set"
    return f"the stage {STAGE} holds version {staged} while the alias {ALIAS} {was}: both name {staged} now"


def unfit(candidate: Candidate, name: str) -> str | None:
    """Why `candidate` may not serve as `name`'s Production model, or None."""
    if name != DIGITS:
        return None
    if candidate.dataset != DIGITS:
        return f"it was trained on {candidate.dataset or 'an unknown dataset'}, not on digits"
    if not candidate.can_refuse:
        return (
            f'it cannot say "not a digit" (project version {candidate.project_version} has no reject class); '
            f"serve it by its number, models:/{name}/{candidate.version}"
        )
    return None


def decide(found: list[Candidate], requested: int | None = None, name: str = DIGITS) -> Decision:
    """Pick the version to promote, or explain why Production stays as it is.

    `requested` is a version chosen by hand: promoted whatever its accuracy, if it may
    serve at all (`unfit`).
    """
    if not found:
        raise PromotionError("no registered versions to choose from; train one first")
    current = next((candidate for candidate in found if candidate.in_production), None)
    if requested is not None:
        return decide_by_hand(found, requested, current, name)

    eligible = [c for c in found if c.val_accuracy is not None and unfit(c, name) is None]
    current_measured = current if current is not None and current in eligible else None
    reference = current_measured or (max(eligible, key=lambda c: c.version) if eligible else None)
    if reference is None:
        if name == DIGITS:
            raise PromotionError(
                'no registered version can say "not a digit" and has a validation accuracy to compare; '
                "train version 6 (mlflow run . -e train -P version=6), or serve a version by its number"
            )
        raise PromotionError("no registered version has a validation accuracy (val_accuracy) to compare")
    compared = tuple(c for c in eligible if c.validation_set == reference.validation_set)
    # Highest validation accuracy; on a tie the current one stays, then the newer wins.
    chosen = max(compared, key=lambda c: (c.val_accuracy, c.in_production, c.version))

    if current is None:
        reason = f"first promotion: {described(chosen)}"
        return Decision(chosen, None, reason, compared)
    if chosen.version == current.version:
        reason = f"{described(current)} is already in Production and is the best"
        return Decision(None, current, reason, compared)
    if current_measured is None:
        why = unfit(current, name) or "it has no validation accuracy"
        return Decision(chosen, current, f"{described(chosen)} replaces version {current.version} ({why})", compared)
    return Decision(chosen, current, f"{described(chosen)} replaces {described(current)}", compared)


def decide_by_hand(found: list[Candidate], requested: int, current: Candidate | None, name: str) -> Decision:
    chosen = next((candidate for candidate in found if candidate.version == requested), None)
    if chosen is None:
        raise PromotionError(f"version {requested} is not registered")
    why = unfit(chosen, name)
    if why is not None:
        return Decision(None, current, f"refused: version {requested} may not serve as {name}/{STAGE}: {why}", ())
    if current is not None and chosen.version == current.version:
        return Decision(None, current, f"{described(chosen)} is already in Production", ())
    replaces = f", replacing {described(current)}" if current is not None else ""
    return Decision(chosen, current, f"chosen by hand: {described(chosen)}{replaces}", ())


def described(candidate: Candidate) -> str:
    accuracy = "no val_accuracy" if candidate.val_accuracy is None else f"val_accuracy {candidate.val_accuracy:.4f}"
    return f"version {candidate.version} (project version {candidate.project_version}, {accuracy})"


def apply(client: mlflow.MlflowClient, name: str, decision: Decision) -> None:
    """Move the chosen version to the stage, archiving the one it replaces, then the alias to it."""
    if decision.promote is None:
        return
    version = str(decision.promote.version)
    set_stage(client, name, version)
    client.set_registered_model_alias(name, ALIAS, version)


def set_stage(client: mlflow.MlflowClient, name: str, version: str) -> None:
    with warnings.catch_warnings():
        # Stages are deprecated in favour of aliases, but `models:/mnist/Production` is how
        # this project's users serve; both are kept until MLflow removes stages.
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage(name, version, STAGE, archive_existing_versions=True)
