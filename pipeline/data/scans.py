"""Digits as a coarse scan shows them: averaged down to a few pixels a side and enlarged back.

A low-resolution scan, a thumbnail blown up or a photo taken from afar keeps
a digit's shape and loses its detail, and its edges come out as staircases
(enlarged by nearest neighbour) or soft ramps (bilinearly). Version 6 scans a
share of its drawn and printed digits (`pipeline.data.strokes`, `.typefaces`)
this way, once, as they are made; MNIST's own digits are left as they are,
since scanning those cost digits of its test set, whose writers training never
saw. The image sets' coarse scans (`benchmarks/image_sets.py`) are made by
`scan` at other sides and another size, so they stay a style training does not draw.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

COARSEST, FINEST = 10, 20  # pixels a side that a 28x28 image is averaged down to
STREAM = 77  # the scans' random stream, apart from the one that drew the digits


def coarse(images: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A copy of `images` (N, 28, 28) float32 in [0, 1] with about `share` of them scanned coarsely, each at
    its own side from COARSEST to FINEST pixels, blocky or smooth, half and half; the same from the same seed."""
    rng = np.random.default_rng([seed, STREAM])
    scanned = images.copy()
    for row in np.flatnonzero(rng.random(len(images)) < share):
        side = int(rng.integers(COARSEST, FINEST + 1))
        scanned[row] = scan(images[row], side, rng.random() < 0.5, images.shape[1])
    return scanned


def scan(image: np.ndarray, side: int, blocky: bool, size: int) -> np.ndarray:
    """One image in [0, 1] averaged down to `side` pixels a side, then enlarged to `size`, by nearest neighbour
    (`blocky`) or bilinearly."""
    small = Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).resize((side, side), Image.Resampling.BOX)
    enlarge = Image.Resampling.NEAREST if blocky else Image.Resampling.BILINEAR
    return np.asarray(small.resize((size, size), enlarge), np.float32) / 255.0
