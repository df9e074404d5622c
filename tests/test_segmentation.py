"""Reading whole numbers: candidate cuts scored by a recognizer, the best reading chosen.

Numbers are composed from MNIST test digits whose boxes are known, spaced,
touching and overlapping. A stand-in recognizer that knows those boxes checks
that the right cut is always among the candidates and that the best reading is
chosen; a trained network then reads the same kinds of numbers.
"""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.serving import images, reading, segmentation

GAPS = {"spaced": 12, "almost touching": 2, "touching": 0, "overlapping": -3}  # pixels of 28


def written_number(mnist, indices, gap, height=200):
    """MNIST test digits in a row (each trimmed to its ink, `gap` pixels apart, or each gap its own from a list;
    below 0 they overlap), dark on paper lit from one side; returns the paper and each digit's (left, right)."""
    gaps = list(gap) if np.ndim(gap) else [gap] * (len(indices) - 1)
    pieces = []
    for index in indices:
        digit = mnist.test_images[index] / 255.0
        used = np.nonzero(digit.max(axis=0) > 0)[0]
        pieces.append(digit[:, used.min() : used.max() + 1])
    width = sum(piece.shape[1] for piece in pieces) + sum(gaps) + 40
    strip, spans, left = np.zeros((28, width)), [], 20
    for piece, after in zip(pieces, [*gaps, 0]):
        strip[:, left : left + piece.shape[1]] = np.maximum(strip[:, left : left + piece.shape[1]], piece)
        spans.append((left, left + piece.shape[1]))
        left += piece.shape[1] + after
    scale = height / 28
    big = np.asarray(
        Image.fromarray(strip.astype(np.float32), mode="F").resize(
            (round(strip.shape[1] * scale), height), Image.Resampling.BILINEAR
        )
    )
    paper = (0.9 - 0.2 * np.linspace(0, 1, big.shape[1])[None, :]) * (1 - 0.9 * np.clip(big, 0, 1))
    return paper.astype(np.float32), [(left * scale, right * scale) for left, right in spans]


def knowing(spans, labels):
    """A stand-in recognizer for one number: sure of a piece whose columns are a digit's, unsure of the rest."""

    def rows(found):
        scored = []
        for piece in found.pieces:
            x, _, width, _ = piece.digit.box
            overlaps = [min(x + width, right) - max(x, left) for left, right in spans]
            unions = [max(x + width, right) - min(x, left) for left, right in spans]
            best = int(np.argmax(np.array(overlaps) / np.array(unions)))
            sure = overlaps[best] / unions[best] > 0.8
            row = np.full(10, 0.02 if sure else 0.5 / 9)
            row[labels[best]] = 0.82 if sure else 0.5
            scored.append(row)
        return np.array(scored)

    return rows


@pytest.mark.parametrize("count", [1, 3, 12])
# Overlapping: strokes that cross leave no cut that parts them.
@pytest.mark.parametrize("spacing", ["spaced", "almost touching", "touching"])
def test_the_right_cut_is_among_the_candidates_and_chosen(mnist, spacing, count):
    indices = list(range(10, 10 + count))
    paper, spans = written_number(mnist, indices, GAPS[spacing])
    found = segmentation.candidates(paper)
    chosen = segmentation.best_reading(found, knowing(spans, mnist.test_labels[indices])(found))
    boxes = [found.pieces[index].digit.box for index in chosen]
    assert len(boxes) == count
    for (x, _, width, _), (left, right) in zip(boxes, spans):
        assert abs(x - left) <= 20 and abs(x + width - right) <= 20, (boxes, spans)
    assert all(found.pieces[index].digit.inverted for index in chosen)


def test_a_tall_level_number_is_cut_from_ink_no_taller_than_strokes_are_measured_at(mnist):
    """A number 600 pixels high is cut from its ink reduced to 80 rows; the boxes are in the photo's pixels."""
    indices = [10, 11, 12]
    paper, spans = written_number(mnist, indices, GAPS["touching"], height=600)
    working = images.ink_of(paper)  # reduced to the working size: 600 pixels high is wider than that
    unreduced = np.flatnonzero(working.map.any(axis=1))
    number = segmentation.number_ink(paper)
    inked = np.flatnonzero(number.ink.map.any(axis=1))
    assert inked[-1] + 1 - inked[0] <= images.STROKE_SCALE * images.BOX
    reduction = images.STROKE_SCALE * images.BOX / (unreduced[-1] + 1 - unreduced[0])
    assert number.ink.scale == pytest.approx(working.scale * reduction, rel=0.02)
    found = segmentation.candidates_in(number)
    chosen = segmentation.best_reading(found, knowing(spans, mnist.test_labels[indices])(found))
    boxes = [found.pieces[index].digit.box for index in chosen]
    assert len(boxes) == len(indices)
    for (x, _, width, _), (left, right) in zip(boxes, spans):
        assert abs(x - left) <= 60 and abs(x + width - right) <= 60, (boxes, spans)  # 20 at 200 pixels high


def test_a_piece_too_wide_for_one_digit_pays_for_it(mnist):
    """Two digits the recognizer takes for one wide one are read as two, from their widths alone."""
    paper, spans = written_number(mnist, [3, 10], GAPS["touching"])  # two 0s
    found = segmentation.candidates(paper)
    equally_sure = np.tile(np.eye(10)[0] * 0.9 + 0.01, (len(found.pieces), 1))
    chosen = segmentation.best_reading(found, equally_sure)
    assert len(chosen) == 2


def test_runs_far_wider_than_any_digit_are_not_candidates(mnist, monkeypatch):
    """Segments that together are wider than the widest digit by a whole height are not made a candidate."""
    paper, _ = written_number(mnist, list(range(10, 22)), GAPS["almost touching"])

    def widths_in_heights():
        boxes = np.array([piece.digit.box for piece in segmentation.candidates(paper).pieces])
        return boxes[:, 2] / boxes[:, 3].max()  # in the tallest candidate's height: a whole digit's

    assert widths_in_heights().max() <= segmentation.WIDEST_CANDIDATE
    monkeypatch.setattr(segmentation, "WIDEST_CANDIDATE", np.inf)
    assert widths_in_heights().max() > segmentation.WIDEST_DIGITS.max() + 1  # such runs exist without the rule


def five_in_two_strokes(bar: tuple[slice, slice]) -> np.ndarray:
    """A 5, 28 x 30, whose top bar (the rows and columns `bar`) is drawn apart from the rest (columns 3 to 13)."""
    five = np.zeros((28, 30), np.float32)
    five[bar] = 1.0  # the top bar, drawn as a stroke of its own
    five[7:14, 4:7] = 1.0  # the rest in one stroke: down,
    five[12:15, 4:14] = 1.0  # right,
    five[12:23, 11:14] = 1.0  # down
    five[20:23, 3:14] = 1.0  # and back left
    return five


def test_the_pieces_of_a_digit_stay_together():
    five = five_in_two_strokes(np.s_[3:6, 5:16])  # the bar over the rest
    paper = 1 - np.pad(np.concatenate([five, np.zeros((28, 6)), five], axis=1), 20)
    found = segmentation.candidates(paper.astype(np.float32))
    spans = [(23, 36), (59, 72)]
    chosen = segmentation.best_reading(found, knowing(spans, [5, 5])(found))
    assert [found.pieces[index].digit.box[1] for index in chosen] == [23, 23]  # each from its top bar down


def test_a_digit_drawn_in_pieces_side_by_side_is_one_candidate():
    """A 5 whose bar floats apart to the right of its body: two marks, neither half over the other."""
    five = five_in_two_strokes(np.s_[4:7, 16:25])  # two columns right of the rest
    paper = 1 - np.pad(np.concatenate([five, np.zeros((28, 8)), five], axis=1), 20)
    found = segmentation.candidates(paper.astype(np.float32))
    assert found.segments == 4
    spans = [(23, 45), (61, 83)]  # each five's columns in the paper, bar included
    chosen = segmentation.best_reading(found, knowing(spans, [5, 5])(found))
    boxes = [found.pieces[index].digit.box for index in chosen]
    assert len(boxes) == 2
    for (x, _, width, _), (left, right) in zip(boxes, spans):
        assert abs(x - left) <= 1 and abs(x + width - right) <= 1, (boxes, spans)


def test_a_cut_bends_around_digits_that_lean_into_each_other():
    """Three 1s leaning right, joined at the foot: each shares columns with its neighbours, so no upright
    cut parts them; cuts that bend through the gaps between their strokes do."""
    strokes = []
    for left in (44, 64, 84):  # 20 columns of lean over 80 rows, 20 apart
        picture = Image.new("L", (200, 100))
        ImageDraw.Draw(picture).line([(left + 20, 10), (left, 90)], fill=255, width=7)
        strokes.append(np.asarray(picture) > 0)
    joint = Image.new("L", (200, 100))
    ImageDraw.Draw(joint).line([(44, 89), (84, 89)], fill=255, width=2)
    ink = np.any([*strokes, np.asarray(joint) > 0], axis=0).astype(np.float32)
    masks, marks, _ = segmentation.segments(ink)
    assert marks == [0] * len(masks)  # one mark, cut
    runs = [
        np.any(masks[first:last], axis=0) for first in range(len(masks)) for last in range(first + 1, len(masks) + 1)
    ]
    for one in strokes:
        others = [other for other in strokes if other is not one]
        # Some run of segments holds all of this 1 and nothing of the others: upright cuts give none for any.
        assert any(np.mean(run[one]) > 0.99 and max(np.mean(run[other]) for other in others) < 0.01 for run in runs)


@pytest.mark.parametrize("mark", ["a speck of dust", "a faint stroke between the digits"])
def test_marks_far_lighter_than_a_digit_are_not_digits(mnist, mark):
    paper, spans = written_number(mnist, [10, 11], GAPS["spaced"])
    if mark == "a speck of dust":
        paper[5:8, 5:8] = 0.0
    else:
        gap = round(spans[0][1]) + 40
        paper[60:120, gap : gap + 3] = 0.6
    found = segmentation.candidates(paper)
    chosen = segmentation.best_reading(found, knowing(spans, mnist.test_labels[[10, 11]])(found))
    assert found.segments >= 2 and len(chosen) == 2


def test_a_digit_apart_from_digits_that_touch_is_no_stray_mark(mnist):
    """A 1 beside eight digits run together has far less ink than they have, but as much as one of them."""
    indices = [2, *range(10, 18)]
    paper, spans = written_number(mnist, indices, [GAPS["spaced"]] + [GAPS["overlapping"]] * 7)
    found = segmentation.candidates(paper)
    first = found.pieces[segmentation.best_reading(found, knowing(spans, mnist.test_labels[indices])(found))[0]]
    x, _, width, _ = first.digit.box
    assert abs(x - spans[0][0]) <= 20 and abs(x + width - spans[0][1]) <= 20, (first.digit.box, spans[0])


@pytest.mark.parametrize("height, width", [(2, 5), (3, 30)])
def test_a_tiny_flat_mark_is_read_without_failing(height, width):
    paper = np.ones((60, 80), np.float32)
    paper[28 : 28 + height, 10 : 10 + width] = 0.0
    found = segmentation.candidates(paper)
    chosen = segmentation.best_reading(found, np.full((len(found.pieces), 10), 0.1))
    assert chosen and sum(found.pieces[index].digit.box[2] for index in chosen) <= width + len(chosen)


def test_a_page_without_a_number_is_refused():
    with pytest.raises(images.NotADigit, match="no ink"):
        segmentation.candidates(np.ones((60, 200), np.float32))


@pytest.mark.parametrize("spacing", GAPS)
def test_a_network_reads_numbers_however_close_their_digits(mnist, reader, spacing):
    """Version 4 reads numbers of 1 to 7 digits; each digit's box and confidence come with the number."""
    rng = np.random.default_rng(list(GAPS).index(spacing))
    numbers = [rng.choice(len(mnist.test_labels), size=rng.integers(1, 8), replace=False) for _ in range(20)]
    papers = [images.Picture(written_number(mnist, indices, GAPS[spacing])[0]) for indices in numbers]
    answers = reading.answers(papers, ["number"] * len(papers), reader, threshold=0.0)
    expected = ["".join(map(str, mnist.test_labels[indices])) for indices in numbers]
    right = np.mean([answer["number"] == number for answer, number in zip(answers, expected)])
    for answer in answers:
        assert answer["number"] is None or len(answer["digits"]) == len(answer["number"])
        boxes = [digit["box"] for digit in answer["digits"]]
        assert all(0 <= digit["confidence"] <= 1 for digit in answer["digits"])
        assert [box[0] for box in boxes] == sorted(box[0] for box in boxes)  # left to right
    # Measured with this network, which has no "not a digit" to say of a piece of a digit: 0.85, 0.8, 0.8, 0.25.
    assert right >= {"spaced": 0.7, "almost touching": 0.7, "touching": 0.6, "overlapping": 0.2}[spacing], list(
        zip(expected, [answer["number"] for answer in answers])
    )


def turned(paper, angle):
    """`paper` photographed at a slant: turned `angle` degrees counterclockwise, the corners filled with paper;
    returns the photo and a function mapping (x, y) in `paper` to the photo."""
    photo = Image.fromarray(paper, mode="F").rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0.8
    )
    radians = np.radians(angle)
    middle, new_middle = np.array(paper.shape[::-1]) / 2, np.array(photo.size) / 2

    def where(x, y):
        dx, dy = x - middle[0], y - middle[1]
        return (
            new_middle[0] + dx * np.cos(radians) + dy * np.sin(radians),
            new_middle[1] - dx * np.sin(radians) + dy * np.cos(radians),
        )

    return np.asarray(photo, np.float32), where


@pytest.mark.parametrize("angle", [-14, -7, 9, 15])
def test_a_number_at_a_slant_is_levelled_and_its_boxes_are_in_the_photos_pixels(mnist, reader, angle):
    indices = [3, 2, 1, 30, 4]  # 0, 1, 2, 3, 4: as wide as digits come and as narrow
    paper, spans = written_number(mnist, indices, GAPS["spaced"])
    photo, where = turned(paper, angle)
    level = segmentation.levelled(images.ink_of(photo).map)
    assert abs(level.angle + angle) < 2  # turned back by its slant: the ink's long axis
    (answer,) = reading.answers([images.Picture(photo)], ["number"], reader, threshold=0.0)
    assert answer["number"] == "".join(map(str, mnist.test_labels[indices]))
    for digit, (left, right) in zip(answer["digits"], spans):
        x, y, width, height = digit["box"]
        centre = where((left + right) / 2, paper.shape[0] / 2)
        assert x < centre[0] < x + width and y < centre[1] < y + height
        assert height < 1.6 * paper.shape[0]  # the box of one digit, not of the slanted row


def test_ink_no_wider_than_a_digit_or_without_a_slant_is_left_as_it_is(mnist):
    digit = np.asarray(Image.fromarray(mnist.test_images[0].astype(np.float32) / 255, mode="F").resize((140, 140)))
    assert segmentation.levelled(np.asarray(Image.fromarray(digit, mode="F").rotate(10))).angle == 0
    row = np.zeros((100, 400), np.float32)
    row[:, 180:220] = 1  # a bar taller than wide
    row[45:55, :] = 1  # crossed by a level line: no slant to correct
    assert segmentation.levelled(row).angle == 0
