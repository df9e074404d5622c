import numpy as np
import pytest

from pipeline import versions

# The seed's networks, layer for layer (after the shared input Reshape), and their
# parameter counts as Keras reports them for the seed's own models:
#   v1: 784*128+128 + 128*10+10
#   v2: 3*3*32+32 + 13*13*32*10+10
#   v3: 4*4*32+32 + 3*3*32*64+64 + 11*11*64*248+248 + 248*124+124 + 124*10+10
SEED = {
    1: (["Flatten", "Dense", "Dense"], 101_770),
    2: (["Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense"], 54_410),
    3: (["Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense", "Dense", "Dropout", "Dense"], 1_971_926),
}


@pytest.mark.parametrize("number", sorted(SEED))
def test_architecture_is_the_seeds(number):
    layer_types, parameters = SEED[number]
    model = versions.get(number).build()
    names = [type(layer).__name__ for layer in model.layers if type(layer).__name__ != "Reshape"]
    assert names == layer_types
    assert model.count_params() == parameters
    assert model.input_shape == (None, 28, 28)
    assert model.output_shape == (None, 10)
    probabilities = model.predict(np.zeros((2, 28, 28), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_seed_settings_and_published_figures():
    assert [(v.epochs, v.batch_size, v.learning_rate) for v in versions.VERSIONS.values()] == [
        (15, 128, 0.001), (15, 128, 0.001), (20, 128, 0.001)]
    assert versions.get(1).loss == "sparse_categorical_crossentropy"
    assert versions.get(3).loss == "categorical_crossentropy"
    assert [v.published.test_accuracy for v in versions.VERSIONS.values()] == [0.9762, 0.9822, 0.9915]


def test_seed_layer_settings():
    model = versions.get(3).build()
    conv1, conv2 = (layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert conv1.kernel_size == (4, 4) and conv1.filters == 32
    assert conv2.kernel_size == (3, 3) and conv2.filters == 64
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.2, 0.4]


def test_unknown_version_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown version '9'; choose one of 1, 2, 3"):
        versions.get("9")
