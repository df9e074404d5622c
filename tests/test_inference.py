"""The served model's own way of calling its networks gives Keras's `predict` numbers, and keeps its limits."""

import base64
import concurrent.futures
import platform

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.serving import calibration, model, segmentation, sequence
from pipeline.tracking import logged_model
from pipeline.training import policy, sequence_reader, versions
from pipeline.training.loop import fit
from pipeline.training.settings import Settings
from pipeline.training.splits import scaled, split


@pytest.fixture(scope="module")
def networks():
    """Two different networks, untrained: any weights show whether two ways of calling them agree."""
    keras.utils.set_random_seed(0)
    return [versions.build_one_conv(), versions.build_mlp()]


def moved(images, rows, columns):
    """`images` shifted by whole pixels, black coming in: padded by one pixel all round, then cut."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return padded[:, 1 - rows : 29 - rows, 1 - columns : 29 - columns]


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("tta", [False, True])
def test_the_serving_call_gives_what_keras_predict_gives(networks, mnist, count, tta):
    images = scaled(mnist.test_images[:300])  # with the five views of TTA, more than one chunk
    views = [moved(images, *shift) for shift in model.TTA_SHIFTS] if tta else [images]
    expected = np.mean([net.predict(view, verbose=0) for net in networks[:count] for view in views], axis=0)
    found = model.average_probabilities(networks[:count], images, tta)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-6)
    # The served model calls them as one network compiled for TensorFlow Lite: the same numbers, in batches of
    # any size (300 images, 1,500 with TTA, are called 64 at a time).
    joined = model.Averaged(networks[:count])
    np.testing.assert_allclose(model.average_probabilities([joined], images, tta), expected, rtol=1e-4, atol=1e-6)
    for size in (1, 9, 45):
        found = model.average_probabilities([joined], images[:size], tta)
        np.testing.assert_allclose(found, expected[:size], rtol=1e-4, atol=1e-6)


def test_threads_calling_the_networks_at_once_get_what_calls_one_at_a_time_get(networks, mnist):
    """The scoring server calls from several threads: they take turns on the interpreter."""
    averaged = model.Averaged(networks)
    batches = [scaled(mnist.test_images[start : start + size]) for start, size in enumerate((1, 3, 1, 17, 64, 2) * 4)]
    expected = [averaged.predict_on_batch(batch) for batch in batches]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        found = list(pool.map(averaged.predict_on_batch, batches))
    for one, other in zip(found, expected, strict=True):
        np.testing.assert_array_equal(one, other)


class Recording:
    """A network that records the batch shapes it is called on; each output row is its own image's first pixels."""

    output_shape = (None, 3)

    def __init__(self):
        self.shapes = []

    def predict_on_batch(self, batch):
        self.shapes.append(batch.shape)
        return batch.reshape(len(batch), -1)[:, :3]


def test_a_network_is_called_a_chunk_at_a_time_and_answers_for_each_image():
    network, images = Recording(), np.random.default_rng(0).random((2500, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(model.probabilities_of(network, images), images[:, 0, :3])
    assert network.shapes == [(1024, 28, 28), (1024, 28, 28), (452, 28, 28)]
    assert model.probabilities_of(network, images[:0]).shape == (0, 3)


@pytest.fixture(scope="module")
def recognizer(networks):
    return model.DigitRecognizer().ready(networks[:1])


def test_too_many_images_in_one_request_are_refused_with_the_limit(recognizer):
    assert len(recognizer.predict(None, np.zeros((model.MAX_IMAGES, 28, 28), np.float32))) == model.MAX_IMAGES
    with pytest.raises(model.InputError, match=f"{model.MAX_IMAGES + 1} images is more than the limit of 256"):
        recognizer.predict(None, np.zeros((model.MAX_IMAGES + 1, 28, 28), np.float32))
    frame = pd.DataFrame({"image": ["iVBORw0KGgo="] * (model.MAX_IMAGES + 1)})
    with pytest.raises(model.InputError, match="more than the limit of 256 per request"):
        recognizer.predict(None, frame)


def test_too_many_bytes_of_images_are_refused_before_any_is_decoded(recognizer):
    half = base64.b64encode(b"\0" * (model.MAX_IMAGE_BYTES // 2 * 3 // 4)).decode()  # not images: never decoded
    with pytest.raises(model.InputError, match="more than the limit of 32,000,000 per request"):
        recognizer.predict(None, pd.DataFrame({"image": [half, half, "A"]}))


def test_requests_hand_back_the_memory_they_freed_at_most_once_a_second(recognizer, monkeypatch):
    assert model.malloc_trim is not None or platform.libc_ver()[0] != "glibc"
    trims = []
    monkeypatch.setattr(model, "malloc_trim", trims.append)
    monkeypatch.setattr(model, "TRIM_SECONDS", 0.0)
    recognizer.predict(None, np.zeros((1, 28, 28), np.float32))
    with pytest.raises(model.InputError, match="not valid base64"):
        recognizer.predict(None, pd.DataFrame({"image": ["not base64!"]}))
    assert trims == [0, 0]  # answered or refused
    monkeypatch.setattr(model, "TRIM_SECONDS", 3600.0)
    recognizer.predict(None, np.zeros((1, 28, 28), np.float32))
    assert trims == [0, 0]


@pytest.mark.parametrize("tta", [False, True])
def test_candidates_are_judged_by_the_classifiers_and_the_piece_network_in_one_call(networks, mnist, tta):
    """A number's candidates: the calibrated classifiers' probabilities joined with the piece network's
    (`segmentation.judged`), its probabilities too averaged over TTA's moved copies; the numbers of Keras's
    `predict`, from one compiled function."""
    keras.utils.set_random_seed(1)
    judge = model.DigitRecognizer().ready(networks, pieces=versions.build_mlp(), tta=tta, temperature=1.5)
    images = scaled(mnist.test_images[:50])
    views = [moved(images, *shift) for shift in model.TTA_SHIFTS] if tta else [images]
    classes = np.mean([net.predict(view, verbose=0) for net in networks for view in views], axis=0)
    pieces = np.mean([judge.pieces.predict(view, verbose=0) for view in views], axis=0)
    expected = segmentation.judged(calibration.scaled(classes, 1.5), pieces)
    np.testing.assert_allclose(judge.candidate_rows(images), expected, rtol=1e-4, atol=1e-6)
    judge.pieces = None  # without a piece network, candidates are read as digits are
    np.testing.assert_allclose(judge.candidate_rows(images), judge.probabilities(images))


def test_networks_trained_in_bfloat16_are_served_in_float32(tracking, mnist):
    """Training computes in bfloat16 on processors with bfloat16 instructions; the interpreter has no such kernels."""
    settings = Settings.for_version(4, subset=3000, validation=500, epochs=1, precision="mixed_bfloat16")
    classifier, _ = fit(settings, split(mnist, 500, 3000), verbose=0)
    reader = policy.built(sequence_reader.build, "mixed_bfloat16")
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in classifier.layers}
    images = scaled(mnist.test_images[:200])
    lines = np.random.default_rng(0).random((2, sequence.HEIGHT, 4 * sequence.FRAME_COLUMNS), dtype=np.float32)
    with mlflow.start_run():
        info = logged_model.log_model([classifier], images[:2], sequence_reader=reader)
    served = mlflow.pyfunc.load_model(info.model_uri).unwrap_python_model()

    in_bfloat16 = classifier.predict(images, verbose=0)
    np.testing.assert_allclose(served.probabilities(images), in_bfloat16, atol=0.02)
    assert (served.probabilities(images).argmax(axis=1) == in_bfloat16.argmax(axis=1)).mean() >= 0.99
    np.testing.assert_allclose(served.line_logits(lines), reader.predict(lines, verbose=0), atol=0.02)
    float32 = model.in_float32(classifier)
    assert {layer.dtype_policy.name for layer in float32.layers} == {"float32"}
    assert model.in_float32(float32) is float32
