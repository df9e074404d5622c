"""Digits as people write them, drawn as pen strokes: the styles MNIST's writers rarely used.

MNIST's writers were American census employees and students with thin to
medium pens; people elsewhere write a 1 with a flag and a foot, a 7 with a bar,
a 4 closed, a 9 with a straight stem, and write with felt-tips and broad
markers. Each digit here has its common variants (`TEMPLATES`), each a few
strokes through control points in a box one unit high. A drawn digit is one
variant, its points moved a little, its proportions, slant and angle drawn at
random, traced as smooth curves (Catmull-Rom splines) by a pen (`PENS`) from a
fine nib to a broad marker whose stroke is up to a quarter of the digit's
height, with the pressure varying along the stroke.

Pens come in two families: `TRAINING_PENS`, round pens that training draws
with, and `HELD_OUT_PENS` (chalk, a broad-edged calligraphy nib) that only the
evaluation sets use (`benchmarks/image_sets.py`), so that those sets measure
reading, not memory of the pens.

Everything comes from a seed. `sample` gives MNIST-format images (through
`pipeline.serving.images`, as served images are prepared) with their labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.serving import images

Stroke = Sequence[tuple[float, float]]  # control points (x, y), y downwards, the digit one unit high

TEMPLATES: dict[int, dict[str, list[Stroke]]] = {
    0: {
        "oval": [
            [(0.3, 0.0), (0.05, 0.2), (0.02, 0.6), (0.25, 1.0), (0.5, 0.85), (0.58, 0.4), (0.4, 0.02), (0.25, 0.05)]
        ],
        "slashed": [
            [(0.3, 0.0), (0.05, 0.2), (0.02, 0.6), (0.25, 1.0), (0.5, 0.85), (0.58, 0.4), (0.4, 0.02), (0.25, 0.05)],
            [(0.0, 0.95), (0.6, 0.05)],
        ],
        "round": [[(0.3, 0.0), (0.02, 0.3), (0.1, 0.9), (0.4, 0.98), (0.6, 0.6), (0.5, 0.1), (0.25, 0.02)]],
    },
    1: {
        "stick": [[(0.32, 0.0), (0.28, 1.0)]],
        "flag": [[(0.05, 0.3), (0.35, 0.0), (0.32, 1.0)]],
        "flag and foot": [[(0.05, 0.3), (0.35, 0.0), (0.32, 1.0)], [(0.05, 1.0), (0.6, 1.0)]],
    },
    2: {
        "plain": [[(0.05, 0.25), (0.3, 0.0), (0.55, 0.2), (0.45, 0.5), (0.02, 1.0), (0.62, 0.98)]],
        "looped": [
            [(0.05, 0.25), (0.3, 0.0), (0.55, 0.22), (0.4, 0.6), (0.05, 0.95), (0.2, 0.78), (0.3, 0.95), (0.62, 1.0)]
        ],
        "z-like": [[(0.02, 0.05), (0.55, 0.0), (0.02, 1.0), (0.6, 1.0)]],
    },
    3: {
        "round": [[(0.05, 0.12), (0.3, 0.0), (0.55, 0.2), (0.25, 0.47), (0.58, 0.72), (0.3, 1.0), (0.02, 0.85)]],
        "flat top": [[(0.02, 0.0), (0.55, 0.0), (0.25, 0.4), (0.58, 0.68), (0.35, 1.0), (0.02, 0.88)]],
    },
    4: {
        "open": [[(0.38, 0.0), (0.02, 0.65), (0.62, 0.65)], [(0.47, 0.3), (0.45, 1.0)]],
        "closed": [[(0.47, 1.0), (0.47, 0.0), (0.02, 0.68), (0.62, 0.68)]],
        "crossed": [[(0.3, 0.0), (0.05, 0.6), (0.62, 0.6)], [(0.5, 0.1), (0.42, 1.0)]],
        "looped": [[(0.38, 0.0), (0.04, 0.62), (0.6, 0.6), (0.5, 0.32), (0.47, 0.02), (0.44, 0.5), (0.43, 1.0)]],
    },
    5: {
        "bar apart": [
            [(0.12, 0.0), (0.06, 0.45), (0.35, 0.36), (0.6, 0.65), (0.35, 1.0), (0.02, 0.88)],
            [(0.12, 0.0), (0.58, 0.0)],
        ],
        "one stroke": [[(0.58, 0.0), (0.12, 0.0), (0.06, 0.45), (0.35, 0.36), (0.6, 0.65), (0.35, 1.0), (0.02, 0.88)]],
    },
    6: {
        "curved": [
            [(0.5, 0.03), (0.22, 0.15), (0.04, 0.6), (0.2, 0.98), (0.5, 0.9), (0.55, 0.62), (0.3, 0.5), (0.06, 0.68)]
        ],
        "straight": [[(0.45, 0.0), (0.08, 0.62), (0.22, 0.98), (0.52, 0.88), (0.5, 0.6), (0.25, 0.52), (0.1, 0.65)]],
    },
    7: {
        "plain": [[(0.02, 0.0), (0.62, 0.0), (0.22, 1.0)]],
        "barred": [[(0.02, 0.0), (0.62, 0.0), (0.22, 1.0)], [(0.15, 0.52), (0.55, 0.48)]],
        "hooked": [[(0.02, 0.18), (0.05, 0.0), (0.62, 0.02), (0.3, 1.0)]],
    },
    8: {
        "one stroke": [
            [
                (0.5, 0.12),
                (0.3, 0.0),
                (0.08, 0.16),
                (0.3, 0.45),
                (0.56, 0.75),
                (0.3, 1.0),
                (0.04, 0.75),
                (0.3, 0.45),
                (0.52, 0.2),
            ]
        ],
        "two loops": [
            [(0.3, 0.0), (0.06, 0.2), (0.3, 0.45), (0.52, 0.2), (0.3, 0.0)],
            [(0.3, 0.45), (0.03, 0.72), (0.3, 1.0), (0.58, 0.72), (0.3, 0.45)],
        ],
        "small top": [
            [
                (0.45, 0.08),
                (0.3, 0.0),
                (0.15, 0.12),
                (0.3, 0.36),
                (0.58, 0.68),
                (0.3, 1.0),
                (0.02, 0.7),
                (0.3, 0.36),
                (0.43, 0.16),
            ]
        ],
    },
    9: {
        "curved": [[(0.56, 0.22), (0.3, 0.0), (0.05, 0.2), (0.25, 0.46), (0.56, 0.28), (0.5, 0.7), (0.25, 1.0)]],
        "straight": [[(0.55, 0.2), (0.3, 0.0), (0.05, 0.2), (0.3, 0.45), (0.56, 0.3)], [(0.56, 0.04), (0.54, 1.0)]],
        "hooked": [[(0.56, 0.22), (0.3, 0.0), (0.05, 0.2), (0.25, 0.46), (0.56, 0.28), (0.56, 0.95), (0.35, 1.0)]],
    },
}

CANVAS = 112  # pixels a side; the digit is drawn about 80 high
HEIGHT = 80
DABS_AT_ONCE = 8  # a pen's dabs traced together (`traced`)


@dataclass(frozen=True)
class Pen:
    width: tuple[float, float]  # range of the stroke's width, in digit heights
    kind: str = "round"  # "round", "chalk" (grainy, broken) or "edged" (width depends on direction)


TRAINING_PENS = {
    "fine nib": Pen((0.02, 0.05)),
    "ballpoint": Pen((0.05, 0.09)),
    "felt-tip": Pen((0.09, 0.15)),
    "broad marker": Pen((0.15, 0.25)),
}
HELD_OUT_PENS = {
    "chalk": Pen((0.06, 0.16), "chalk"),
    "calligraphy pen": Pen((0.08, 0.18), "edged"),
}


def spline(points: np.ndarray, spacing: float, steps: int = 24) -> np.ndarray:
    """A Catmull-Rom curve through the points (ends repeated), its samples at most `spacing` apart."""
    if len(points) < 2:
        return points
    padded = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]
    curve = []
    for index in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[index - 1 : index + 3]
        curve.append(
            0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3)
        )
    curve = np.concatenate([*curve, points[-1:]])
    # Each step cut into enough pieces that a fine pen's dabs overlap into one stroke.
    gaps = np.hypot(*np.diff(curve, axis=0).T)
    pieces = np.maximum(1, np.ceil(gaps / spacing)).astype(int)
    fractions = np.concatenate([np.arange(count) / count for count in pieces])[:, None]
    return np.concatenate(
        [
            np.repeat(curve[:-1], pieces, axis=0) + np.repeat(np.diff(curve, axis=0), pieces, axis=0) * fractions,
            curve[-1:],
        ]
    )


def draw(digit: int, variant: str, pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """One digit as a (CANVAS, CANVAS) float32 ink map in [0, 1], white on black."""
    slant = rng.uniform(-0.3, 0.3)  # x moved per unit of height, upwards
    width = rng.uniform(0.75, 1.35)
    angle = np.radians(rng.uniform(-8, 8))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    jitter = rng.uniform(0.015, 0.045)
    stroke_width = rng.uniform(*pen.width) * HEIGHT
    nib = rng.uniform(0, np.pi)  # the edged pen's angle
    rows, columns = np.mgrid[0:CANVAS, 0:CANVAS]
    ink = np.zeros((CANVAS, CANVAS), np.float32)
    for stroke in TEMPLATES[digit][variant]:
        points = np.array(stroke, np.float64) + rng.normal(0, jitter, (len(stroke), 2))
        points[:, 0] = (points[:, 0] - 0.3) * width + slant * (0.5 - points[:, 1])
        points[:, 1] -= 0.5
        path = spline(points @ rotation.T, spacing=max(0.5, stroke_width / 4) / HEIGHT) * HEIGHT + CANVAS / 2
        pressure = 1 + 0.25 * np.sin(np.linspace(0, np.pi * rng.uniform(1, 3), len(path)) + rng.uniform(0, np.pi))
        radii = np.maximum(stroke_width / 2 * pressure, 0.6)
        if pen.kind == "edged":
            heading = np.arctan2(*np.gradient(path, axis=0).T[::-1])
            radii = radii * (0.25 + 0.75 * np.abs(np.sin(heading - nib)))
        ink = np.maximum(ink, traced(path, radii, rows, columns))
    if pen.kind == "chalk":
        grain = rng.uniform(0, 1, ink.shape) ** 0.5  # chalk leaves gaps where the board's grain is low
        ink = ink * np.where(grain < rng.uniform(0.15, 0.35), 0.15, grain)
    return ink


def traced(path: np.ndarray, radii: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The ink a round pen of varying radius leaves along `path` (x, y): 1 inside, a one-pixel soft edge.

    The dabs are traced `DABS_AT_ONCE` at a time on the rectangle that holds them: a dab inks nothing
    further than a pixel past its radius, so what it gives the rest of the rectangle is cut to 0."""
    ink = np.zeros(rows.shape, np.float32)
    for start in range(0, len(path), DABS_AT_ONCE):
        (x, y), radius = path[start : start + DABS_AT_ONCE].T, radii[start : start + DABS_AT_ONCE]
        top, bottom = max(0, int((y - radius).min() - 1)), min(rows.shape[0], int((y + radius).max() + 2))
        left, right = max(0, int((x - radius).min() - 1)), min(rows.shape[1], int((x + radius).max() + 2))
        if top >= bottom or left >= right:
            continue
        x, y, radius = x[:, None, None], y[:, None, None], radius[:, None, None]
        distance = np.hypot(rows[top:bottom, left:right] - y, columns[top:bottom, left:right] - x)
        dabs = np.clip(radius + 0.5 - distance, 0, 1).max(axis=0)
        ink[top:bottom, left:right] = np.maximum(ink[top:bottom, left:right], dabs)
    return ink


def sample(count: int, seed: int, pens: dict[str, Pen] = TRAINING_PENS) -> tuple[np.ndarray, np.ndarray]:
    """`count` MNIST-format drawn digits (count, 28, 28) float32, and their labels: each digit, variant, pen in turn."""
    rng = np.random.default_rng(seed)
    styles = [(digit, variant) for digit in TEMPLATES for variant in TEMPLATES[digit]]
    pen_list = list(pens.values())
    made, labels = [], []
    for index in range(count):
        digit, variant = styles[index % len(styles)]
        ink = draw(digit, variant, pen_list[(index // len(styles)) % len(pen_list)], rng)
        made.append(images.digit_from(images.Ink(ink, 1.0, False), ink).image)
        labels.append(digit)
    return np.stack(made), np.array(labels, np.uint8)
