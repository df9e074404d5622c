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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from pipeline.serving import images, segmentation

DEFAULT_THRESHOLD = 0.5
MODES = ("digit", "number")
DIGITS = 10  # columns 0-9 are the digits; a network with a reject class has an 11th, "not a digit"


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


def number_answer(rows: Sequence[Sequence[float]], digits: Sequence[images.Digit], threshold: float) -> dict:
    """The answer for a whole number: one row of probabilities per Digit found in it.

    The image is declared to hold a number, so each piece is taken to be a digit:
    its probabilities are those among the ten digits ("not a digit" set aside),
    and only the threshold rejects it.
    """
    read = [
        {**digit_answer(among_digits(row), threshold), "box": [int(value) for value in digit.box]}
        for row, digit in zip(rows, digits)
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


def refusal(reason: str, mode: str) -> dict:
    """The answer for an image refused before the model saw it."""
    answer = {"digit": None, "confidence": None, "probabilities": None, "rejected": True, "reason": reason}
    return {**answer, "number": None, "digits": []} if mode == "number" else answer


def answers(
    pictures: Iterable[images.Picture],
    modes: Sequence[str],
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    pieces_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[dict]:
    """One answer per picture, in its mode; `probabilities_of` maps MNIST-format images to rows.

    Each picture is prepared in turn and let go (`pictures` may be a generator):
    only what the network is asked about, every digit and every candidate digit
    of a number (`pipeline.serving.segmentation`), is kept, and goes through it in one batch.
    `pieces_of`, a piece network's probabilities, judges the candidates of numbers besides.
    """
    return [answer for answer, _ in readings(pictures, modes, probabilities_of, threshold, pieces_of)]


def readings(
    pictures: Iterable[images.Picture],
    modes: Sequence[str],
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    pieces_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[tuple[dict, list[images.Digit]]]:
    """`answers`, each with the MNIST-format Digits it was read from (none for an image refused unseen)."""
    found: list[str | segmentation.Candidates | images.Digit] = []
    for picture, mode in zip(pictures, modes):
        prepare = segmentation.candidates if mode == "number" else images.to_mnist
        try:
            found.append(prepare(picture.gray, picture.scale))
        except images.NotADigit as error:
            found.append(str(error))
    batch = [digit.image for item in found for digit in looked_at(item)]
    rows = iter(probabilities_of(np.stack(batch)) if batch else [])
    cut = [piece.digit.image for item in found if isinstance(item, segmentation.Candidates) for piece in item.pieces]
    piece_rows = iter(pieces_of(np.stack(cut)) if pieces_of and cut else [])
    results = []
    for item, mode in zip(found, modes):
        seen = [next(rows) for _ in looked_at(item)]
        if isinstance(item, segmentation.Candidates) and pieces_of:
            seen = list(segmentation.judged(np.array(seen), np.array([next(piece_rows) for _ in seen])))
        if isinstance(item, str):
            results.append((refusal(item, mode), []))
        elif isinstance(item, images.Digit):
            results.append((digit_answer(seen[0], threshold), [item]))
        else:
            chosen = segmentation.best_reading(item, np.array(seen))
            digits = [item.pieces[index].digit for index in chosen]
            results.append((number_answer([seen[index] for index in chosen], digits, threshold), digits))
    return results


def looked_at(item: str | segmentation.Candidates | images.Digit) -> list[images.Digit]:
    """The Digits the network is asked about for one image: none for a refusal, every candidate of a number."""
    if isinstance(item, str):
        return []
    if isinstance(item, images.Digit):
        return [item]
    return [piece.digit for piece in item.pieces]
