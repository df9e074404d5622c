"""The one training code path: `train`, the search, the benchmarks and the tests all fit through `fit`.

The whole dataset is held in memory (60,000 x 28 x 28 floats is 188 MB). Without
augmentation Keras feeds those arrays itself; with it, `training_data` builds a
`tf.data` pipeline that shuffles, batches, varies each batch
(`pipeline.augmentation`) and prefetches, so the next batch is prepared while
this one trains.

The validation split is the last `validation` training images: the seed
validated on its own training set, which says nothing about unseen digits, so
here every choice made during training looks at this held-out split and the
test set only gives the final figures. Once the choices are made, `validation=0`
trains the same recipe on every training image: a final fit, with no validation
metrics, which `promote` therefore never chooses.
"""

import inspect
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
import mlflow
import numpy as np
import tensorflow as tf

from pipeline import versions
from pipeline.augmentation import Augmentation, augment

SCHEDULES = ("constant", "warmup_cosine")
PRECISIONS = ("float32", "mixed_bfloat16")


class SettingsError(ValueError):
    """Settings that cannot work: a validation split larger than the data, an unknown layer setting."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a training run computes."""

    version: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    validation: int = 5000  # images held out from the end of the training set; 0 = none, train on all
    subset: int = 0  # use only the first N training and N test images; 0 = all
    # The recipe: what versions 1-3 leave at these defaults, versions 4 and 5 set.
    schedule: str = "constant"  # or "warmup_cosine": linear from a tenth of learning_rate up to it, cosine down to 0
    warmup: float = 0.0  # the fraction of all steps spent warming up
    label_smoothing: float = 0.0
    ema: float = 0.0  # momentum of an exponential moving average of the weights, used at the end; 0 = off
    augmentation: Augmentation = Augmentation()
    precision: str = "float32"  # or "mixed_bfloat16": bfloat16 compute, float32 weights
    steps_per_execution: int = 1  # training steps per call into TensorFlow
    jit_compile: bool = False  # compile the training step with XLA
    negatives: float = 0.0  # non-digits added per training digit, for versions with a "not a digit" class

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise SettingsError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 0 <= self.ema < 1:
            raise SettingsError(f"ema is a momentum in [0, 1), got {self.ema}")
        if not 0 <= self.warmup < 1:
            raise SettingsError(f"warmup is a fraction of the training steps in [0, 1), got {self.warmup}")
        if self.negatives < 0:
            raise SettingsError(f"negatives is a number of non-digits per training digit, >= 0, got {self.negatives}")
        if self.negatives and not versions.get(self.version).reject_class:
            raise SettingsError(f"version {self.version} has no \"not a digit\" class to train on negatives")

    @classmethod
    def for_version(cls, number, **overrides):
        """The version's defaults, with every override that is not None applied."""
        version = versions.get(number)
        settings = cls(version.number, version.epochs, version.batch_size, version.learning_rate, **version.recipe)
        return replace(settings, **{key: value for key, value in overrides.items() if value is not None})

    def params(self):
        return {**asdict(self), "augmentation": str(self.augmentation)}


@dataclass(frozen=True)
class Splits:
    """Images as float32 in [0, 1], shape (N, 28, 28); labels as integers."""

    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def validated(self):
        """Whether any images are held out: a final fit (`validation=0`) holds out none."""
        return len(self.validation_images) > 0


def scaled(images):
    """uint8 pixels to the models' input: float32 in [0, 1], as the seed scaled them."""
    return images.astype(np.float32) / 255.0


def split(arrays, validation, subset=0):
    """Hold out the last `validation` training images (0: none); optionally keep only the first `subset`."""
    train_images, train_labels = arrays.train_images, arrays.train_labels
    test_images, test_labels = arrays.test_images, arrays.test_labels
    if subset:
        train_images, train_labels = train_images[:subset], train_labels[:subset]
        test_images, test_labels = test_images[:subset], test_labels[:subset]
    if not 0 <= validation < len(train_images):
        raise SettingsError(
            f"validation must be between 0 and {len(train_images) - 1} (the training images), got {validation}"
        )
    cut = len(train_images) - validation
    return Splits(
        scaled(train_images[:cut]), train_labels[:cut],
        scaled(train_images[cut:]), train_labels[cut:],
        scaled(test_images), test_labels,
    )


def fit(settings, splits, architecture=None, callbacks=(), verbose=None):
    """Build, compile and train the version's model; return it with its per-epoch history.

    `architecture` overrides the version's layer sizes (keyword arguments of its builder).
    The history holds Keras' metrics per epoch plus `epoch_seconds`; training time is
    the wall clock of `model.fit`, validation passes included. With `settings.negatives`
    the training images also hold that many non-digits per digit, labelled "not a digit";
    validation stays on digits, so validation accuracies compare across versions.
    """
    version = versions.get(settings.version)
    if settings.negatives:
        splits = with_negatives(splits, settings)
    # Same seed, same weights, same batches, same kernels: the same metrics twice.
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    keras.backend.clear_session()
    # Layers take the global dtype policy when built; put it back at once, so that
    # nothing else built in this process inherits it.
    keras.mixed_precision.set_global_policy(settings.precision)
    try:
        model = version.build(**(architecture or {}))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    steps_per_epoch = math.ceil(len(splits.train_images) / settings.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(settings, steps_per_epoch),
            use_ema=bool(settings.ema), ema_momentum=settings.ema or 0.99,
        ),
        loss=loss(version.loss, settings.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=settings.steps_per_execution,
        jit_compile=settings.jit_compile,
    )
    encode = (lambda labels: one_hot(labels, version.classes)) if version.loss == "categorical_crossentropy" \
        else (lambda labels: labels)
    epoch_log = EpochLog()
    if verbose is None:
        # A progress bar on a terminal; one line per epoch in logs and `mlflow run` output.
        verbose = "auto" if sys.stdout.isatty() else 2
    history = model.fit(
        **training_data(settings, splits.train_images, encode(splits.train_labels)),
        epochs=settings.epochs,
        validation_data=(splits.validation_images, encode(splits.validation_labels)) if splits.validated else None,
        callbacks=[epoch_log, *callbacks],
        verbose=verbose,
    )
    return model, {**history.history, "epoch_seconds": epoch_log.seconds}


def learning_rate(settings, steps_per_epoch):
    """Adam's learning rate: constant, or a schedule over all `epochs * steps_per_epoch` steps."""
    if settings.schedule == "constant":
        return settings.learning_rate
    steps = settings.epochs * steps_per_epoch
    warmup_steps = int(settings.warmup * steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=settings.learning_rate / 10 if warmup_steps else settings.learning_rate,
        decay_steps=steps - warmup_steps,
        warmup_target=settings.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def loss(name, label_smoothing):
    if not label_smoothing:
        return name
    if name != "categorical_crossentropy":
        raise SettingsError(f"label smoothing needs one-hot labels (categorical_crossentropy), not {name}")
    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def training_data(settings, images, labels):
    """`model.fit`'s data arguments: the arrays themselves, or an augmenting tf.data pipeline."""
    if not settings.augmentation:
        return {"x": images, "y": labels, "batch_size": settings.batch_size}

    def varied(number, batch):
        # Each batch's variations come from (seed, batch number), so a run is repeatable.
        batch_images, batch_labels = batch
        seed = tf.stack([tf.constant(settings.seed, tf.int64), number])
        return augment(batch_images, seed, settings.augmentation), batch_labels

    # Repeated, so that batches run on across epoch ends.
    batches = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=settings.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(settings.batch_size)
        .enumerate()
        .map(varied, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"x": batches, "steps_per_epoch": math.ceil(len(images) / settings.batch_size), "shuffle": False}


def one_hot(labels, classes=versions.CLASSES):
    return np.eye(classes, dtype=np.float32)[labels]


# Fashion-MNIST's training images up to this one give training non-digits, the rest validation ones.
CLOTHING_FOR_TRAINING = 50_000


def with_negatives(splits, settings):
    """`splits` with non-digits (`pipeline.negatives`, label 10) added: `settings.negatives` per training digit."""
    from pipeline import datasets, negatives

    clothing = datasets.load(datasets.FASHION_MNIST).train_images[:CLOTHING_FOR_TRAINING]
    extra = negatives.sample(round(settings.negatives * len(splits.train_images)), settings.seed, clothing)
    labels = np.full(len(extra), versions.CLASSES, splits.train_labels.dtype)
    return replace(splits, train_images=np.concatenate([splits.train_images, extra]),
                   train_labels=np.concatenate([splits.train_labels, labels]))


def predict(model, images, batch_size=1000):
    return model.predict(images, batch_size=batch_size, verbose=0)


class EpochLog(keras.callbacks.Callback):
    """Times each epoch (validation included) and logs it with Keras' metrics to MLflow.

    Metrics go to the active MLflow run, if any, at `step` = epoch number counted from 1,
    as Keras prints them ("Epoch 1/15").
    """

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)
        if mlflow.active_run():
            metrics = {key: float(value) for key, value in (logs or {}).items()}
            mlflow.log_metrics({**metrics, "epoch_seconds": self.seconds[-1]}, step=epoch + 1)


@dataclass
class Outcome:
    """What a tracked training run produced."""

    model: object
    history: dict
    train_seconds: float
    evaluation: object
    model_version: object  # the registered version's number, or None


def train_tracked(settings, dataset_name="mnist", architecture=None, register=True):
    """Train inside the active MLflow run and record everything: the path every entry point takes."""
    from pipeline import datasets, evaluation, figures, served_model, tracking

    dataset = datasets.get(dataset_name)
    arrays = datasets.load(dataset)
    splits = split(arrays, settings.validation, settings.subset)
    version = versions.get(settings.version)
    layers = resolved_architecture(version, architecture)

    tracking.log_params({**settings.params(), "dataset": dataset.name, **layers})
    mlflow.set_tags({
        **tracking.environment_tags(),
        "version": str(version.number),
        "version_name": version.name,
        # Promotion compares validation accuracies only between models measured on the same images.
        "validation_set":
            f"{dataset.name}:{datasets.digest(dataset)}:subset={settings.subset}:last={settings.validation}",
    })
    tracking.log_dataset(dataset, arrays)

    started = time.perf_counter()
    model, history = fit(settings, splits, architecture=layers)
    train_seconds = time.perf_counter() - started
    mlflow.log_metric("train_seconds", train_seconds)
    mlflow.log_param("parameters", model.count_params())
    title = f"version {version.number} ({version.name})"
    figures.log(figures.learning_curves(history, title=title), "figures/learning_curves.png")
    log_architecture(model)

    probabilities = predict(model, splits.test_images)
    result = evaluation.log_test_evaluation(
        probabilities, splits.test_images, splits.test_labels, dataset.classes, title=title
    )
    temperature = served_model.calibrate([model], (splits.validation_images, splits.validation_labels))
    if version.reject_class:
        log_rejection(model, splits, settings.seed, temperature)
    info = served_model.log([model], splits.test_images[:3], temperature,
                            tracking.REGISTERED_MODEL if register else None)
    model_version = tracking.register_tags(info, {
        "version": version.number, "version_name": version.name, "run_id": mlflow.active_run().info.run_id,
    }) if register else None
    return Outcome(model, history, train_seconds, result, model_version)


def log_rejection(model, splits, seed, temperature):
    """How often the served answer accepts digits and rejects non-digits, on validation and on test images.

    Non-digits the training never saw: validation ones from the rest of
    Fashion-MNIST's training images and other seeds, test ones from its test images.
    """
    from pipeline import calibration, datasets, evaluation, negatives

    clothing = datasets.load(datasets.FASHION_MNIST)
    held_out = {
        "test": (splits.test_images, negatives.sample(len(splits.test_images), seed + 2, clothing.test_images)),
    }
    if splits.validated:
        held_out["val"] = (splits.validation_images, negatives.sample(
            len(splits.validation_images), seed + 1, clothing.train_images[CLOTHING_FOR_TRAINING:]))
    for prefix, (digits, others) in held_out.items():
        evaluation.log_rejection(
            prefix, calibration.scaled(predict(model, digits), temperature),
            calibration.scaled(predict(model, others), temperature),
        )


def resolved_architecture(version, overrides=None):
    """The builder's keyword arguments: its defaults with `overrides` applied (unknown names refused)."""
    defaults = {
        name: parameter.default for name, parameter in inspect.signature(version.build).parameters.items()
    }
    unknown = set(overrides or {}) - set(defaults)
    if unknown:
        raise SettingsError(f"version {version.number} has no layer setting {', '.join(sorted(unknown))}; "
                         f"it has {', '.join(defaults)}")
    return {**defaults, **(overrides or {})}


def log_architecture(model):
    """The model summary as text and, where pydot and graphviz are installed, the layer diagram."""
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    mlflow.log_text("\n".join(lines), "architecture/summary.txt")
    with tempfile.TemporaryDirectory() as scratch:
        diagram = Path(scratch) / "layers.png"
        try:
            keras.utils.plot_model(model, to_file=str(diagram), show_shapes=True, show_layer_names=True)
        except (ImportError, OSError) as error:
            print(f"layer diagram skipped: {error}")
            return
        if diagram.exists():
            mlflow.log_artifact(str(diagram), "architecture")
