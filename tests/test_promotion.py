"""Promotion against a real (temporary) tracking store and model registry."""

import mlflow
import pytest

from pipeline import promote
from pipeline.tracking.promotion import ALIAS, STAGE

SAME = "mnist:abc:subset=0:last=5000"


def register(val_accuracy, validation_set=SAME, version="6", name="mnist"):
    """A run of project `version` with a validation accuracy, registered as a new version of `name`."""
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        if val_accuracy is not None:
            mlflow.log_metric("val_accuracy", 0.5, step=1)
            mlflow.log_metric("val_accuracy", val_accuracy, step=2)  # the final epoch's counts
        mlflow.set_tags({"validation_set": validation_set, "version": version})
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    registered = client.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return int(registered.version)


def staged(name="mnist"):
    client = mlflow.MlflowClient()
    return [int(v.version) for v in client.search_model_versions(f"name = '{name}'") if v.current_stage == STAGE]


def production(name="mnist"):
    by_alias = int(mlflow.MlflowClient().get_model_version_by_alias(name, ALIAS).version)
    assert staged(name) == [by_alias], "stage and alias must name the same version"
    return by_alias


def last_decision():
    run = mlflow.search_runs(
        filter_string="attributes.run_name = 'promote'", order_by=["start_time DESC"], output_format="list"
    )[0]
    return run.data.tags


def test_first_promotion_picks_the_best_by_validation(tracking):
    register(0.97)
    best = register(0.99)
    register(0.98)
    promote.main([])
    assert production() == best
    tags = last_decision()
    assert tags["decision"] == "promoted" and tags["promoted_version"] == str(best)
    assert tags["chosen_by"] == "validation accuracy" and tags["previous_version"] == ""
    assert tags["reason"] == f"first promotion: version {best} (project version 6, val_accuracy 0.9900)"


def test_a_better_version_replaces_production_and_archives_it(tracking):
    old = register(0.97)
    promote.main([])
    new = register(0.985)
    promote.main([])
    assert production() == new
    stages = {int(v.version): v.current_stage for v in mlflow.MlflowClient().search_model_versions("name = 'mnist'")}
    assert stages[old] == "Archived"
    assert last_decision()["previous_version"] == str(old)


def test_a_worse_version_never_replaces_a_better_one_by_itself(tracking):
    best = register(0.99)
    promote.main([])
    register(0.95)
    promote.main([])
    assert production() == best
    assert last_decision()["decision"] == "kept"


def test_a_version_chosen_by_hand_is_promoted_even_if_worse_and_says_so(tracking, capsys):
    best = register(0.99)
    promote.main([])
    worse = register(0.95)
    promote.main(["--model-version", str(worse)])
    assert production() == worse
    tags = last_decision()
    assert tags["decision"] == "promoted" and tags["chosen_by"] == "hand"
    assert tags["previous_version"] == str(best)
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(
            f"chosen by hand: version {worse} (project version 6, val_accuracy 0.9500), "
            f"replacing version {best} (project version 6, val_accuracy 0.9900)"
        )
    )


def test_a_first_promotion_by_hand_needs_no_validation_accuracy(tracking):
    final_fit = register(None, validation_set="mnist:abc:subset=0:last=0")
    promote.main(["--model-version", str(final_fit)])
    assert production() == final_fit
    assert last_decision()["reason"].startswith("chosen by hand")


def test_a_version_without_validation_accuracy_is_never_chosen_by_itself(tracking):
    validated = register(0.98)
    register(None, validation_set="mnist:abc:subset=0:last=0")  # a final fit, newer
    promote.main([])
    assert production() == validated


def test_only_versions_validated_on_the_same_images_compete(tracking):
    fair = register(0.98)
    promote.main([])
    register(1.0, validation_set="mnist:abc:subset=1000:last=100")
    promote.main([])
    assert production() == fair


def test_a_digit_reader_that_cannot_refuse_never_serves_production(tracking):
    refuses = register(0.98)
    cannot = register(0.995, version="5")  # more accurate, but no "not a digit" class
    promote.main([])
    assert production() == refuses
    promote.main(["--model-version", str(cannot)])
    assert production() == refuses
    tags = last_decision()
    assert tags["decision"] == "kept" and tags["chosen_by"] == "hand"
    assert 'cannot say "not a digit"' in tags["reason"] and f"models:/mnist/{cannot}" in tags["reason"]


def test_without_a_version_that_can_refuse_nothing_is_promoted(tracking):
    register(0.99, version="3")
    with pytest.raises(SystemExit, match=r'promote: no registered version can say "not a digit"'):
        promote.main([])
    assert staged() == []


def test_a_clothing_model_registered_in_mnist_never_competes(tracking):
    # Registered before clothing models went to `fashion-mnist`: newest, and "better".
    digits = register(0.98)
    clothing = register(0.99, validation_set="fashion-mnist:def:subset=0:last=5000")
    promote.main([])
    assert production() == digits
    promote.main(["--model-version", str(clothing)])
    assert production() == digits
    assert "trained on fashion-mnist, not on digits" in last_decision()["reason"]


def test_another_registered_model_promotes_its_best_by_validation(tracking):
    register(0.90, validation_set="fashion-mnist:def:subset=0:last=5000", version="3", name="fashion-mnist")
    best = register(0.92, validation_set="fashion-mnist:def:subset=0:last=5000", version="3", name="fashion-mnist")
    promote.main(["--registered-model", "fashion-mnist"])
    assert production("fashion-mnist") == best


def test_stage_and_alias_that_disagree_are_repaired_to_the_stage(tracking):
    first = register(0.98)
    promote.main([])
    second = register(0.99)
    # A promotion stopped between its two calls: the stage moved, the alias did not.
    mlflow.MlflowClient().transition_model_version_stage("mnist", str(second), STAGE, archive_existing_versions=True)
    assert int(mlflow.MlflowClient().get_model_version_by_alias("mnist", ALIAS).version) == first
    promote.main([])
    assert production() == second
    tags = last_decision()
    assert tags["repaired"] == (
        f"the stage {STAGE} holds version {second} while the alias {ALIAS} named version {first}: "
        f"both name {second} now"
    )
    assert tags["decision"] == "kept"


def test_an_alias_without_the_stage_gets_the_stage(tracking):
    only = register(0.98)
    mlflow.MlflowClient().set_registered_model_alias("mnist", ALIAS, str(only))
    promote.main([])
    assert production() == only
    assert "was empty" in last_decision()["repaired"]


def test_nothing_to_promote_is_a_clear_error(tracking):
    with pytest.raises(SystemExit, match="promote: no registered versions to choose from"):
        promote.main([])
