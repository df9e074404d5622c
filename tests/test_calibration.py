"""Temperature scaling: fitted on validation labels, it leaves the ranking alone and makes confidence honest."""

import numpy as np

from pipeline.serving import calibration


def overconfident(count=4000, temperature=3.0, seed=0):
    """Probabilities whose labels were drawn at `temperature`, reported as if at 1: over-confident."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, size=(count, 10))
    honest = calibration.scaled(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), temperature)
    labels = np.array([rng.choice(10, p=row / row.sum()) for row in honest.astype(np.float64)])
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), labels


def test_temperature_one_changes_nothing():
    probabilities, _ = overconfident(50)
    np.testing.assert_allclose(calibration.scaled(probabilities, 1.0), probabilities, rtol=1e-5, atol=1e-7)


def test_the_fitted_temperature_recovers_the_true_one_and_calibrates():
    probabilities, labels = overconfident()
    temperature = calibration.fit_temperature(probabilities, labels)
    assert 2.6 < temperature < 3.4
    calibrated = calibration.scaled(probabilities, temperature)
    assert (calibrated.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert calibration.negative_log_likelihood(calibrated, labels) < calibration.negative_log_likelihood(
        probabilities, labels
    )
    assert calibration.expected_calibration_error(calibrated, labels) < 0.03
    assert calibration.expected_calibration_error(probabilities, labels) > 0.1


def test_a_perfect_classifier_is_made_more_confident():
    labels = np.arange(100) % 10
    probabilities = np.full((100, 10), 0.05)
    probabilities[np.arange(100), labels] = 0.55
    assert calibration.fit_temperature(probabilities, labels) < 0.5
