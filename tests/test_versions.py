import numpy as np
import pytest

from pipeline.training import versions

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
    seeds = [versions.get(number) for number in SEED]
    assert [(v.epochs, v.batch_size, v.learning_rate, v.recipe) for v in seeds] == [
        (15, 128, 0.001, {}),
        (15, 128, 0.001, {}),
        (20, 128, 0.001, {}),
    ]
    assert versions.get(1).loss == "sparse_categorical_crossentropy"
    assert versions.get(3).loss == "categorical_crossentropy"
    assert [v.published.test_accuracy for v in seeds] == [0.9762, 0.9822, 0.9915]


def test_keras_example_is_keras_ios_convnet():
    # keras.io/examples/vision/mnist_convnet: 34,826 parameters, batch 128, 15 epochs, Adam
    example = versions.get(0)
    model = example.build()
    assert model.count_params() == 34_826
    assert (example.epochs, example.batch_size, example.learning_rate, example.recipe) == (15, 128, 0.001, {})
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.5]


@pytest.mark.parametrize("number", [4, 5])
def test_own_versions_take_the_shared_input_and_give_float32_probabilities(number):
    model = versions.get(number).build()
    assert model.input_shape == (None, 28, 28) and model.output_shape == (None, 10)
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    probabilities = model.predict(np.random.default_rng(0).random((3, 28, 28), np.float32), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_version_5_normalizes_all_but_the_first_stage_and_version_6_every_stage():
    def stages(model):
        import keras

        convolutions = [index for index, layer in enumerate(model.layers) if type(layer).__name__ == "Conv2D"]
        return [isinstance(model.layers[index + 1], keras.layers.BatchNormalization) for index in convolutions]

    best = versions.build_best()
    assert stages(best) == [False, True, True]
    assert best.layers[1].activation.__name__ == "relu" and best.layers[1].use_bias
    assert stages(versions.build_robust()) == [True, True, True]
    assert stages(versions.build_best(normalize_first=True)) == [True, True, True]


@pytest.mark.parametrize("number", sorted(versions.VERSIONS))
def test_every_search_space_fits_its_builder(number):
    import optuna

    from pipeline.training.settings import resolved_architecture

    version = versions.get(number)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    space = version.search_space(trial)
    architecture = {key: value for key, value in space.items() if key not in ("learning_rate", "batch_size")}
    resolved_architecture(version, architecture)  # raises on a name the builder does not take


def test_seed_layer_settings():
    model = versions.get(3).build()
    conv1, conv2 = (layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert conv1.kernel_size == (4, 4) and conv1.filters == 32
    assert conv2.kernel_size == (3, 3) and conv2.filters == 64
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.2, 0.4]


def test_unknown_version_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown version '9'; choose one of 0, 1, 2, 3, 4, 5"):
        versions.get("9")
