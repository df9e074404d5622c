"""`ensemble`: one registered model averaging several runs' probabilities."""

from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
from conftest import train_tiny

from pipeline import ensemble
from pipeline.tracking import promotion
from pipeline.training.splits import scaled

# The expected values are computed here, from the Keras files the models carry, without the serving code.


def recognizer(uri):
    return mlflow.pyfunc.load_model(uri).unwrap_python_model()


def keras_networks(run_id):
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/model/artifacts"))
    return [keras.saving.load_model(path) for path in sorted(folder.glob("*.keras"))]


def at_temperature(probabilities, temperature):
    """Softmax(log p / T), written as p ** (1 / T) renormalized."""
    powered = np.asarray(probabilities, np.float64) ** (1 / temperature)
    return powered / powered.sum(axis=1, keepdims=True)


def moved(images, rows, columns):
    """Images moved by one pixel or none, black coming in: pad by one, then crop."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - rows : 29 - rows, 1 - columns : 29 - columns]


def newest_version(client):
    return max(client.search_model_versions("name = 'mnist'"), key=lambda version: int(version.version))


def test_ensemble_predicts_the_mean_of_its_members(two_tiny_runs, mnist, capsys):
    ensemble.main(["--runs", ",".join(two_tiny_runs)])
    assert "ensemble of 2: validation accuracy" in capsys.readouterr().out

    client = mlflow.MlflowClient()
    newest = newest_version(client)
    assert newest.tags["project_version"] == "ensemble" and newest.tags["runs"] == ",".join(two_tiny_runs)
    run = client.get_run(newest.run_id)
    assert run.data.params["pieces_from"] == "none"
    images = scaled(mnist.test_images[:50])
    mean = np.mean([network(images).numpy() for run_id in two_tiny_runs for network in keras_networks(run_id)], axis=0)
    # The ensemble is calibrated as a whole: its own temperature, logged by its run, over the mean.
    expected = at_temperature(mean, run.data.metrics["temperature"])
    np.testing.assert_allclose(
        recognizer(f"models:/mnist/{newest.version}").probabilities(images), expected, rtol=1e-4, atol=1e-6
    )

    assert run.data.tags["validation_set"] == client.get_run(two_tiny_runs[0]).data.tags["validation_set"]
    assert {"val_accuracy", "test_accuracy", "member_test_accuracy"} <= set(run.data.metrics)
    member_accuracies = [point.value for point in client.get_metric_history(run.info.run_id, "member_test_accuracy")]
    expected = [client.get_run(run_id).data.metrics["test_accuracy"] for run_id in two_tiny_runs]
    np.testing.assert_allclose(member_accuracies, expected, rtol=1e-6)
    # promote considers it like any other version
    assert int(newest.version) in {candidate.version for candidate in promotion.candidates(client, "mnist")}


def test_final_fits_on_every_image_ensemble_without_validation_figures(tracking, mnist, capsys):
    client = mlflow.MlflowClient()
    runs = [train_tiny(seed=seed, validation=0) for seed in (0, 1)]
    for run_id in runs:
        run = client.get_run(run_id)
        assert run.data.tags["validation_set"].endswith(":last=0")
        assert "test_accuracy" in run.data.metrics and not any(key.startswith("val_") for key in run.data.metrics)
        assert recognizer(f"runs:/{run_id}/model").temperature == 1.0  # nothing held out to calibrate on
    ensemble.main(["--runs", ",".join(runs)])
    assert "ensemble of 2: test accuracy" in capsys.readouterr().out
    metrics = client.get_run(newest_version(client).run_id).data.metrics
    assert "test_accuracy" in metrics and "val_accuracy" not in metrics
    [candidate] = [c for c in promotion.candidates(client, "mnist") if c.project_version == "ensemble"]
    assert candidate.val_accuracy is None  # so `promote` never chooses it by itself


def test_the_test_loss_is_that_of_the_calibrated_model(two_tiny_runs, mnist):
    ensemble.main(["--runs", ",".join(two_tiny_runs)])
    client = mlflow.MlflowClient()
    run = client.get_run(newest_version(client).run_id)
    images, labels = scaled(mnist.test_images[:600]), mnist.test_labels[:600]  # train_tiny's test images
    mean = np.mean([network(images).numpy() for run_id in two_tiny_runs for network in keras_networks(run_id)], axis=0)
    calibrated = at_temperature(mean, run.data.metrics["temperature"])
    expected = -np.mean(np.log(calibrated[np.arange(len(labels)), labels]))
    assert run.data.metrics["test_loss"] == pytest.approx(expected, rel=1e-3)


def test_an_ensemble_reads_numbers_with_the_piece_network_and_sequence_reader_of_a_member(tracking, mnist):
    runs = [train_tiny(seed=0), train_tiny(seed=1, pieces=0.1, sequence_reader=0.1)]  # only the second has them
    ensemble.main(["--runs", ",".join(runs)])
    client = mlflow.MlflowClient()
    newest = newest_version(client)
    params = client.get_run(newest.run_id).data.params
    assert params["pieces_from"] == runs[1] and params["sequence_reader_from"] == runs[1]
    assert recognizer(f"models:/mnist/{newest.version}").sequence_reader is not None
    member_file = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{runs[1]}/model/artifacts/pieces.keras")
    images = scaled(mnist.test_images[:20])
    np.testing.assert_allclose(
        recognizer(f"models:/mnist/{newest.version}").pieces.predict_on_batch(images),
        keras.saving.load_model(member_file)(images).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    ensemble.main(["--runs", ",".join(reversed(runs))])
    assert client.get_run(newest_version(client).run_id).data.params["pieces_from"] == runs[1]


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

    ensemble.main(["--runs", ",".join(two_tiny_runs), "--tta", "true"])
    client = mlflow.MlflowClient()
    newest = newest_version(client)
    run = client.get_run(newest.run_id)
    images = scaled(mnist.test_images[:20])
    # The image itself and its one-pixel moves up, down, left and right.
    views = [moved(images, rows, columns) for rows, columns in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
    networks = [network for run_id in two_tiny_runs for network in keras_networks(run_id)]
    mean = np.mean([network(view).numpy() for network in networks for view in views], axis=0)
    np.testing.assert_allclose(
        recognizer(f"models:/mnist/{newest.version}").probabilities(images),
        at_temperature(mean, run.data.metrics["temperature"]),
        rtol=1e-4,
        atol=1e-6,
    )
    assert run.data.params["tta"] == "True"
