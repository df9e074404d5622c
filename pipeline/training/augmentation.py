"""Random variations of whole batches of digits, drawn from a seed, as TensorFlow ops.

Each image gets its own random affine map (rotation, scale, width, shear,
translation about the centre, one bilinear resampling), optionally an elastic
distortion (Simard et al., 2003: a random displacement field smoothed by a
Gaussian, which bends strokes the way hands do), and its own stroke-thickness
change (a blend towards a 3x3 dilation or erosion, which keeps the grey
anti-aliased edges). These are the ways handwriting varies that leave the
digit's label as it is; flips and large rotations, which turn a 6 into a 9,
are not among them.

The same seed gives the same output, and a zero strength is the identity.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

CENTRE = 13.5  # of a 28x28 image, in pixel coordinates
ELASTIC_SIGMA = 4.0  # pixels: the smoothness of the elastic displacement field


@dataclass(frozen=True)
class Augmentation:
    """Strengths: each variation is drawn uniformly in [-strength, +strength] (thickness: [-thinning, +thickness])."""

    rotation: float = 0.0  # degrees
    scale: float = 0.0  # relative: 0.1 = from 90 % to 110 %
    stretch: float = 0.0  # relative, of the width alone: writers' digits are narrow or wide
    shear: float = 0.0  # horizontal shift per pixel of height
    translation: float = 0.0  # pixels, in x and in y
    thickness: float = 0.0  # 1 = all the way to a 3x3 dilation (+) or erosion (-)
    thinning: float | None = None  # the erosion's own strength, where it differs from thickness's
    elastic: float = 0.0  # the displacement field's scale (Simard's alpha; 34 is theirs for MNIST)

    def __bool__(self) -> bool:
        return any(asdict(self).values())

    def __str__(self) -> str:
        """The `augmentation` param `train` logs: what is not a default ("rotation=10,thickness=0.3"), or "none"."""
        values = ((field.name, getattr(self, field.name), field.default) for field in fields(self))
        return ",".join(f"{name}={value:g}" for name, value, default in values if value != default) or "none"


def augment(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    """Vary a batch of float32 images (N, 28, 28) in [0, 1]; `seed` is two integers."""
    import tensorflow as tf  # here, so that the settings above load without TensorFlow

    images = tf.convert_to_tensor(images, tf.float32)
    if not augmentation:
        return images
    affine_seed, thickness_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    images = random_affine(images, affine_seed, augmentation)
    if augmentation.elastic:
        images = random_elastic(images, tf.random.experimental.stateless_fold_in(seed, 3), augmentation.elastic)
    if augmentation.thickness or augmentation.thinning:
        images = random_thickness(images, thickness_seed, augmentation.thickness, augmentation.thinning)
    return images


def random_affine(images: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation) -> tf.Tensor:
    import tensorflow as tf

    count = tf.shape(images)[0]
    draws = tf.random.stateless_uniform([count, 5], seed, minval=-1.0, maxval=1.0)
    angle = draws[:, 0] * augmentation.rotation * math.pi / 180.0
    scale = 1.0 + draws[:, 1] * augmentation.scale
    shear = draws[:, 2] * augmentation.shear
    shift_x = draws[:, 3] * augmentation.translation
    shift_y = draws[:, 4] * augmentation.translation
    # Drawn apart, so that adding it leaves the other draws (and earlier runs) as they were.
    width = 1.0 + augmentation.stretch * tf.random.stateless_uniform(
        [count], tf.random.experimental.stateless_fold_in(seed, 5), minval=-1.0, maxval=1.0
    )
    # Forward map: out = centre + scale * rotation @ shear @ diag(width, 1) @ (in - centre) + shift,
    # with rotation @ shear = [[cos, cos*shear - sin], [sin, sin*shear + cos]] (determinant 1).
    cos, sin = tf.cos(angle), tf.sin(angle)
    a, b = scale * width * cos, scale * (cos * shear - sin)
    c, d = scale * width * sin, scale * (sin * shear + cos)
    # The op wants the inverse map, output pixel -> input pixel.
    determinant = a * d - b * c
    inverse_a, inverse_b = d / determinant, -b / determinant
    inverse_c, inverse_d = -c / determinant, a / determinant
    source_x = CENTRE + shift_x
    source_y = CENTRE + shift_y
    offset_x = CENTRE - (inverse_a * source_x + inverse_b * source_y)
    offset_y = CENTRE - (inverse_c * source_x + inverse_d * source_y)
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([inverse_a, inverse_b, offset_x, inverse_c, inverse_d, offset_y, zeros, zeros], axis=1)
    transformed = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[..., None],
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return transformed[..., 0]


def random_thickness(images: tf.Tensor, seed: tf.Tensor, strength: float, thinning: float | None = None) -> tf.Tensor:
    """Blend each image towards its 3x3 dilation or erosion, by an amount drawn in [-thinning, +strength]."""
    import tensorflow as tf

    thinning = strength if thinning is None else thinning
    amount = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1], seed, minval=-thinning, maxval=strength)
    channels = images[..., None]
    dilated = tf.nn.max_pool2d(channels, 3, 1, "SAME")[..., 0]
    eroded = -tf.nn.max_pool2d(-channels, 3, 1, "SAME")[..., 0]
    return images + tf.nn.relu(amount) * (dilated - images) + tf.nn.relu(-amount) * (eroded - images)


def random_elastic(images: tf.Tensor, seed: tf.Tensor, alpha: float) -> tf.Tensor:
    """Move each pixel by a smooth random field (uniform noise, Gaussian-blurred, times `alpha`), bilinearly."""
    import tensorflow as tf

    count, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    field = tf.random.stateless_uniform([count, height, width, 2], seed, minval=-1.0, maxval=1.0)
    radius = int(2 * ELASTIC_SIGMA)
    taps = tf.exp(-tf.square(tf.range(-radius, radius + 1, dtype=tf.float32)) / (2 * ELASTIC_SIGMA**2))
    taps /= tf.reduce_sum(taps)
    across = tf.tile(tf.reshape(taps, [1, -1, 1, 1]), [1, 1, 2, 1])  # separable: along x, then along y
    down = tf.tile(tf.reshape(taps, [-1, 1, 1, 1]), [1, 1, 2, 1])
    field = tf.nn.depthwise_conv2d(field, across, [1, 1, 1, 1], "SAME")
    field = alpha * tf.nn.depthwise_conv2d(field, down, [1, 1, 1, 1], "SAME")
    rows, columns = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    return bilinear(images, rows + field[..., 0], columns + field[..., 1])


def bilinear(images: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
    """images (N, H, W) sampled at real-valued (rows, columns) (N, H, W); black outside the image."""
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    flat = tf.reshape(images, [tf.shape(images)[0], -1])
    top, left = tf.floor(rows), tf.floor(columns)
    result = tf.zeros_like(rows)
    for row_step, column_step in ((0, 0), (0, 1), (1, 0), (1, 1)):
        row, column = top + row_step, left + column_step
        weight = (1 - tf.abs(rows - row)) * (1 - tf.abs(columns - column))
        inside = (
            (row >= 0) & (row < tf.cast(height, tf.float32)) & (column >= 0) & (column < tf.cast(width, tf.float32))
        )
        index = tf.cast(tf.clip_by_value(row, 0, tf.cast(height - 1, tf.float32)), tf.int32) * width + tf.cast(
            tf.clip_by_value(column, 0, tf.cast(width - 1, tf.float32)), tf.int32
        )
        values = tf.reshape(tf.gather(flat, tf.reshape(index, [tf.shape(flat)[0], -1]), batch_dims=1), tf.shape(rows))
        result += tf.where(inside, weight * values, 0.0)
    return result
