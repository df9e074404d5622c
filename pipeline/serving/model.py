"""The MLflow model that every trained network is logged, registered and served as.

A pyfunc around one Keras network, or several whose probabilities it averages
(an ensemble, `pipeline.ensemble`), that carries the preprocessing of people's
images with it. `mlflow models serve -m models:/mnist/Production` answers
`/invocations` for

- MNIST-format arrays, `{"inputs": [...]}` of shape N x 28 x 28 or N x 28 x 28 x 1,
  grayscale in [0, 1], white digit on black;
- image files (any format Pillow reads) as base64 strings,
  `{"dataframe_split": {"columns": ["image"], "data": [["<base64>"], ...]}}`,
  each turned into the MNIST format by `pipeline.serving.images`; an optional `mode`
  column, or the `mode` param, is "digit" (the default) or "number" (read every
  digit of a whole number);

with one answer per image (`pipeline.serving.reading`): `digit`, `confidence`,
`probabilities`, `rejected`, `reason`, and in number mode `number` and `digits`.
The `threshold` param (default 0.5) is the least calibrated confidence that is
accepted. A malformed payload or an image that cannot be decoded is answered 400
with the reason, naming the row.

A request holds at most `MAX_IMAGES` images and `MAX_IMAGE_BYTES` of image
files (base64 as sent); each file at most `images.MAX_PIXELS` pixels. Past a
limit the request is answered 400 naming the limit and its value, before any
image is decoded. Files are decoded one at a time, each reduced while it is
decoded (`images.read`), so a request's memory stays bounded; at the end of a
request, at most once a second, what requests freed is handed back to the
system (`hand_back_freed_memory`).

The networks run in TensorFlow Lite's interpreter (`LiteNetwork`), compiled
from them when the model loads, in float32 also where they were trained in
bfloat16 (`in_float32`): for the batch of one request, a few images,
it takes a fraction of TensorFlow's time, and `keras.Model.predict`, which
builds a data pipeline on every call, about 50 ms, is never used. The
classifiers are compiled as one network (`Averaged`) that averages them; on
the candidate digits of numbers, the piece network runs in that call too
(`judges`); the sequence reader reads a line at a time (`LineReader`). The
scoring server calls `predict` from several threads at once: nothing here
keeps a request's state beyond its call, and the calls take turns on each
interpreter.

The probabilities are calibrated: the model carries the temperature fitted on
the validation split (`pipeline.serving.calibration`; 1 for a final fit, which has none).
`.probabilities(images)` of the loaded model
(`mlflow.pyfunc.load_model(uri).unwrap_python_model()`) gives them as an array,
the networks themselves are `.networks`, and their Keras files are the artifacts
`keras_model` (or `keras_model_1`, `keras_model_2`, ... for an ensemble) inside
the logged model (`pipeline.tracking.logged_model` logs it). A model may also
carry a piece network (artifact `pieces`, `pipeline.training.pieces`), which
judges with them, in the same call, whether each candidate cut from a number is one whole digit,
and a sequence reader (artifact `sequence_reader`, `pipeline.training.sequence_reader`), which
reads each number whole besides (`pipeline.serving.reading`). This subpackage,
`pipeline.serving`, is all the code that travels with the model (`code_paths`):
it imports nothing else of the project, so what serves depends on serving code
only, and it loads wherever the pinned requirements are installed.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from pipeline.serving import calibration, images, reading, segmentation, sequence

KERAS_ARTIFACT = "keras_model"
PIECES_ARTIFACT = "pieces"
READER_ARTIFACT = "sequence_reader"
IMAGE_SIZE = 28
MAX_IMAGES = 256  # in one request
MAX_IMAGE_BYTES = 32_000_000  # of image files in one request, counted as sent (base64)
CHUNK = 1024  # images per call of a Keras network: bounds the memory of its activations
LITE_BATCH = 64  # images per call of an interpreter, which keeps the memory of its largest: at no cost in speed
THREADS = os.cpu_count() or 1  # each interpreter's, as TensorFlow's own ops take every core

# glibc keeps the memory a thread frees for its next allocations, in arenas of each thread's own, and
# requests are read in several threads at once: at the end of a request, at most once every TRIM_SECONDS,
# what is free is handed back to the system, at no cost in speed measured (BENCHMARKS.md, "Models trained
# in bfloat16 served again, and freed memory handed back"). A C library without malloc_trim keeps its own.
malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
TRIM_SECONDS = 1.0
last_trimmed = 0.0


def hand_back_freed_memory() -> None:
    global last_trimmed
    now = time.monotonic()
    if malloc_trim is not None and now - last_trimmed >= TRIM_SECONDS:
        last_trimmed = now  # threads racing here trim twice: harmless
        malloc_trim(0)


# TensorFlow 2.21 warns, for every interpreter made, that `tf.lite`'s interpreter moves to the ai_edge_litert package.
warnings.filterwarnings("ignore", r"\s*Warning: tf.lite.Interpreter is deprecated", UserWarning)


class InputError(MlflowException):
    """A payload the model cannot read (bad shape, pixels, base64, image, mode): the server answers 400 with it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)


def as_images(batch: object) -> np.ndarray:
    """Return `batch` as float32 (N, 28, 28), or raise InputError saying what is wrong with it."""
    try:
        images = np.asarray(batch, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise InputError(f"images must be numbers: {error}") from None
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise InputError(f"expected images of shape N x 28 x 28 or N x 28 x 28 x 1, got {images.shape}")
    if not np.isfinite(images).all() or images.min(initial=0) < 0 or images.max(initial=0) > 1:
        raise InputError("pixel values must be in [0, 1] (pixels / 255), white digit on black")
    return images


def decoded(cell: object, row: int) -> images.Picture:
    """The image in one `image` cell: base64 text (or raw bytes) of an image file.

    The text may be wrapped in lines (as `base64` and MIME write it) and may be a
    data URL (`data:image/png;base64,...`, as browsers write it).
    """
    if isinstance(cell, str):
        if cell.startswith("data:") and ";base64," in cell[:100]:
            cell = cell.split(";base64,", 1)[1]
        try:
            cell = base64.b64decode("".join(cell.split()), validate=True)
        except binascii.Error as error:
            raise InputError(f"row {row}: the image is not valid base64: {error}") from None
    if not isinstance(cell, (bytes, bytearray)):
        raise InputError(f"row {row}: the image must be a base64 string, got {type(cell).__name__}")
    try:
        return images.read(cell)
    except images.ImageError as error:
        raise InputError(f"row {row}: {error}") from None


def as_mode(value: object, row: int | None = None) -> str:
    where = f"row {row}: " if row is not None else ""
    if value not in reading.MODES:
        raise InputError(f"{where}mode must be one of {', '.join(reading.MODES)}, got {value!r}")
    return value


def as_threshold(value: object) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0 <= threshold <= 1:
        raise InputError(f"threshold must be a number in [0, 1], got {value!r}")
    return threshold


# Test-time augmentation: the image itself and the image moved one pixel each way.
TTA_SHIFTS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def shifted(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """`images` moved by whole pixels, with black coming in at the edges."""
    moved = np.zeros_like(images)
    height, width = images.shape[1:3]
    moved[:, max(rows, 0) : height + min(rows, 0), max(columns, 0) : width + min(columns, 0)] = images[
        :, max(-rows, 0) : height + min(-rows, 0), max(-columns, 0) : width + min(-columns, 0)
    ]
    return moved


def average_probabilities(networks: Sequence, images: np.ndarray, tta: bool = False) -> np.ndarray:
    """The mean of the Keras networks' class probabilities for each image (and, with `tta`, each shift of it)."""
    shifts = TTA_SHIFTS if tta else TTA_SHIFTS[:1]
    views = np.concatenate([shifted(images, *shift) for shift in shifts])
    every = np.mean([probabilities_of(network, views) for network in networks], axis=0)
    return every.reshape(len(shifts), len(images), -1).mean(axis=0)


def probabilities_of(network: object, images: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
    """One network's outputs, called `chunk` images at a time."""
    if not len(images):
        return np.zeros((0, *network.output_shape[1:]), np.float32)
    return in_chunks(network.predict_on_batch, images, chunk)


def in_chunks(call: Callable[[np.ndarray], np.ndarray], images: np.ndarray, chunk: int) -> np.ndarray:
    """`call`'s outputs for (nonempty) `images`, called `chunk` images at a time."""
    return np.concatenate([np.asarray(call(images[start : start + chunk])) for start in range(0, len(images), chunk)])


class Averaged:
    """Keras networks of one input shape called as one network: their mean output from one compiled function,
    the same numbers as calling each, for one call's overhead rather than one per network. With `beside`, one
    more network on the same batch whose own outputs follow the mean's, column after column, from the same call.
    """

    def __init__(self, networks: Sequence, beside: object | None = None) -> None:
        import tensorflow as tf

        columns = networks[0].output_shape[-1] + (beside.output_shape[-1] if beside is not None else 0)
        self.output_shape = (None, columns)
        batch = tf.TensorSpec([None, *networks[0].input_shape[1:]], tf.float32)

        def averaged(images: tf.Tensor) -> tf.Tensor:
            mean = tf.add_n([network(images, training=False) for network in networks]) / len(networks)
            return mean if beside is None else tf.concat([mean, beside(images, training=False)], axis=1)

        self.network = LiteNetwork(tf.function(averaged, input_signature=[batch]))

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        return self.network(batch)


class LineReader:
    """The sequence reader, a line at a time: its recurrent layers loop over a line of any width, which the
    converter turns into the interpreter's own operations only for a batch of fixed size."""

    def __init__(self, reader: object) -> None:
        import tensorflow as tf

        line = tf.TensorSpec([1, *reader.input_shape[1:]], tf.float32)
        self.network = LiteNetwork(tf.function(lambda lines: reader(lines, training=False), input_signature=[line]))

    def predict_on_batch(self, lines: np.ndarray) -> np.ndarray:
        return np.concatenate([self.network(line[None]) for line in lines])


def in_float32(network: object) -> object:
    """`network` computing in float32. A network trained in mixed precision (`mixed_bfloat16`, which training
    chooses on processors with bfloat16 instructions) computes in bfloat16, for which TensorFlow Lite's
    interpreter has no kernels, and which a processor without those instructions emulates: it is copied into
    layers of float32, with its own weights (float32 in training too). A network in float32 is returned as it is.
    """
    config = network.get_config()
    floated = float32_config(config)
    if floated == config:
        return network
    copy = type(network).from_config(floated)
    copy.set_weights(network.get_weights())
    return copy


def float32_config(value: object) -> object:
    """A Keras config with every mixed-precision dtype policy, nested layers' too, replaced by float32."""
    if isinstance(value, dict):
        if value.get("class_name") == "DTypePolicy" and str(value.get("config", {}).get("name")).startswith("mixed_"):
            return "float32"
        return {key: float32_config(item) for key, item in value.items()}
    if isinstance(value, list):
        return [float32_config(item) for item in value]
    return value


class LiteNetwork:
    """A `tf.function` of one input and one output compiled for TensorFlow Lite's interpreter (XNNPACK's
    kernels), which runs a batch of one image through version 6's classifiers in a sixth of TensorFlow's
    time, a number's candidates in four fifths and its line in a third (BENCHMARKS.md, "The networks run
    by TensorFlow Lite"), on `THREADS` threads. The interpreter is resized to each batch, runs one call at
    a time (the scoring server's threads take turns) and keeps the memory of the largest batch it has run:
    it is given at most LITE_BATCH images a call."""

    def __init__(self, function: object) -> None:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
        self.interpreter = tf.lite.Interpreter(model_content=converter.convert(), num_threads=THREADS)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape: tuple[int, ...] = ()
        self.turn = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return in_chunks(self.called, batch, LITE_BATCH)

    def called(self, batch: np.ndarray) -> np.ndarray:
        with self.turn:
            if batch.shape != self.shape:
                self.interpreter.resize_tensor_input(self.input, batch.shape)
                self.interpreter.allocate_tensors()
                self.shape = batch.shape
            self.interpreter.set_tensor(self.input, np.ascontiguousarray(batch, np.float32))
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output)  # a copy


class DigitRecognizer(mlflow.pyfunc.PythonModel):
    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        import keras

        def network(name: str, **options: object) -> object | None:
            path = context.artifacts.get(name)
            return keras.models.load_model(path, **options) if path else None

        config = context.model_config or {}
        self.ready(
            [network(name) for name in sorted(context.artifacts) if name.startswith(KERAS_ARTIFACT)],
            pieces=network(PIECES_ARTIFACT),
            sequence_reader=network(READER_ARTIFACT, compile=False),
            tta=bool(config.get("tta", False)),
            temperature=float(config.get("temperature", 1.0)),
        )

    def ready(
        self,
        networks: Sequence,
        pieces: object | None = None,
        sequence_reader: object | None = None,
        tta: bool = False,
        temperature: float = 1.0,
    ) -> DigitRecognizer:
        """Serve these Keras networks, in float32 (`in_float32`), each compiled and run once here rather than in
        a request: what loading the model does, and what `pipeline.tracking.logged_model` tries before logging."""
        self.networks = [in_float32(network) for network in networks]
        self.pieces = in_float32(pieces) if pieces is not None else None
        self.sequence_reader = in_float32(sequence_reader) if sequence_reader is not None else None
        self.tta, self.temperature = tta, temperature
        blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
        self.probabilities(blank)
        if self.pieces is not None:  # without one, candidates are read as digits are: compiled just above
            self.candidate_rows(blank)
        if self.sequence_reader is not None:
            self.line_logits(np.zeros((1, sequence.HEIGHT, sequence.WIDTH), np.float32))
        return self

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The calibrated class probabilities of MNIST-format images (N x 28 x 28 in [0, 1])."""
        return calibration.scaled(average_probabilities([self.classifiers], images, self.tta), self.temperature)

    @functools.cached_property
    def classifiers(self) -> Averaged:
        """`networks` called as one."""
        return Averaged(self.networks)

    def candidate_rows(self, images: np.ndarray) -> np.ndarray:
        """What the candidate digits of numbers are judged by: their calibrated class probabilities, each
        digit's joined with the piece network's (`segmentation.judged`) where the model carries one.

        The piece network runs in the classifiers' call (`judges`); with TTA it sees the same moved copies,
        its probabilities averaged over them as theirs are.
        """
        if self.pieces is None:
            return self.probabilities(images)
        both = average_probabilities([self.judges], images, self.tta)
        classes = self.networks[0].output_shape[-1]
        return segmentation.judged(calibration.scaled(both[:, :classes], self.temperature), both[:, classes:])

    @functools.cached_property
    def judges(self) -> Averaged:
        """`networks` called as one, and the piece network beside them in the same call."""
        return Averaged(self.networks, beside=self.pieces)

    def line_logits(self, lines: np.ndarray) -> np.ndarray:
        """The sequence reader's logits, (N, frames, 11), for lines of numbers (`pipeline.serving.sequence`),
        read as far as the longest one's ink: a frame per FRAME_COLUMNS columns."""
        return self.line_reader.predict_on_batch(sequence.trimmed(lines))

    @functools.cached_property
    def line_reader(self) -> LineReader:
        return LineReader(self.sequence_reader)

    @property
    def lines_of(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """What `reading.answers` reads numbers whole with; None without a sequence reader."""
        return self.line_logits if self.sequence_reader is not None else None

    # `model_input` stays unannotated: MLflow reads predict's type hint as the input schema to convert to.
    def predict(self, context: object, model_input, params: dict | None = None) -> list[dict]:  # noqa: ANN001
        try:
            return self.answers(model_input, params or {})
        finally:
            hand_back_freed_memory()

    def answers(self, model_input: object, params: dict) -> list[dict]:
        threshold = as_threshold(params.get("threshold", reading.DEFAULT_THRESHOLD))
        mode = as_mode(params.get("mode", "digit"))
        if isinstance(model_input, pd.DataFrame) and "image" in model_input.columns:
            return self.read_images(model_input, mode, threshold)
        if mode != "digit":
            raise InputError("mode 'number' needs image files (the `image` column), not MNIST-format arrays")
        images = as_images(model_input.to_numpy() if isinstance(model_input, pd.DataFrame) else model_input)
        within_count(len(images))
        return [reading.digit_answer(row, threshold) for row in self.probabilities(images)]

    def read_images(self, frame: pd.DataFrame, mode: str, threshold: float) -> list[dict]:
        within_count(len(frame))
        sent = sum(len(cell) for cell in frame["image"] if isinstance(cell, (str, bytes, bytearray)))
        if sent > MAX_IMAGE_BYTES:
            raise InputError(f"the images hold {sent:,} bytes, more than the limit of {MAX_IMAGE_BYTES:,} per request")
        modes = [mode] * len(frame)
        if "mode" in frame.columns:
            modes = [mode if pd.isna(value) else as_mode(value, row) for row, value in enumerate(frame["mode"])]
        pictures = (decoded(cell, row) for row, cell in enumerate(frame["image"]))  # one at a time
        return reading.answers(pictures, modes, self.probabilities, threshold, self.candidate_rows, self.lines_of)


def within_count(count: int) -> None:
    if count > MAX_IMAGES:
        raise InputError(f"{count:,} images is more than the limit of {MAX_IMAGES:,} per request")
