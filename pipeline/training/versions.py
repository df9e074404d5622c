"""The registry of model versions: each number maps to its network, its training defaults
and, for the seed's three, the figures the seed's report published.

Every model takes a batch of 28x28 float32 images in [0, 1] (pixels / 255) and
returns the ten class probabilities. The seed fed its convolutional versions
(28, 28, 1) tensors; here they start with a `Reshape` to that shape instead, so
that every version, and so every registered model, accepts the same input. The
reshape adds no parameters; the layers after it are the seed's, one for one.

Each version also declares its search space: a function of an Optuna trial that
returns the builder's keyword arguments, plus `learning_rate` and `batch_size`
where the search should vary those too (`pipeline.tuning` uses it).

Versions 4, 5 and 6 are this project's own: 4 is tuned for the time it takes to
reach the seed's best accuracy, 5 for accuracy within a CPU budget, 6 for
people's images (stronger stroke and shape variations, and a "not a digit"
class). Their `recipe` sets
the training techniques (`pipeline.training.settings.Settings`) that versions 1-3, trained
as the seed trained them, leave off.

Adding a version is adding one `Version` to `VERSIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras
    import optuna

from pipeline.training import processor
from pipeline.training.augmentation import Augmentation

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
    published: Published | None = None
    recipe: dict = field(default_factory=dict)  # training settings other than the defaults
    # Trained with an 11th class, "not a digit", on `pipeline.data.negatives` besides MNIST.
    reject_class: bool = False

    @property
    def classes(self) -> int:
        return CLASSES + 1 if self.reject_class else CLASSES


def learning_rate_space(trial: optuna.Trial) -> float:
    return trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True)


def mlp_space(trial: optuna.Trial) -> dict:
    return {
        "units": trial.suggest_int("units", 32, 1024, log=True),
        "learning_rate": learning_rate_space(trial),
    }


def one_conv_space(trial: optuna.Trial) -> dict:
    return {
        "filters": trial.suggest_int("filters", 16, 96, step=16),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": learning_rate_space(trial),
    }


def keras_example_space(trial: optuna.Trial) -> dict:
    return {
        "filters1": trial.suggest_int("filters1", 16, 64, step=16),
        "filters2": trial.suggest_int("filters2", 32, 128, step=32),
        "dropout": trial.suggest_float("dropout", 0.0, 0.6),
        "learning_rate": learning_rate_space(trial),
    }


def two_conv_space(trial: optuna.Trial) -> dict:
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


def fast_space(trial: optuna.Trial) -> dict:
    return {
        "filters1": trial.suggest_int("filters1", 8, 32, step=8),
        "filters2": trial.suggest_int("filters2", 16, 64, step=16),
        "filters3": trial.suggest_int("filters3", 32, 128, step=32),
        "units": trial.suggest_int("units", 32, 256, log=True),
        "batch_norm": trial.suggest_categorical("batch_norm", [False, True]),
        "learning_rate": trial.suggest_float("learning_rate", 2e-3, 1e-2, log=True),
    }


def best_space(trial: optuna.Trial) -> dict:
    return {
        "filters1": trial.suggest_int("filters1", 16, 48, step=16),
        "filters2": trial.suggest_int("filters2", 32, 96, step=32),
        "filters3": trial.suggest_int("filters3", 64, 192, step=64),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "normalize_first": trial.suggest_categorical("normalize_first", [False, True]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 6e-3, log=True),
    }


def build_mlp(units: int = 128) -> keras.Model:
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(IMAGE_SHAPE),
            layers.Flatten(),
            layers.Dense(units, activation="relu"),
            layers.Dense(CLASSES, activation="softmax"),
        ],
        name="mlp",
    )


def build_one_conv(filters: int = 32, dropout: float = 0.25) -> keras.Model:
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(IMAGE_SHAPE),
            layers.Reshape(IMAGE_SHAPE + (1,)),
            layers.Conv2D(filters, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(dropout),
            layers.Flatten(),
            layers.Dense(CLASSES, activation="softmax"),
        ],
        name="one_conv",
    )


def build_two_conv(
    filters1: int = 32,
    filters2: int = 64,
    dropout1: float = 0.2,
    units1: int = 248,
    units2: int = 124,
    dropout2: float = 0.4,
) -> keras.Model:
    from keras import Input, Sequential, layers

    return Sequential(
        [
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
        ],
        name="two_conv",
    )


def build_keras_example(filters1: int = 32, filters2: int = 64, dropout: float = 0.5) -> keras.Model:
    """keras.io's "Simple MNIST convnet" example, the recipe most people start from."""
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(IMAGE_SHAPE),
            layers.Reshape(IMAGE_SHAPE + (1,)),
            layers.Conv2D(filters1, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(filters2, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(CLASSES, activation="softmax"),
        ],
        name="keras_example",
    )


def build_fast(
    filters1: int = 16, filters2: int = 32, filters3: int = 64, units: int = 128, batch_norm: bool = False
) -> keras.Model:
    """Three 3x3 convolutions, each halving the image, then one hidden layer.

    No batch normalization by default: on two CPU cores it cost more time per
    epoch than it gave back in two epochs (BENCHMARKS.md; measured before it
    trained in the fused kernel, `pipeline.training.normalization`).
    """
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(IMAGE_SHAPE),
            layers.Reshape(IMAGE_SHAPE + (1,)),
            *[
                layer
                for filters in (filters1, filters2, filters3)
                for layer in (*convolution(filters, batch_norm), layers.MaxPooling2D())
            ],
            layers.Flatten(),
            layers.Dense(units, activation="relu"),
            # Softmax in float32 also under mixed precision.
            layers.Dense(CLASSES, activation="softmax", dtype="float32"),
        ],
        name="fast",
    )


def build_best(
    filters1: int = 32, filters2: int = 64, filters3: int = 128, dropout: float = 0.1, normalize_first: bool = False
) -> keras.Model:
    """Three stages of a 3x3 convolution, each halving the image; batch normalization in the last two.

    On two cores, normalizing the first stage's 28x28 maps took 30 % of the
    time of an epoch, and a second convolution per stage doubles it: within a
    15-minute budget both cost more epochs than they give back (BENCHMARKS.md;
    measured before normalization trained in the fused kernel).
    """
    return staged_network(filters1, filters2, filters3, dropout, CLASSES, "best", normalize_first)


def build_robust(
    filters1: int = 32, filters2: int = 64, filters3: int = 128, dropout: float = 0.1, normalize_first: bool = True
) -> keras.Model:
    """Version 5's network, normalizing the first stage too, with an 11th output: "not a digit"."""
    return staged_network(filters1, filters2, filters3, dropout, CLASSES + 1, "robust", normalize_first)


def staged_network(
    filters1: int, filters2: int, filters3: int, dropout: float, classes: int, name: str, normalize_first: bool
) -> keras.Model:
    from keras import Input, Sequential, layers

    return Sequential(
        [
            Input(IMAGE_SHAPE),
            layers.Reshape(IMAGE_SHAPE + (1,)),
            *[
                layer
                for filters, normalize in ((filters1, normalize_first), (filters2, True), (filters3, True))
                for layer in (*convolution(filters, normalize), layers.MaxPooling2D(), layers.Dropout(dropout))
            ],
            layers.Flatten(),
            layers.Dense(classes, activation="softmax", dtype="float32"),
        ],
        name=name,
    )


def convolution(filters: int, normalize: bool) -> list:
    """A 3x3 convolution keeping the image size, then ReLU; with `normalize`, batch normalization between
    (Keras' own, trained through the fused kernel: `pipeline.training.normalization`)."""
    from keras import layers

    from pipeline.training.normalization import FusedBatchNormalization

    if not normalize:
        return [layers.Conv2D(filters, 3, padding="same", activation="relu")]
    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        FusedBatchNormalization(momentum=0.9),
        layers.ReLU(),
    ]


# Measured on two CPU cores (see BENCHMARKS.md): bfloat16 compute is faster where the CPU has
# bfloat16 instructions and far slower where it has not (`processor`), and 50 steps per call
# into TensorFlow save about 15 % of a small network's time.
FAST_CPU = {"precision": processor.fast_precision(processor.flags()), "steps_per_execution": 50}

VERSIONS = {
    version.number: version
    for version in (
        Version(
            0,
            "keras-example",
            "keras.io's convnet example: Conv 32 -> Pool -> Conv 64 -> Pool -> Dropout 0.5 -> Dense 10, for comparison",
            build_keras_example,
            epochs=15,
            batch_size=128,
            learning_rate=0.001,
            loss="categorical_crossentropy",
            search_space=keras_example_space,
        ),
        Version(
            1,
            "mlp",
            "Flatten -> Dense 128 ReLU -> Dense 10 softmax",
            build_mlp,
            epochs=15,
            batch_size=128,
            learning_rate=0.001,
            loss="sparse_categorical_crossentropy",
            search_space=mlp_space,
            published=Published(train_accuracy=0.9980, test_accuracy=0.9762, train_seconds=22.6),
        ),
        Version(
            2,
            "one-conv",
            "Conv 32 3x3 -> MaxPool -> Dropout 0.25 -> Dense 10 softmax",
            build_one_conv,
            epochs=15,
            batch_size=128,
            learning_rate=0.001,
            loss="categorical_crossentropy",
            search_space=one_conv_space,
            published=Published(train_accuracy=0.9927, test_accuracy=0.9822, train_seconds=309.9),
        ),
        Version(
            3,
            "two-conv",
            "Conv 32 4x4 -> Conv 64 3x3 -> MaxPool -> Dropout 0.2 -> Dense 248 -> Dense 124 -> Dropout 0.4 -> Dense 10",
            build_two_conv,
            epochs=20,
            batch_size=128,
            learning_rate=0.001,
            loss="categorical_crossentropy",
            search_space=two_conv_space,
            published=Published(train_accuracy=0.9990, test_accuracy=0.9915, train_seconds=2686.2),
        ),
        Version(
            4,
            "fast",
            "Conv 16 -> Pool -> Conv 32 -> Pool -> Conv 64 -> Pool -> Dense 128 -> Dense 10; 2 epochs, warmup + cosine",
            build_fast,
            epochs=2,
            batch_size=128,
            learning_rate=0.006,
            loss="categorical_crossentropy",
            search_space=fast_space,
            recipe={"schedule": "warmup_cosine", "warmup": 0.05, "label_smoothing": 0.1, **FAST_CPU},
        ),
        Version(
            5,
            "best",
            "Conv-ReLU, then 2 x Conv-BN-ReLU, each -> Pool -> Dropout 0.1; 32/64/128 filters -> Dense 10; "
            "augmented, warmup + cosine",
            build_best,
            epochs=34,
            batch_size=128,
            learning_rate=0.003,
            loss="categorical_crossentropy",
            search_space=best_space,
            recipe={
                "schedule": "warmup_cosine",
                "warmup": 0.1,
                "label_smoothing": 0.1,
                **FAST_CPU,
                "augmentation": Augmentation(rotation=10, scale=0.1, shear=0.15, translation=2.5, thickness=0.3),
            },
        ),
        Version(
            6,
            "robust",
            "3 x (Conv-BN-ReLU -> Pool -> Dropout 0.1), 32/64/128 filters, with 11 outputs "
            '(digits and "not a digit"), trained on non-digits too; '
            "stronger stroke and shape variations, for people's images; two of them, averaged",
            build_robust,
            epochs=20,
            batch_size=128,
            learning_rate=0.003,
            loss="categorical_crossentropy",
            search_space=best_space,
            reject_class=True,
            recipe={
                "schedule": "warmup_cosine",
                "warmup": 0.1,
                "label_smoothing": 0.1,
                **FAST_CPU,
                "augmentation": Augmentation(
                    rotation=12, scale=0.15, shear=0.2, translation=2.0, thickness=1.0, thinning=0.5
                ),
                "negatives": 15000 / 55000,  # 15,000 with all of MNIST's 55,000 training digits
                "written": 11000 / 55000,  # 11,000 drawn and printed digits (pipeline.data.strokes, .typefaces)
                "coarse": 0.5,  # half of them scanned coarsely (pipeline.data.scans)
                "pieces": 3000 / 55000,  # 3,000 composed numbers cut for the piece network (pipeline.training.pieces)
                "sequence_reader": 80000 / 55000,  # 80,000 composed numbers to read whole (.sequence_reader)
                "members": 2,  # two classifiers, averaged
            },
        ),
    )
}


def get(number: int | str) -> Version:
    try:
        return VERSIONS[int(number)]
    except (KeyError, ValueError):
        raise ValueError(f"unknown version {number!r}; choose one of {', '.join(map(str, VERSIONS))}") from None
