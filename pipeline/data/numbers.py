"""Numbers composed from training digits: whole lines for the sequence reader, and the pieces the segmentation
cuts from them for the piece network.

Reading a number by segmentation (`pipeline.serving.segmentation`) asks a
network about every candidate cut, and a digit classifier is as sure of two
digits run together, or of a sliver of a wide digit, as of a whole digit. The
piece network learns the difference from the candidates themselves: numbers of
2 to 8 digits are composed from MNIST-format digits (spaced, touching or
overlapping, thin or bold, faint or dark, at any size), the real segmentation
cuts them, and each candidate is labelled with its digit when its columns are
one digit's (overlap over union at least `WHOLE`, or, however narrow the digit,
both edges within `EDGE` of the digits' height of its edges), or
`NOT_ONE_DIGIT` when they are no digit's (below `PART`) or hold most of a
second digit's besides; candidates in between are left out.

The sequence reader (`pipeline.training.sequence_reader`) learns from whole numbers of
1 to `sequence.MAX_DIGITS` digits composed the same way, prepared as it reads
them (`pipeline.serving.sequence`).

Everything comes from a seed: `pieces(count, seed, sources, shares)`,
`lines(count, seed, sources, shares)`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor

import numpy as np
from PIL import Image
from scipy import ndimage

from pipeline.serving import images, segmentation, sequence

NOT_ONE_DIGIT = 10  # the label of a piece that is two digits run together or part of one
WHOLE = 0.8  # overlap over union of a piece's columns with a digit's: at least this, it is that digit
PART = 0.6  # below this with every digit, it is not one digit
EDGE = 0.2  # of the digits' height: a piece whose edges are this near a digit's is that digit
ANOTHER = 0.5  # of a second digit's columns: a piece that holds more of them is not one digit
GAPS = ((-0.15, 0.0), (-0.05, 0.1), (0.0, 0.35))  # in digit heights, one range per number: overlapping to spaced
MNIST_INK = 20  # the height of an MNIST digit's ink in its 28 rows
LINES_PER_PROCESS = 5000


def composed(digits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float]], float]:
    """MNIST-format `digits` (N x 28 x 28 in [0, 1]) written in a row, dark on light paper; returns the
    grayscale image, each digit's (left, right) columns in it, and the digits' height in its pixels."""
    low, high = GAPS[rng.integers(len(GAPS))]
    row = np.zeros((36, 40 * len(digits) + 8), np.float32)
    left, spans = 4, []
    for digit in digits:
        columns = np.flatnonzero(digit.max(axis=0) > 0.1)
        cropped = digit[:, columns.min() : columns.max() + 1]
        top = int(rng.integers(0, 9))  # the baseline wanders
        area = row[top : top + 28, left : left + cropped.shape[1]]
        area[...] = np.maximum(area, cropped)
        spans.append((left, left + cropped.shape[1]))
        left = max(4, left + cropped.shape[1] + round(rng.uniform(low, high) * MNIST_INK))
    row = row[:, : max(right for _, right in spans) + 4]
    factor = rng.uniform(1, 4)
    picture = Image.fromarray((row * 255).astype(np.uint8)).resize(
        (round(row.shape[1] * factor), round(row.shape[0] * factor)), Image.Resampling.BICUBIC
    )
    ink = np.asarray(picture)
    if rng.random() < 0.4:  # a bolder pen
        ink = ndimage.maximum_filter(ink, int(rng.choice([3, 5])))
    ink = ink.astype(np.float32) / 255 * rng.uniform(0.6, 0.95)
    gray = np.clip(1 - ink + rng.normal(0, 0.02, ink.shape), 0, 1).astype(np.float32)
    return gray, [(left * factor, right * factor) for left, right in spans], MNIST_INK * factor


def label_of(box: Sequence[int], spans: list[tuple[float, float]], digits: Sequence[int], height: float) -> int | None:
    """A candidate's label from its box's columns: a digit, NOT_ONE_DIGIT, or None when it is neither clearly.

    A piece that holds most of a second digit's columns besides is not one digit, however well it
    matches the first: a narrow 1 run into a 4 is no 4. A narrow digit is matched by its edges, since
    a pen's width more on either side is most of its columns: a bold 1 is still a 1.
    """
    left, right = box[0], box[0] + box[2]
    shared = [min(right, end) - max(left, start) for start, end in spans]
    overlaps = [common / (max(right, end) - min(left, start)) for common, (start, end) in zip(shared, spans)]
    best = int(np.argmax(overlaps))
    held = [common / (end - start) for k, (common, (start, end)) in enumerate(zip(shared, spans)) if k != best]
    if max(held, default=0.0) > ANOTHER:
        return NOT_ONE_DIGIT
    start, end = spans[best]
    if overlaps[best] >= WHOLE or max(abs(left - start), abs(right - end)) <= EDGE * height:
        return int(digits[best])
    return NOT_ONE_DIGIT if overlaps[best] < PART else None


def pieces(
    count: int, seed: int, sources: Sequence[tuple[np.ndarray, np.ndarray]], shares: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled candidate pieces (MNIST format, float32) of `count` composed numbers, and their labels.

    Each number's 2 to 8 digits come from one of `sources` ((images in [0, 1], labels) pairs), drawn with
    probabilities `shares`: one hand, pen or typeface per number.
    """
    rng = np.random.default_rng(seed)
    made, labels = [], []
    for _ in range(count):
        source_images, source_labels = sources[rng.choice(len(sources), p=shares)]
        chosen = rng.integers(len(source_labels), size=int(rng.integers(2, 9)))
        gray, spans, height = composed(source_images[chosen], rng)
        try:
            found = segmentation.candidates(gray)
        except images.NotADigit:  # too faint to be read at all: nothing to learn from
            continue
        for piece in found.pieces:
            label = label_of(piece.digit.box, spans, source_labels[chosen], height)
            if label is not None:
                made.append(piece.digit.image)
                labels.append(label)
    return np.stack(made).astype(np.float32), np.array(labels, np.uint8)


def lines(
    count: int, seed: int, sources: Sequence[tuple[np.ndarray, np.ndarray]], shares: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` composed numbers as the sequence reader sees them: lines (count, HEIGHT, WIDTH) float32, their
    digits (count, MAX_DIGITS), 0 past each number's end, and their lengths. Sources and shares as for `pieces`.

    Each `LINES_PER_PROCESS` are composed from a seed of their own (`line_chunks`), in as many processes as
    there are cores: the lines are the same however many there are."""
    chunks = line_chunks(count, seed)
    if len(chunks) == 1:
        return lines_from(*chunks[0], sources, shares)
    spawn = multiprocessing.get_context("spawn")  # not forked: a fork of a process running TensorFlow can hang
    with ProcessPoolExecutor(min(len(chunks), os.cpu_count() or 1), mp_context=spawn) as pool:
        return joined_lines([chunk.result() for chunk in started_lines(pool, count, seed, sources, shares)])


def started_lines(
    pool: Executor, count: int, seed: int, sources: Sequence[tuple[np.ndarray, np.ndarray]], shares: Sequence[float]
) -> list[Future]:
    """`lines`, started in the `pool`'s processes chunk by chunk: `joined_lines` of their results."""
    return [pool.submit(lines_from, *chunk, sources, shares) for chunk in line_chunks(count, seed)]


def line_chunks(count: int, seed: int) -> list[tuple[int, int]]:
    """The count and seed of each chunk of `count` lines that `lines` composes on its own (`lines_from`)."""
    counts = [min(LINES_PER_PROCESS, count - start) for start in range(0, count, LINES_PER_PROCESS)]
    seeds = [int(value) for value in np.random.SeedSequence(seed).generate_state(len(counts))]
    return list(zip(counts, seeds))


def joined_lines(chunks: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines composed in chunks (`line_chunks`), in order: the lines, digits and lengths of `lines`."""
    return tuple(np.concatenate(part) for part in zip(*chunks))


def lines_from(
    count: int, seed: int, sources: Sequence[tuple[np.ndarray, np.ndarray]], shares: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`lines`, composed in this process."""
    rng = np.random.default_rng(seed)
    made, labels, lengths = [], np.zeros((count, sequence.MAX_DIGITS), np.int32), np.zeros(count, np.int32)
    while len(made) < count:
        source_images, source_labels = sources[rng.choice(len(sources), p=shares)]
        chosen = rng.integers(len(source_labels), size=int(rng.integers(1, sequence.MAX_DIGITS + 1)))
        gray, _, _ = composed(source_images[chosen], rng)
        try:
            made.append(sequence.line_of(gray).image)
        except images.NotADigit:  # too faint to be read at all: nothing to learn from
            continue
        labels[len(made) - 1, : len(chosen)] = source_labels[chosen]
        lengths[len(made) - 1] = len(chosen)
    return np.stack(made), labels, lengths
