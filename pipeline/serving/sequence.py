"""The sequence reader's side of serving: a whole number as one line of ink, and the reader's answer decoded.

Segmentation (`pipeline.serving.segmentation`) has to cut ink to read a
number, and digits written into each other leave no place to cut. A sequence
reader (`pipeline.training.sequence_reader`) reads the whole line instead: a small
convolutional network with a recurrent layer, trained with CTC (Graves et al.,
2006), gives for each frame, `FRAME_COLUMNS` columns of the line, the
probabilities of the ten digits and of "no new digit here" (`BLANK`); the
number is the most likely label of every frame, repeats merged and blanks
dropped (`digit_frames`); how likely it finds any other number is
`log_likelihood`, the sum over every way of writing that number across the
frames.

`line_of` prepares a number as the reader sees it: its ink cleaned up as for
single digits (`images.ink_of`), levelled as segmentation levels it, cropped
to the ink, scaled to `HEIGHT` rows and written from the left of a line
`WIDTH` columns long (a longer number is narrowed to fit); the line
knows where its ink came from, so that each digit read gets a box in the
image: from halfway to its left neighbour to halfway to its right one. The
reader reads lines only as far as their ink reaches, rounded up to `BUCKET`
columns (`trimmed`): most numbers fill a third of a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from pipeline.serving import images, segmentation

HEIGHT = 32  # rows of a line; the ink fills all but MARGIN at the top and bottom
WIDTH = 320  # columns: room for 12 digits a little apart
MARGIN = 2
FRAME_COLUMNS = 4  # of the line's, per frame: the reader's outputs along the line
FRAMES = WIDTH // FRAME_COLUMNS
BLANK = 10  # the reader's last class: no new digit in this frame
MAX_DIGITS = 12
BUCKET = 32  # columns: a line is read up to its ink's end rounded up to this, so lines of like length batch well


@dataclass(frozen=True)
class Line:
    """A number as the reader sees it, and where its ink came from in the image."""

    image: np.ndarray  # (HEIGHT, WIDTH) float32 in [0, 1], white ink on black
    crop: tuple[int, int, int, int]  # (x, y, width, height) of the ink in the levelled ink map
    columns: int  # of the line's, after MARGIN, that the ink fills
    level: segmentation.Levelled  # the turn that levelled the ink, its map dropped: a request keeps lines small
    scale: float  # the ink map's pixels per pixel of the image

    def boxes(self, frames: Sequence[int]) -> list[tuple[int, int, int, int]]:
        """Boxes (x, y, width, height) in the image's pixels of the digits read at `frames`, left to right:
        each reaches halfway to its neighbours' frames, the first and the last to the ink's ends."""
        centres = [FRAME_COLUMNS * frame + FRAME_COLUMNS / 2 - MARGIN for frame in frames]
        edges = [0.0, *((left + right) / 2 for left, right in zip(centres, centres[1:])), float(self.columns)]
        x, y, width, height = self.crop
        per_column = width / self.columns
        found = []
        for left, right in zip(edges, edges[1:]):
            start = x + np.clip(left, 0, self.columns) * per_column
            stop = x + np.clip(right, 0, self.columns) * per_column
            box = (start, y, stop - start, height)
            if self.level.angle:
                found.append(self.level.box_in_image(box, self.scale))
            else:
                found.append(tuple(int(round(value / self.scale)) for value in box))
        return found


def line_of(gray: np.ndarray, scale: float = 1.0) -> Line:
    """The number in a grayscale image as a line (white ink on black) for the reader; raises
    images.NotADigit when the image holds no ink that could be a number. `scale`: `gray`'s pixels
    per pixel of the original image, for the boxes."""
    return line_from(segmentation.number_ink(gray, scale))


def line_from(number: segmentation.NumberInk) -> Line:
    """A number's ink as a line for the reader."""
    level = number.level
    rows, columns = images.inked_rectangle(level.map > images.INK_FLOOR)
    crop = np.clip(level.map[rows, columns], 0, 1)
    inner = HEIGHT - 2 * MARGIN
    width = int(np.clip(round(crop.shape[1] * inner / crop.shape[0]), 1, WIDTH - 2 * MARGIN))
    picture = Image.fromarray(crop.astype(np.float32), mode="F").resize((width, inner), Image.Resampling.BILINEAR)
    line = np.zeros((HEIGHT, WIDTH), np.float32)
    line[MARGIN : MARGIN + inner, MARGIN : MARGIN + width] = np.clip(np.asarray(picture), 0, 1)
    top, left = (0, 0) if level.angle else number.ink.origin  # a level number's map is its ink's, cropped
    placed = (left + columns.start, top + rows.start, crop.shape[1], crop.shape[0])
    return Line(line, placed, width, replace(level, map=level.map[:0, :0]), number.ink.scale)


def trimmed(lines: np.ndarray) -> np.ndarray:
    """Lines (N, HEIGHT, WIDTH) cut after the last column any of them inks, its margin kept, rounded up to
    `BUCKET` columns: the reader reads a line's ink and the blank after it, not a whole empty line."""
    return lines[:, :, : read_columns(lines).max(initial=BUCKET)]


def read_columns(lines: np.ndarray) -> np.ndarray:
    """Each line's columns as the reader reads it: its ink and MARGIN, rounded up to `BUCKET` columns."""
    inked = lines.max(axis=1) > 0
    last = np.where(inked.any(axis=1), WIDTH - 1 - inked[:, ::-1].argmax(axis=1), 0)
    return np.minimum(-(-(last + 1 + MARGIN) // BUCKET) * BUCKET, WIDTH)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """The reader's (N, FRAMES, 11) logits as probabilities, each frame's summing to 1."""
    logits = np.asarray(logits, dtype=np.float64)
    exponentials = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def digit_frames(frames: np.ndarray) -> list[int]:
    """Where the reader read a digit in one line's (FRAMES, 11) probabilities, greedily: the most likely
    class of every frame, repeats merged and blanks dropped; each digit at its surest frame."""
    labels = frames.argmax(axis=-1)
    found: list[int] = []
    previous = BLANK
    for frame, label in enumerate(labels):
        if label != BLANK and label == previous and frames[frame, label] > frames[found[-1], label]:
            found[-1] = frame
        elif label != BLANK and label != previous:
            found.append(frame)
        previous = label
    return found


def number_in(frames: np.ndarray) -> str:
    """The number the reader read in one line's (FRAMES, 11) probabilities."""
    return "".join(str(int(frames[frame].argmax())) for frame in digit_frames(frames))


def log_likelihood(frames: np.ndarray, number: str) -> float:
    """log P(number | frames) under CTC for one line's (FRAMES, 11) probabilities: the sum over every path of
    a label per frame that reads `number` (repeats merged, then blanks dropped) of its probability, by the
    forward algorithm over the number's digits with a blank before, between and after them."""
    labels = np.full(2 * len(number) + 1, BLANK)
    labels[1::2] = [int(digit) for digit in number]
    logs = np.log(np.maximum(frames[:, labels], 1e-30))
    # A path may skip the blank between two digits, unless they are the same digit (it would merge them).
    skips = np.zeros(len(labels), bool)
    skips[2:] = (labels[2:] != BLANK) & (labels[2:] != labels[:-2])
    paths = np.full(len(labels), -np.inf)  # log-probability of the paths so far that end in each label
    paths[:2] = logs[0, :2]
    for frame in logs[1:]:
        reached = paths.copy()  # staying on a label, moving on to the next, or skipping a blank
        reached[1:] = np.logaddexp(reached[1:], paths[:-1])
        reached[skips] = np.logaddexp(reached[skips], paths[:-2][skips[2:]])
        paths = reached + frame
    return float(np.logaddexp.reduce(paths[-2:]))
