"""The served model's own way of calling its networks gives Keras's `predict` numbers, and keeps its limits."""

import base64

import keras
import numpy as np
import pandas as pd
import pytest

from pipeline.serving import model
from pipeline.training import versions
from pipeline.training.splits import scaled


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
    np.testing.assert_allclose(model.average_probabilities(networks[:count], images[:1], tta), expected[:1], atol=1e-6)


@pytest.fixture(scope="module")
def recognizer(networks):
    recognizer = model.DigitRecognizer()
    recognizer.networks, recognizer.tta, recognizer.temperature = networks[:1], False, 1.0
    return recognizer


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
