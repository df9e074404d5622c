"""Temperature scaling: make a network's confidence mean what it says.

A network trained to 99 % accuracy with cross-entropy tends to be over- or
under-confident: of the answers it gives with 90 % probability, more or fewer
than 90 % are right. Temperature scaling (Guo et al., 2017) divides the logits
by one number T, fitted to minimize the negative log-likelihood on the
validation split (never the test set). The ranking of the classes, and so the
accuracy, does not change; the probabilities become honest, which is what a
rejection threshold needs.

The networks end in a softmax, so their logits are the log-probabilities (up to
a constant per image, which softmax ignores).
"""

from __future__ import annotations

import numpy as np

TEMPERATURE_RANGE = (0.05, 20.0)
BINS = 15


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax(log(p) / T) per row: the probabilities at temperature T."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = np.asarray(probabilities, np.float64)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1)).mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of `labels`."""
    from scipy.optimize import minimize_scalar

    # Searched on log T, where the likelihood is smooth and the range symmetric around 1.
    low, high = np.log(TEMPERATURE_RANGE)
    best = minimize_scalar(
        lambda log_t: negative_log_likelihood(scaled(probabilities, np.exp(log_t)), labels),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(best.x))


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The mean gap between confidence and accuracy over equal-width confidence bins, weighted by their size."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for number in range(bins):
        members = which == number
        if members.any():
            gap += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(gap)
