"""Promotion against a real (temporary) tracking store and model registry."""

import mlflow
import pytest

from pipeline import promote
from pipeline.tracking.promotion import ALIAS, STAGE

SAME = "mnist:abc:subset=0:last=5000"


def register(val_accuracy, validation_set=SAME):
    """A run with a validation accuracy, registered as a new version of `mnist`; returns its number."""
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_metric("val_accuracy", 0.5, step=1)
        mlflow.log_metric("val_accuracy", val_accuracy, step=2)  # the final epoch's counts
        mlflow.set_tag("validation_set", validation_set)
    if not client.search_registered_models("name = 'mnist'"):
        client.create_registered_model("mnist")
    version = client.create_model_version("mnist", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return int(version.version)


def production():
    client = mlflow.MlflowClient()
    by_alias = int(client.get_model_version_by_alias("mnist", ALIAS).version)
    staged = [int(v.version) for v in client.search_model_versions("name = 'mnist'") if v.current_stage == STAGE]
    assert staged == [by_alias], "stage and alias must name the same version"
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
    assert "first promotion" in tags["reason"]


def test_a_better_version_replaces_production_and_archives_it(tracking):
    old = register(0.97)
    promote.main([])
    new = register(0.985)
    promote.main([])
    assert production() == new
    stages = {int(v.version): v.current_stage for v in mlflow.MlflowClient().search_model_versions("name = 'mnist'")}
    assert stages[old] == "Archived"
    assert last_decision()["previous_version"] == str(old)


def test_a_worse_version_never_replaces_a_better_one(tracking, capsys):
    best = register(0.99)
    promote.main([])
    worse = register(0.95)
    promote.main([])
    assert production() == best
    promote.main(["--model-version", str(worse)])
    assert production() == best
    tags = last_decision()
    assert tags["decision"] == "kept" and tags["reason"].startswith(f"refused: version {worse}")
    assert "is not better than Production" in capsys.readouterr().out


def test_only_versions_validated_on_the_same_images_compete(tracking):
    fair = register(0.98)
    promote.main([])
    tiny = register(1.0, validation_set="mnist:abc:subset=1000:last=100")
    promote.main([])
    assert production() == fair
    promote.main(["--model-version", str(tiny)])
    assert production() == fair
    assert "not validated on the same images" in last_decision()["reason"]


def test_nothing_to_promote_is_a_clear_error(tracking):
    with pytest.raises(SystemExit, match="promote: no registered versions to choose from"):
        promote.main([])
