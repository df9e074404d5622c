"""Batch normalization that trains through TensorFlow's fused kernel, and networks saved with Keras' own.

Keras 3's `BatchNormalization` computes a batch's mean and variance, the
normalization and their gradients as separate element-wise ops, in float32
even under mixed precision. `FusedBatchNormalization` is that layer with its
training step done by one kernel (`FusedBatchNormV3`), which keeps its
statistics in float32: the same arithmetic, and on 2 cores half the time of an
epoch of version 6's classifier (16-17 s instead of 34-35 s; BENCHMARKS.md,
"Batch normalization in one fused kernel"). Inference, weights, config and the
moving statistics' update are Keras' own.

The networks a run saves and serves hold no layer of this project's:
`as_keras` copies a trained network into Keras' `BatchNormalization`, weight
for weight, and `pipeline.training.loop.fit` returns that copy.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch normalization; over the channels of images, training runs the fused kernel."""

    def call(self, inputs: tf.Tensor, training: bool | None = None, mask: tf.Tensor | None = None) -> tf.Tensor:
        fusable = len(inputs.shape) == 4 and self.axis in (-1, 3) and self.center and self.scale
        if not (training and self.trainable and fusable and mask is None and not self.renorm):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma,
            self.beta,
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel returns the unbiased variance (n - 1 in the denominator); Keras averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
        variance *= (count - 1) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def as_keras(model: keras.Model) -> keras.Model:
    """`model` with each `FusedBatchNormalization` replaced by Keras' `BatchNormalization`, weights copied.

    A model without one is returned as it is.
    """
    if not any(isinstance(layer, FusedBatchNormalization) for layer in model.layers):
        return model

    def plain(layer: keras.layers.Layer) -> keras.layers.Layer:
        kind = keras.layers.BatchNormalization if isinstance(layer, FusedBatchNormalization) else type(layer)
        return kind.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=plain)
    copy.set_weights(model.get_weights())
    return copy
