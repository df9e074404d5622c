"""Digits bent as hands bend them: an elastic distortion (Simard et al., 2003), once, as they are made."""

from __future__ import annotations

import numpy as np

SIGMA = 4.0  # pixels: the smoothness of the displacement field, Simard's for MNIST
STREAM = 78  # the bends' random stream, apart from the one that drew the digits


def bent(images: np.ndarray, alpha: float, seed: int) -> np.ndarray:
    """A copy of `images` (N, 28, 28) float32 in [0, 1], each moved by its own smooth random field of a strength
    drawn from 0 to `alpha` (Simard's scale); the same from the same seed."""
    from scipy import ndimage

    if not alpha:
        return images.copy()
    rng = np.random.default_rng([seed, STREAM])
    height, width = images.shape[1:]
    rows, columns = np.meshgrid(np.arange(height, dtype=np.float32), np.arange(width, dtype=np.float32), indexing="ij")
    moved = np.empty_like(images)
    for index, image in enumerate(images):
        field = ndimage.gaussian_filter(rng.uniform(-1, 1, (2, height, width)), (0, SIGMA, SIGMA), mode="constant")
        field *= rng.uniform(0, alpha)
        moved[index] = ndimage.map_coordinates(image, [rows + field[0], columns + field[1]], order=1, cval=0.0)
    return moved
