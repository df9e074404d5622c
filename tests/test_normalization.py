import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline.training.loop import fit
from pipeline.training.normalization import FusedBatchNormalization, as_keras
from pipeline.training.settings import Settings
from pipeline.training.splits import split


def layer_pair(precision: str, channels: int = 5):
    """Keras' layer and the fused one, built alike, with the same non-trivial weights."""
    keras.mixed_precision.set_global_policy(precision)
    try:
        pair = keras.layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    random = np.random.default_rng(0)
    weights = [random.uniform(0.5, 2, channels), random.normal(size=channels), random.normal(size=channels)]
    weights.append(random.uniform(0.5, 2, channels))
    for layer in pair:
        layer.build((None, 6, 6, channels))
        layer.set_weights([w.astype(np.float32) for w in weights])  # gamma, beta, moving mean, moving variance
    return pair


def training_step(layer, images):
    """The layer's output, in training, and the gradients of a weighted sum of it."""
    images = tf.constant(images)
    weights = tf.constant(np.random.default_rng(1).normal(size=images.shape), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = layer(images, training=True)
        total = tf.reduce_sum(tf.cast(outputs, tf.float32) * weights)
    gradients = tape.gradient(total, [images, layer.gamma, layer.beta])
    return np.asarray(tf.cast(outputs, tf.float32)), [np.asarray(g) for g in gradients]


@pytest.mark.parametrize(("precision", "tolerance"), [("float32", 1e-4), ("mixed_bfloat16", 3e-2)])
def test_a_training_step_is_keras_batch_normalization(precision, tolerance):
    images = np.random.default_rng(2).normal(3.0, 2.0, (8, 6, 6, 5)).astype(np.float32)
    reference, fused = layer_pair(precision)
    _, _, start_mean, start_variance = reference.get_weights()
    expected_outputs, expected_gradients = training_step(reference, images)
    outputs, gradients = training_step(fused, images)
    assert outputs.dtype == expected_outputs.dtype
    np.testing.assert_allclose(outputs, expected_outputs, rtol=tolerance, atol=tolerance)
    for gradient, expected in zip(gradients, expected_gradients, strict=True):
        np.testing.assert_allclose(gradient, expected, rtol=tolerance, atol=tolerance * np.abs(expected).max())
    # The moving statistics move as Keras' do: towards the batch's mean and its biased variance.
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-5)
    seen = tf.cast(tf.cast(images, fused.compute_dtype), tf.float64)  # what the layer got: bfloat16 in mixed precision
    batch = np.asarray(seen).reshape(-1, 5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.9 * start_mean + 0.1 * batch.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 * start_variance + 0.1 * batch.var(0), rtol=1e-5)


def test_inference_is_keras_batch_normalization():
    images = np.random.default_rng(3).normal(size=(4, 6, 6, 5)).astype(np.float32)
    reference, fused = layer_pair("float32")
    np.testing.assert_array_equal(fused(images, training=False), reference(images, training=False))


def test_as_keras_gives_the_same_network_in_keras_layers(tmp_path):
    from pipeline.training import versions

    network = versions.get(6).build(filters1=4, filters2=4, filters3=4)
    images = np.random.default_rng(4).uniform(size=(16, 28, 28)).astype(np.float32)
    network(images, training=True)  # moves the moving statistics off their start
    copy = as_keras(network)
    kinds = {type(layer) for layer in copy.layers}
    assert keras.layers.BatchNormalization in kinds and FusedBatchNormalization not in kinds
    assert [layer.dtype_policy.name for layer in copy.layers] == [layer.dtype_policy.name for layer in network.layers]
    expected = network.predict_on_batch(images)
    np.testing.assert_array_equal(copy.predict_on_batch(images), expected)
    copy.save(tmp_path / "network.keras")
    loaded = keras.models.load_model(tmp_path / "network.keras")  # no custom objects needed
    np.testing.assert_array_equal(loaded.predict_on_batch(images), expected)


def test_a_network_without_fused_layers_is_returned_as_it_is():
    from pipeline.training import versions

    network = versions.get(4).build()
    assert as_keras(network) is network


def test_fit_returns_keras_layers_only(mnist):
    settings = Settings.for_version(5, epochs=1, subset=600, validation=100, batch_size=100)
    splits = split(mnist, 100, 600)
    network, history = fit(settings, splits, {"filters1": 4, "filters2": 4, "filters3": 4}, verbose=0)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in network.layers)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in network.layers) == 2
    accuracy = np.mean(network.predict_on_batch(splits.validation_images).argmax(1) == splits.validation_labels)
    assert accuracy == pytest.approx(history["val_accuracy"][-1], abs=1e-6)
