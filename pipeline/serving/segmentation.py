"""Where the digits of a whole number end, decided by the recognizer: segmentation by recognition.

Digits written in a row touch, overlap and break, so no rule about ink can say
where one ends. Instead the number's ink is cut too finely into segments: its
marks (`images.digit_masks`), and each mark wide enough to hold several digits
cut again near the columns where it holds least ink. Each such cut bends
(`seams`): it runs from top to bottom through the least ink it can, so that it
passes between a digit and a neighbour that leans into its columns. Every run
of up to `MAX_SPAN` consecutive segments is a candidate digit, within a mark or
across marks less than `JOIN_GAP` apart (a digit drawn in strokes that do not
meet: a 5 whose bar floats); the network reads every candidate in one batch,
and dynamic programming chooses the reading, segments left to right, whose
candidates the network is surest of, with a cost for a candidate narrower or
wider than its digit ever is in MNIST (Casey and Lecolinet's survey, 1996,
calls this over-segmentation and recognition-based dissection).

The cuts stay near upright, so a number written or photographed at a
slant is first levelled (`levelled`): turned by the angle of its ink's long
axis, so that digits that touch meet side by side rather than one above the
other; the boxes are turned back into the image's pixels.

    found = candidates(gray, scale)                # raises images.NotADigit
    rows = probabilities_of(np.stack([c.digit.image for c in found.pieces]))
    chosen = best_reading(found, rows)             # indices into found.pieces
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.serving import images

MAX_SPAN = 5  # segments one digit may be made of
NARROWEST = 0.15  # of the digits' height: a segment, or where it is cut, is no narrower
WIDEST_SEGMENT = 0.35  # of the digits' height: wider segments are cut again
CUT_FROM = 0.8  # of the digits' height: marks wider than this may be several digits, and are cut
JOIN_GAP = 0.5  # of the digits' height: marks nearer than this may be one digit drawn in pieces
# Each digit's width in its height, in MNIST's training digits: the 1st and the 99th percentile.
NARROWEST_DIGITS = np.array([0.55, 0.15, 0.55, 0.45, 0.5, 0.5, 0.4, 0.45, 0.45, 0.4])
WIDEST_DIGITS = np.array([1.43, 0.95, 1.67, 1.25, 1.25, 1.67, 1.18, 1.25, 1.25, 1.05])
WIDTH_COST = 8.0  # log-probability a candidate pays per height it is narrower or wider than its digit can be
# Of the digits' height: a run of segments wider than any digit can be by more than a quarter of a height pays
# more than a quarter of WIDTH_COST for it, as any digit, and is not made a candidate. On the development
# numbers a bound as low as 1.42 heights changed no answer; this one leaves out one candidate in fifteen.
WIDEST_CANDIDATE = float(WIDEST_DIGITS.max()) + 0.25
SEAM_STRAY = 1.0  # ink a cut may cross, per row, rather than stray a digit's height from its column
DIGITS = 10
LEVEL_FROM = 2.0  # degrees: a number at a smaller slant is read as it is
LEVEL_UP_TO = 20.0  # degrees: a larger angle is not a row's slant, and is left alone
LONG_FROM = 1.5  # the ink's width in its height: narrower ink is no row of digits, and is not levelled


@dataclass(frozen=True)
class Piece:
    first: int  # the segments it is made of: first to last, inclusive
    last: int
    digit: images.Digit


@dataclass(frozen=True)
class Candidates:
    segments: int
    pieces: list[Piece]


@dataclass(frozen=True)
class NumberInk:
    """A number's ink, cleaned up as a digit's is, and levelled: what both ways of reading it start from."""

    ink: images.Ink
    level: Levelled


def number_ink(gray: np.ndarray, scale: float = 1.0) -> NumberInk:
    """The ink of a number in a grayscale image, levelled; raises images.NotADigit if it holds none.

    A level number's ink is reduced to at most the height at which a digit's strokes are
    measured (`images.STROKE_SCALE` boxes), so that its candidates are cut and prepared from
    fewer pixels, and a one-digit candidate is not reduced again on its own, then cropped to
    where it inks; a number at a slant is turned and cut at the size it came. `scale` is `gray`'s
    pixels per pixel of the original image, for the boxes.
    """
    ink = images.ink_of(gray, scale)
    images.refuse_non_digits(ink.map, images.MAX_MARKS * 4, "a number")
    level = levelled(ink.map)
    if level.angle:
        return NumberInk(ink, level)
    ink = images.inked_part(images.within_height(ink, images.STROKE_SCALE * images.BOX))
    return NumberInk(ink, replace(level, map=ink.map))


def candidates(gray: np.ndarray, scale: float = 1.0) -> Candidates:
    """Every candidate digit in a grayscale image of a number; raises images.NotADigit if it holds none.

    `scale` is `gray`'s pixels per pixel of the original image, for the boxes.
    """
    return candidates_in(number_ink(gray, scale))


def candidates_in(number: NumberInk) -> Candidates:
    """Every candidate digit in a number's ink."""
    ink, level, working_scale = number.ink, number.level, number.ink.scale
    # Boxes in the levelled ink's pixels first (scale 1), turned back into the image's below.
    ink = images.Ink(level.map, 1.0, ink.inverted) if level.angle else ink
    masks, marks, height = segments(ink.map)
    rows_of = [np.flatnonzero(mask.any(axis=1)) for mask in masks]
    columns_of = [np.flatnonzero(mask.any(axis=0)) for mask in masks]
    pieces = []
    for first in range(len(masks)):
        top = left = np.inf
        bottom = right = -np.inf  # the run's ink so far
        for last in range(first, min(first + MAX_SPAN, len(masks))):
            if last > first and marks[last] != marks[last - 1] and columns_of[last][0] - right > JOIN_GAP * height:
                break  # marks far apart are digits apart
            # Bent cuts: a segment may reach further left or right than the ones after or before it.
            top, bottom = min(top, rows_of[last][0]), max(bottom, rows_of[last][-1])
            left, right = min(left, columns_of[last][0]), max(right, columns_of[last][-1])
            if last > first and right + 1 - left > WIDEST_CANDIDATE * height:
                break  # and wider still with every segment more
            # Cropped to the segments' rows and columns before anything is measured: big photos stay quick.
            rows, columns = slice(top, bottom + 1), slice(left, right + 1)
            union = np.any([mask[rows, columns] for mask in masks[first : last + 1]], axis=0)
            digit = images.digit_from(ink, ink.map[rows, columns] * union, (rows.start, columns.start))
            if level.angle:
                digit = replace(digit, box=level.box_in_image(digit.box, working_scale))
            pieces.append(Piece(first, last, digit))
    return Candidates(len(masks), pieces)


@dataclass(frozen=True)
class Levelled:
    """Ink turned by `angle` degrees (counterclockwise, as seen) about its centre, onto a frame that holds it all."""

    map: np.ndarray
    angle: float  # 0: not turned
    centre: np.ndarray  # (row, column) of the turn, in the ink as it was
    new_centre: np.ndarray  # and where it lands in `map`

    def box_in_image(self, box: tuple, scale: float) -> tuple:
        """A box (x, y, width, height) in `map`'s pixels as the upright box around it in the image's
        pixels (of which the ink had `scale` per pixel)."""
        x, y, width, height = box
        corners = np.array([(y, x), (y, x + width), (y + height, x), (y + height, x + width)], np.float64)
        back = (corners - self.new_centre) @ rotation(self.angle) + self.centre  # the inverse turn: R.T
        top, left = back.min(axis=0)
        bottom, right = back.max(axis=0)
        return tuple(int(round(value / scale)) for value in (left, top, right - left, bottom - top))


def rotation(angle: float) -> np.ndarray:
    """The matrix turning (row, column) vectors by `angle` degrees counterclockwise as the image is seen."""
    radians = np.radians(angle)
    cos, sin = np.cos(radians), np.sin(radians)
    return np.array([[cos, -sin], [sin, cos]])


def levelled(ink: np.ndarray) -> Levelled:
    """The ink of a number turned so that its long axis (the ink's weighted principal axis) runs level.

    Ink no wider than `LONG_FROM` times its height, or at a slant outside
    `LEVEL_FROM`-`LEVEL_UP_TO` degrees, is returned as it is (angle 0).
    """
    from scipy import ndimage

    inked = ink > images.INK_FLOOR
    around = images.inked_rectangle(inked)
    unturned = Levelled(ink, 0.0, np.zeros(2), np.zeros(2))
    if around is None:
        return unturned
    height, width = (extent.stop - 1 - extent.start for extent in around)  # from the first inked pixel to the last
    if height < 1 or width < LONG_FROM * height:
        return unturned
    # The inked pixels looked for where there are any: the same coordinates, from fewer pixels.
    rows, columns = np.nonzero(inked[around])
    rows, columns = rows + around[0].start, columns + around[1].start
    weights = ink[rows, columns].astype(np.float64)
    centre = np.array([np.average(rows, weights=weights), np.average(columns, weights=weights)])
    spread = np.cov(np.stack([columns, rows]), aweights=weights)
    # Rows grow downwards: a long axis that falls to the right has a positive angle here, so the ink
    # is turned counterclockwise as seen, by that angle, to level it.
    angle = float(np.degrees(0.5 * np.arctan2(2 * spread[0, 1], spread[0, 0] - spread[1, 1])))
    if not LEVEL_FROM <= abs(angle) <= LEVEL_UP_TO:
        return unturned
    # Only the ink's own rectangle, faint edges and all, is turned: a photo's empty paper would cost time.
    kept = images.inked_rectangle(ink)
    crop = ink[kept]
    crop_centre = centre - (kept[0].start, kept[1].start)
    turn = rotation(angle)
    height, width = crop.shape
    corners = np.array([(0, 0), (0, width), (height, 0), (height, width)], np.float64) - crop_centre
    turned = corners @ turn.T
    new_centre = 1 - turned.min(axis=0)  # a pixel of margin
    shape = tuple(int(np.ceil(extent)) + 3 for extent in np.ptp(turned, axis=0))
    # affine_transform maps each output pixel o to the input pixel turn.T @ (o - new_centre) + crop_centre.
    output = ndimage.affine_transform(
        crop, turn.T, offset=crop_centre - turn.T @ new_centre, output_shape=shape, order=1, cval=0.0
    )
    return Levelled(output.astype(np.float32), angle, centre, new_centre)


def segments(ink: np.ndarray) -> tuple[list[np.ndarray], list[int], int]:
    """The number's ink as boolean masks, left to right, each a digit or part of one; for each, the mark
    (`images.digit_masks`) it was cut from; and the digits' height."""
    from scipy import ndimage

    masks = images.digit_masks(ink)
    height = max(int(np.ptp(np.nonzero(mask)[0])) + 1 for mask in masks)
    cut, marks = [], []
    for mark, mask in enumerate(masks):
        columns = np.nonzero(mask.any(axis=0))[0]
        left, right = int(columns.min()), int(columns.max()) + 1
        if right - left <= CUT_FROM * height:
            cut.append(mask)
            marks.append(mark)
            continue
        inked = np.flatnonzero(mask.any(axis=1))
        top, bottom = int(inked[0]), int(inked[-1]) + 1
        weight = (ink * mask)[top:bottom, left:right]
        profile = ndimage.uniform_filter1d(weight.sum(axis=0), max(1, height // 20))
        cuts = cut_columns(profile, round(NARROWEST * height), round(WIDEST_SEGMENT * height))
        bounds = [
            np.zeros(bottom - top, int),
            *seams(weight, cuts, height),
            np.full(bottom - top, right - left),
        ]
        within = np.arange(right - left)
        for start, stop in zip(bounds, bounds[1:]):
            part = np.zeros_like(mask)
            part[top:bottom, left:right] = (
                mask[top:bottom, left:right] & (within >= start[:, None]) & (within < stop[:, None])
            )
            if part.any():
                cut.append(part)
                marks.append(mark)
    return cut, marks, height


def seams(weight: np.ndarray, columns: list[int], height: int) -> list[np.ndarray]:
    """For each cut, a boundary between columns of `weight` (the ink of one mark), where it runs in each row.

    A cut is the path from top to bottom, moving at most a column per row, that parts the least ink: the
    pixel just right of it in each row, and where it steps aside the diagonal it steps across. It pays
    `SEAM_STRAY` per row for each digit's height it strays from its column, and keeps to its side of
    halfway to its neighbours' columns, so that cuts never cross: the cuts' stretches tile the row, and all
    of them are found in one pass.
    """
    if not columns:
        return []
    # The pixels left and right of each boundary, and right of the next one (0 past the edges).
    padded = np.pad(weight, ((0, 0), (1, 2)))
    left_of, right_of, right_of_next = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
    boundaries = np.arange(weight.shape[1] + 1)
    stretch = np.searchsorted([(a + b) / 2 for a, b in zip(columns, columns[1:])], boundaries, side="right")
    cost = right_of + SEAM_STRAY * np.abs(boundaries - np.asarray(columns)[stretch]) / height
    apart = np.flatnonzero(np.diff(stretch))  # b and b + 1 are different cuts' stretches
    # Stepping aside to b in a row parts the pixel right of b in the row above from the one beside b in that
    # row on the side it came from; no cut steps into another's stretch.
    from_left = np.minimum(right_of[:-1], left_of[1:])  # by row from the second: to b from b - 1
    from_right = np.minimum(right_of[:-1], right_of_next[1:])  # and to b from b + 1
    from_left[:, apart + 1] = from_right[:, apart] = np.inf
    total = cost[0]
    beside = np.full(len(total) + 2, np.inf)  # the totals so far, one boundary either way past the edges
    steps = np.ones(cost.shape, np.intp)  # 0, 1, 2: it came from the boundary left of it, itself, right of it
    for row in range(1, len(cost)):
        beside[1:-1] = total
        came = np.stack([beside[:-2] + from_left[row - 1], total, beside[2:] + from_right[row - 1]])
        steps[row] = came.argmin(axis=0)
        total = came.min(axis=0) + cost[row]
    ends = [0, *(apart + 1), len(boundaries)]
    paths = np.zeros((len(columns), len(cost)), np.intp)
    paths[:, -1] = [low + np.argmin(total[low:high]) for low, high in zip(ends, ends[1:])]
    for row in range(len(cost) - 1, 0, -1):
        paths[:, row - 1] = paths[:, row] + steps[row, paths[:, row]] - 1
    return list(paths)


def cut_columns(profile: np.ndarray, narrowest: int, widest: int) -> list[int]:
    """The columns where a mark may be cut: the local minima of its ink, deepest first, `narrowest` apart;
    then, in any stretch still wider than `widest` (digits that overlap leave no minimum), its thinnest column."""
    from scipy import ndimage

    narrowest = max(1, narrowest)
    widest = max(widest, 2 * narrowest)  # so that a stretch wider than it has a column to cut at
    lowest = ndimage.minimum_filter1d(profile, 2 * narrowest + 1, mode="nearest")  # over `narrowest` each way
    inner = np.arange(narrowest, len(profile) - narrowest)
    minima = inner[profile[inner] <= lowest[inner]]
    chosen: list[int] = []
    for column in sorted(minima, key=lambda column: profile[column]):
        if all(abs(column - other) >= narrowest for other in chosen):
            chosen.append(int(column))
    edges = [0, *sorted(chosen), len(profile)]
    stretch = 0
    while stretch < len(edges) - 1:
        start, stop = edges[stretch], edges[stretch + 1]
        if stop - start <= widest:
            stretch += 1
            continue
        middle = profile[start + narrowest : stop - narrowest]
        edges.insert(stretch + 1, start + narrowest + int(np.argmin(middle)))
    return edges[1:-1]


def judged(rows: np.ndarray, piece_rows: np.ndarray) -> np.ndarray:
    """The candidates' rows with each digit's probability the geometric mean of the classifier's (`rows`) and
    a piece network's (`piece_rows`: ten digits, then "not one digit"): a candidate the piece network takes
    for two digits run together, or for part of one, is unlikely as any digit."""
    combined = np.array(rows, dtype=np.float64)
    combined[:, :DIGITS] = np.sqrt(combined[:, :DIGITS] * np.asarray(piece_rows, dtype=np.float64)[:, :DIGITS])
    return combined


def best_reading(found: Candidates, rows: np.ndarray) -> list[int]:
    """The pieces, left to right, that cover every segment once and that the network is surest are digits."""
    rows = np.asarray(rows, dtype=np.float64)
    # Each piece's width in its own height, as NARROWEST_DIGITS and WIDEST_DIGITS are.
    widths = np.array([piece.digit.box[2] / piece.digit.box[3] for piece in found.pieces])[:, None]
    misfit = np.maximum(NARROWEST_DIGITS - widths, 0) + np.maximum(widths - WIDEST_DIGITS, 0)
    scores = (np.log(np.maximum(rows[:, :DIGITS], 1e-12)) - WIDTH_COST * misfit).max(axis=1)
    best = np.full(found.segments + 1, -np.inf)
    best[0] = 0.0
    came_from = [-1] * (found.segments + 1)
    for index, piece in enumerate(found.pieces):  # pieces come ordered by their first segment
        total = best[piece.first] + scores[index]
        if total > best[piece.last + 1]:
            best[piece.last + 1], came_from[piece.last + 1] = total, index
    chosen, end = [], found.segments
    while end > 0:
        chosen.append(came_from[end])
        end = found.pieces[came_from[end]].first
    return chosen[::-1]
