"""The registry of model versions: each number maps to its network, its training defaults
and, for the seed's three, the figures the seed's report published.

Every model takes a batch of 28x28 float32 images in [0, 1] (pixels / 255) and
returns the ten class probabilities. The seed fed its convolutional versions
(28, 28, 1) tensors; here they start with a `Reshape` to that shape instead, so
that every version, and so every registered model, accepts the same input. The
reshape adds no parameters; the layers after it are the seed's, one for one.

Each version also declares its search space: a function of an Optuna trial that
returns the builder's keyword arguments, plus `learning_rate` and `batch_size`
where the search should vary those too (`pipeline.search` uses it).

Adding a version is adding one `Version` to `VERSIONS`.
"""

from dataclasses import dataclass
from typing import Callable, Optional

IMAGE_SHAPE = (28, 28)
CLASSES = 10


@dataclass(frozen=True)
class Published:
    """What the seed's report measured on its laptop (Keras 2.2, TF 1.12, i7-6700HQ CPU)."""

    train_accuracy: float
    test_accuracy: float
    train_seconds: float


@dataclass(frozen=True)
class Version:
    number: int
    name: str
    description: str
    build: Callable  # keyword arguments (the architecture) -> uncompiled keras.Model
    epochs: int
    batch_size: int
    learning_rate: float  # Adam's
    loss: str  # the seed's Keras loss; "categorical_..." means one-hot labels
    search_space: Callable  # optuna.Trial -> {builder argument or training setting: value}
    published: Optional[Published] = None


def learning_rate_space(trial):
    return trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True)


def mlp_space(trial):
    return {
        "units": trial.suggest_int("units", 32, 1024, log=True),
        "learning_rate": learning_rate_space(trial),
    }


def one_conv_space(trial):
    return {
        "filters": trial.suggest_int("filters", 16, 96, step=16),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": learning_rate_space(trial),
    }


def two_conv_space(trial):
    return {
        "filters1": trial.suggest_int("filters1", 16, 64, step=16),
        "filters2": trial.suggest_int("filters2", 32, 128, step=32),
        "dropout1": trial.suggest_float("dropout1", 0.0, 0.5),
        "units1": trial.suggest_int("units1", 64, 512, log=True),
        "units2": trial.suggest_int("units2", 32, 256, log=True),
        "dropout2": trial.suggest_float("dropout2", 0.0, 0.6),
        "learning_rate": learning_rate_space(trial),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
    }


def build_mlp(units=128):
    from keras import Input, Sequential, layers

    return Sequential([
        Input(IMAGE_SHAPE),
        layers.Flatten(),
        layers.Dense(units, activation="relu"),
        layers.Dense(CLASSES, activation="softmax"),
    ], name="mlp")


def build_one_conv(filters=32, dropout=0.25):
    from keras import Input, Sequential, layers

    return Sequential([
        Input(IMAGE_SHAPE),
        layers.Reshape(IMAGE_SHAPE + (1,)),
        layers.Conv2D(filters, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(dropout),
        layers.Flatten(),
        layers.Dense(CLASSES, activation="softmax"),
    ], name="one_conv")


def build_two_conv(filters1=32, filters2=64, dropout1=0.2, units1=248, units2=124, dropout2=0.4):
    from keras import Input, Sequential, layers

    return Sequential([
        Input(IMAGE_SHAPE),
        layers.Reshape(IMAGE_SHAPE + (1,)),
        layers.Conv2D(filters1, (4, 4), activation="relu"),
        layers.Conv2D(filters2, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(dropout1),
        layers.Flatten(),
        layers.Dense(units1, activation="relu"),
        layers.Dense(units2, activation="relu"),
        layers.Dropout(dropout2),
        layers.Dense(CLASSES, activation="softmax"),
    ], name="two_conv")


VERSIONS = {
    version.number: version
    for version in (
        Version(
            1, "mlp", "Flatten -> Dense 128 ReLU -> Dense 10 softmax",
            build_mlp, epochs=15, batch_size=128, learning_rate=0.001,
            loss="sparse_categorical_crossentropy", search_space=mlp_space,
            published=Published(train_accuracy=0.9980, test_accuracy=0.9762, train_seconds=22.6),
        ),
        Version(
            2, "one-conv", "Conv 32 3x3 -> MaxPool -> Dropout 0.25 -> Dense 10 softmax",
            build_one_conv, epochs=15, batch_size=128, learning_rate=0.001,
            loss="categorical_crossentropy", search_space=one_conv_space,
            published=Published(train_accuracy=0.9927, test_accuracy=0.9822, train_seconds=309.9),
        ),
        Version(
            3, "two-conv",
            "Conv 32 4x4 -> Conv 64 3x3 -> MaxPool -> Dropout 0.2 -> Dense 248 -> Dense 124 -> Dropout 0.4 -> Dense 10",
            build_two_conv, epochs=20, batch_size=128, learning_rate=0.001,
            loss="categorical_crossentropy", search_space=two_conv_space,
            published=Published(train_accuracy=0.9990, test_accuracy=0.9915, train_seconds=2686.2),
        ),
    )
}


def get(number):
    try:
        return VERSIONS[int(number)]
    except (KeyError, ValueError):
        raise ValueError(
            f"unknown version {number!r}; choose one of {', '.join(map(str, VERSIONS))}"
        ) from None
