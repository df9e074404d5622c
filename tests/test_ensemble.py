"""`ensemble`: one registered model averaging several runs' probabilities."""

import mlflow
import numpy as np
import pytest
from conftest import train_tiny

from pipeline import ensemble, promote
from pipeline.serving import calibration
from pipeline.serving.model import average_probabilities
from pipeline.tracking import promotion
from pipeline.training.splits import scaled


def recognizer(uri):
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()


def test_ensemble_predicts_the_mean_of_its_members(two_tiny_runs, mnist, capsys):
    ensemble.main(["--runs", ",".join(two_tiny_runs)])
    assert "ensemble of 2: validation accuracy" in capsys.readouterr().out

    client = mlflow.MlflowClient()
    newest = max(client.search_model_versions("name = 'mnist'"), key=lambda version: int(version.version))
    assert newest.tags["version"] == "ensemble" and newest.tags["runs"] == ",".join(two_tiny_runs)
    images = scaled(mnist.test_images[:50])
    members = [recognizer(f"runs:/{run_id}/model") for run_id in two_tiny_runs]
    combined = recognizer(f"models:/mnist/{newest.version}")
    mean = np.mean([average_probabilities(member.networks, images) for member in members], axis=0)
    np.testing.assert_allclose(average_probabilities(combined.networks, images), mean, rtol=1e-5, atol=1e-6)
    # The ensemble is calibrated as a whole: its own temperature over the mean.
    np.testing.assert_allclose(
        combined.probabilities(images), calibration.scaled(mean, combined.temperature), rtol=1e-4, atol=1e-6
    )

    run = client.get_run(newest.run_id)
    assert run.data.tags["validation_set"] == client.get_run(two_tiny_runs[0]).data.tags["validation_set"]
    assert {"val_accuracy", "test_accuracy", "member_test_accuracy"} <= set(run.data.metrics)
    member_accuracies = [point.value for point in client.get_metric_history(run.info.run_id, "member_test_accuracy")]
    expected = [client.get_run(run_id).data.metrics["test_accuracy"] for run_id in two_tiny_runs]
    np.testing.assert_allclose(member_accuracies, expected, rtol=1e-6)
    # promote considers it like any other version
    assert int(newest.version) in {candidate.version for candidate in promotion.candidates(client, "mnist")}


def test_final_fits_on_every_image_ensemble_but_are_never_promoted(tracking, mnist, capsys):
    client = mlflow.MlflowClient()
    runs = [train_tiny(seed=seed, validation=0) for seed in (0, 1)]
    for run_id in runs:
        run = client.get_run(run_id)
        assert run.data.tags["validation_set"].endswith(":last=0")
        assert "test_accuracy" in run.data.metrics and not any(key.startswith("val_") for key in run.data.metrics)
        assert recognizer(f"runs:/{run_id}/model").temperature == 1.0  # nothing held out to calibrate on
    ensemble.main(["--runs", ",".join(runs)])
    assert "ensemble of 2: test accuracy" in capsys.readouterr().out
    newest = max(client.search_model_versions("name = 'mnist'"), key=lambda version: int(version.version))
    metrics = client.get_run(newest.run_id).data.metrics
    assert "test_accuracy" in metrics and "val_accuracy" not in metrics

    with pytest.raises(SystemExit, match="no registered version has a validation accuracy"):
        promote.main([])
    validated = train_tiny(seed=2)
    promote.main([])
    promote.main(["--model-version", str(newest.version)])
    production = client.get_model_version_by_alias("mnist", promotion.ALIAS)
    assert production.run_id == validated
    assert "has no validation accuracy" in capsys.readouterr().out


def test_runs_validated_on_other_images_are_refused(two_tiny_runs, capsys):
    other = train_tiny(seed=2, validation=150, register=False)
    with pytest.raises(SystemExit, match="validated on different images"):
        ensemble.main(["--runs", f"{two_tiny_runs[0]},{other}"])


def test_unknown_run_is_refused(two_tiny_runs):
    with pytest.raises(SystemExit, match="ensemble: run 0123456789abcdef"):
        ensemble.main(["--runs", f"{two_tiny_runs[0]},0123456789abcdef"])


def test_shifted_moves_whole_pixels_with_black_edges():
    from pipeline.serving.model import shifted

    images = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28) + 1
    right = shifted(images, 0, 1)
    np.testing.assert_array_equal(right[:, :, 1:], images[:, :, :-1])
    assert not right[:, :, 0].any()
    up = shifted(images, -1, 0)
    np.testing.assert_array_equal(up[:, :-1], images[:, 1:])
    assert not up[:, -1].any()
    np.testing.assert_array_equal(shifted(images, 0, 0), images)


def test_ensemble_with_test_time_augmentation(two_tiny_runs, mnist):
    from pipeline.serving.model import TTA_SHIFTS, shifted

    ensemble.main(["--runs", ",".join(two_tiny_runs), "--tta", "true"])
    client = mlflow.MlflowClient()
    newest = max(client.search_model_versions("name = 'mnist'"), key=lambda version: int(version.version))
    images = scaled(mnist.test_images[:20])
    members = [recognizer(f"runs:/{run_id}/model") for run_id in two_tiny_runs]
    expected = np.mean(
        [average_probabilities(member.networks, shifted(images, *shift)) for member in members for shift in TTA_SHIFTS],
        axis=0,
    )
    combined = recognizer(f"models:/mnist/{newest.version}")
    np.testing.assert_allclose(
        combined.probabilities(images), calibration.scaled(expected, combined.temperature), rtol=1e-4, atol=1e-6
    )
    assert client.get_run(newest.run_id).data.params["tta"] == "True"
