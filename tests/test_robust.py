"""Version 6: a "not a digit" class trained on non-digits, and what it answers for them."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import mlflow
import numpy as np
import pytest

from pipeline.data import negatives
from pipeline.tracking.run import log_rejection, train_tracked, unseen_non_digits
from pipeline.training import versions
from pipeline.training.settings import Settings, SettingsError
from pipeline.training.splits import scaled, split


def test_negatives_are_repeatable_mnist_format_and_not_thin(fashion):
    first = negatives.sample(40, seed=3, clothing=fashion.train_images[:100])
    again = negatives.sample(40, seed=3, clothing=fashion.train_images[:100])
    assert first.shape == (40, 28, 28) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, negatives.sample(40, seed=4, clothing=fashion.train_images[:100]))
    assert 0 <= first.min() and first.max() <= 1
    widths = [(image.max(axis=0) > 0.3).sum() for image in first]
    assert min(widths) >= negatives.NARROWEST


@pytest.mark.parametrize("kind", sorted(negatives.DRAWERS))
def test_every_kind_of_drawn_negative_reaches_the_network(kind):
    """Drawings the preprocessing refuses, or that come out as thin as a 1, are left out of training: a kind
    that mostly did would be trained on in name only."""
    rng = np.random.default_rng(0)
    kept = sum(negatives.prepared(negatives.DRAWERS[kind](rng)) is not None for _ in range(30))
    assert kept >= 27  # measured: 49 or 50 of 50 for each


def test_negatives_need_a_version_with_the_class():
    with pytest.raises(SettingsError, match="not a digit"):
        Settings.for_version(4, negatives=0.2)
    assert versions.get(6).classes == 11 and versions.get(5).classes == 10


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory, mnist, fashion):
    from conftest import use_store

    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(tmp_path_factory.mktemp("store"), monkeypatch)
        settings = Settings.for_version(6, epochs=2, subset=4000, validation=500, negatives=0.4)
        with mlflow.start_run() as run:
            outcome = train_tracked(settings, register=False)
        yield mlflow.get_run(run.info.run_id), outcome
    mlflow.set_tracking_uri(None)


def test_version_6_learns_to_say_not_a_digit(robust_run, fashion):
    run, outcome = robust_run
    assert [network.output_shape for network in outcome.networks] == [(None, 11)] * 2
    metrics = run.data.metrics
    # Held-out non-digits (other clothing, other seeds) are mostly rejected, digits mostly accepted.
    assert metrics["val_not_digits_rejected"] >= 0.7 and metrics["test_not_digits_rejected"] >= 0.7
    assert metrics["val_digits_accepted"] >= 0.8
    assert {"temperature", "val_ece", "val_ece_uncalibrated", "val_nll"} <= set(metrics)
    assert run.data.params["negatives"] == "0.4"
    confusion = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/evaluation/confusion_matrix.csv")
    assert "not a digit" in confusion.splitlines()[0]

    recognizer = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    clothing = scaled(fashion.test_images[:50])
    answers = recognizer.predict(clothing)
    assert sum(answer["rejected"] for answer in answers) >= 35
    assert all(len(answer["probabilities"]) == 10 for answer in answers)


def test_version_6_averages_two_members_and_is_validated_as_served(robust_run, mnist):
    """Each member logs its own epochs; the run's val_accuracy, which promotion compares, is the average's."""
    run, outcome = robust_run
    client = mlflow.MlflowClient()
    for member in (1, 2):
        history = client.get_metric_history(run.info.run_id, f"member_{member}/val_accuracy")
        assert [point.step for point in history] == [1, 2]
    assert [point.step for point in client.get_metric_history(run.info.run_id, "val_accuracy")] == [2]
    assert run.data.params["members"] == "2"
    first, second = outcome.networks
    assert not np.array_equal(first.get_weights()[0], second.get_weights()[0])
    validation = split(mnist, validation=500, subset=4000)
    mean = (first(validation.validation_images).numpy() + second(validation.validation_images).numpy()) / 2
    expected = float((mean.argmax(axis=1) == validation.validation_labels).mean())
    assert run.data.metrics["val_accuracy"] == pytest.approx(expected, abs=1 / 500)
    assert outcome.val_accuracy == run.data.metrics["val_accuracy"]
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id, "model/artifacts")}
    assert {"model/artifacts/keras_model_1.keras", "model/artifacts/keras_model_2.keras"} <= artifacts


def test_a_final_fit_measures_rejection_on_test_images_only(tracking, mnist, fashion):
    splits = split(mnist, validation=0, subset=300)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        unseen = unseen_non_digits(pool, splits, seed=0)
    assert list(unseen) == ["test"]  # made in the pool as they would be here: clothing from the test images
    np.testing.assert_array_equal(unseen["test"], negatives.sample(300, 2, fashion.test_images))
    with mlflow.start_run() as run:
        log_rejection([versions.get(6).build()], splits, unseen, temperature=1.0)
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    assert set(metrics) == {"test_digits_accepted", "test_not_digits_rejected"}
