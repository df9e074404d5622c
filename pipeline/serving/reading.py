"""What the recognizer answers for an image: the objects that the served model and `pipeline.predict` return.

One digit (mode "digit"):

    {"digit": 7, "confidence": 0.998, "probabilities": [ten floats],
     "rejected": false, "reason": null}

A whole number (mode "number"): `digit` and `probabilities` are null, `number`
is the digits as a string, `digits` has each digit's `digit`, `confidence` and
`box` = [x, y, width, height] in the original image's pixels, left to right;
`confidence` is the least confident digit's, and the number is rejected if any
digit is.

An answer is rejected, with `digit: null` and a short `reason`, when the image
cannot hold a digit (`pipeline.serving.images` refuses it before the model sees it),
when a network with a "not a digit" class gives that class more probability than
any digit (one digit only: the pieces of a number are taken to be digits), or
when the (calibrated) confidence is below the threshold.

A model that carries a sequence reader (`pipeline.serving.sequence`) reads
each number twice: by segmentation, whose cuts give each digit its own box,
and whole by the reader, which needs no cut. Where they count differently,
digits ran into each other or a cut split one, or the reader merged two or
read one twice: the reader weighs both numbers (`sequence.log_likelihood`),
and segmentation's reading stands unless the reader finds its own more than
`READER_MARGIN` likelier; the reader's answer has each digit's probabilities
those of the frame it was surest of there.
Where both find as many digits, each digit is read from both, segmentation's
and the reader's probabilities joined by their geometric mean (`agreed`), with
segmentation's boxes: where they disagree, the digit is only as sure as both
allow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from pipeline.serving import images, segmentation, sequence

DEFAULT_THRESHOLD = 0.5
MODES = ("digit", "number")
DIGITS = 10  # columns 0-9 are the digits; a network with a reject class has an 11th, "not a digit"
# Natural log: where the two readers count differently, the reader's number is given only if it finds it more
# than e times likelier than segmentation's (chosen on the development sets, BENCHMARKS.md).
READER_MARGIN = 1.0


def digit_answer(probabilities: Sequence[float], threshold: float) -> dict:
    """The answer for one MNIST-format image, from its row of class probabilities."""
    digits = np.asarray(probabilities[:DIGITS], dtype=np.float64)
    not_digit = float(probabilities[DIGITS]) if len(probabilities) > DIGITS else 0.0
    confidence = float(digits.max())
    reason = None
    if not_digit > confidence:
        reason = f"not a digit ({not_digit:.0%} sure)"
    elif confidence < threshold:
        reason = f"confidence {confidence:.0%} is below the threshold {threshold:.0%}"
    return {
        "digit": None if reason else int(digits.argmax()),
        "confidence": confidence,
        "probabilities": [float(p) for p in digits],
        "rejected": reason is not None,
        "reason": reason,
    }


def number_answer(rows: Sequence[Sequence[float]], boxes: Sequence[tuple], threshold: float) -> dict:
    """The answer for a whole number: one row of probabilities per digit found in it, and each digit's box.

    The image is declared to hold a number, so each piece is taken to be a digit:
    its probabilities are those among the ten digits ("not a digit" set aside),
    and only the threshold rejects it.
    """
    read = [
        {**digit_answer(among_digits(row), threshold), "box": [int(value) for value in box]}
        for row, box in zip(rows, boxes)
    ]
    reason = next(
        (
            f"digit {number + 1} of {len(read)}: {answer['reason']}"
            for number, answer in enumerate(read)
            if answer["rejected"]
        ),
        None,
    )
    return {
        "digit": None,
        "confidence": min(answer["confidence"] for answer in read),
        "probabilities": None,
        "rejected": reason is not None,
        "reason": reason,
        "number": None if reason else "".join(str(answer["digit"]) for answer in read),
        "digits": [{key: answer[key] for key in ("digit", "confidence", "box")} for answer in read],
    }


def among_digits(probabilities: Sequence[float]) -> np.ndarray:
    """The probabilities of the ten digits given that the image is one."""
    digits = np.asarray(probabilities[:DIGITS], dtype=np.float64)
    return digits / digits.sum()


def agreed(rows: Sequence[Sequence[float]], frames: np.ndarray) -> list[np.ndarray]:
    """Each digit's probabilities among the ten from two readings of it: segmentation's `rows` and the sequence
    reader's `frames` at the digits it read, one each; their geometric mean, summing to 1."""
    joined = [np.sqrt(np.maximum(among_digits(row) * among_digits(frame), 1e-24)) for row, frame in zip(rows, frames)]
    return [row / row.sum() for row in joined]


def reader_prefers_its_own(frames: np.ndarray, segmented: Sequence[Sequence[float]]) -> bool:
    """Whether the sequence reader, by one line's (FRAMES, 11) probabilities, finds the number it read more
    than `READER_MARGIN` likelier (in log-likelihood) than the one segmentation read, a row per digit."""
    number = "".join(str(int(np.argmax(among_digits(row)))) for row in segmented)
    own = sequence.log_likelihood(frames, sequence.number_in(frames))
    return own - sequence.log_likelihood(frames, number) > READER_MARGIN


def refusal(reason: str, mode: str) -> dict:
    """The answer for an image refused before the model saw it."""
    answer = {"digit": None, "confidence": None, "probabilities": None, "rejected": True, "reason": reason}
    return {**answer, "number": None, "digits": []} if mode == "number" else answer


def answers(
    pictures: Iterable[images.Picture],
    modes: Sequence[str],
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    candidates_of: Callable[[np.ndarray], np.ndarray] | None = None,
    lines_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict]:
    """One answer per picture, in its mode; `probabilities_of` maps MNIST-format images to rows.

    Each picture is prepared in turn and let go (`pictures` may be a generator):
    only what the networks are asked about, every digit and every candidate digit
    of a number (`pipeline.serving.segmentation`), is kept; the digits go through
    them in one batch, the candidates in another. `candidates_of` maps the candidates
    to rows, where not as `probabilities_of` does (a model with a piece network joins
    its judgement); `lines_of`, a sequence reader's logits for lines
    (`pipeline.serving.sequence`), reads numbers whole besides.
    """
    return [answer for answer, _ in readings(pictures, modes, probabilities_of, threshold, candidates_of, lines_of)]


def readings(
    pictures: Iterable[images.Picture],
    modes: Sequence[str],
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    candidates_of: Callable[[np.ndarray], np.ndarray] | None = None,
    lines_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[tuple[dict, list[images.Digit]]]:
    """`answers`, each with the MNIST-format Digits it was read from (none for an image refused unseen,
    and none for a number the sequence reader read whole)."""
    found: list[str | segmentation.Candidates | images.Digit] = []
    lines: list[sequence.Line | None] = []
    for picture, mode in zip(pictures, modes):
        line = None
        try:
            if mode == "number":
                number = segmentation.number_ink(picture.gray, picture.scale)  # read both ways from one ink
                cut = segmentation.candidates_in(number)
                line = sequence.line_from(number) if lines_of else None
                found.append(cut)
            else:
                found.append(images.to_mnist(picture.gray, picture.scale))
        except images.NotADigit as error:
            found.append(str(error))
        lines.append(line)
    single_digits = [item.image for item in found if isinstance(item, images.Digit)]
    digit_rows = iter(probabilities_of(np.stack(single_digits)) if single_digits else [])
    cut = [piece.digit.image for item in found if isinstance(item, segmentation.Candidates) for piece in item.pieces]
    candidate_rows = iter((candidates_of or probabilities_of)(np.stack(cut)) if cut else [])
    read = [line.image for line in lines if line is not None]
    line_frames = iter(sequence.probabilities(lines_of(np.stack(read))) if lines_of and read else [])
    results = []
    for item, mode, line in zip(found, modes, lines):
        if isinstance(item, str):
            results.append((refusal(item, mode), []))
        elif isinstance(item, images.Digit):
            results.append((digit_answer(next(digit_rows), threshold), [item]))
        else:
            seen = [next(candidate_rows) for _ in item.pieces]
            chosen = segmentation.best_reading(item, np.array(seen))
            digits = [item.pieces[index].digit for index in chosen]
            segmented = [seen[index] for index in chosen]
            answer = number_answer(segmented, [digit.box for digit in digits], threshold)
            if line is not None:
                frames = next(line_frames)
                where = sequence.digit_frames(frames)
                if where and len(where) == len(chosen):
                    answer = number_answer(agreed(segmented, frames[where]), [digit.box for digit in digits], threshold)
                elif where and reader_prefers_its_own(frames, segmented):
                    answer = number_answer([frames[frame] for frame in where], line.boxes(where), threshold)
                    digits = []
            results.append((answer, digits))
    return results
