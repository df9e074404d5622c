"""People's images of digits into the MNIST format: 28x28, white ink on black, the digit in a 20x20 box, centred.

MNIST digits were size-normalized to fit a 20x20 box (aspect ratio kept,
anti-aliased) and centred by their centre of mass in a 28x28 frame. A photo or
scan of a digit is none of that, so `read` decodes any image Pillow can read
into a grayscale Picture, reduced while it is decoded to about the working size
(`WORKING_SIZE`), and `to_mnist` turns it into what the networks were trained on:

1. uneven light: the paper's brightness, a smooth surface fitted to the pixels
   that are not ink (`paper_of`), is subtracted, so no stroke is too broad to
   be kept;
2. polarity: ink is what stands out from the paper, darker (pen on paper) or
   lighter (chalk on a board), whichever weighs more, judged by contrast rather
   than brightness (a dim photo's paper is still paper); made white-on-black;
3. contrast: the strokes' brightness is stretched to 1, keeping the grey
   anti-aliased edges rather than binarizing, and faint paper texture is cut;
   a box drawn around the digit or number (a form's field) is not ink
   (`without_frame`);
4. crop to the ink's marks (dust left out), narrow one digit wider for its
   height than nearly all of MNIST's, even out strokes far bolder or finer
   than MNIST's, downscale with an anti-aliasing filter to fit 20x20 keeping
   the aspect ratio, and centre by centre of mass in 28x28.

An image that cannot hold one digit is refused with `NotADigit` and a short
reason: no ink, ink touching all four borders or covering nearly half the image
(a texture or a photo, not a digit on a background), or far too many separate
marks.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (decompression bombs)
WORKING_SIZE = 1024  # the longest side images are reduced to before the cleanup steps
BOX = 20
SIZE = 28
INK_FLOOR = 0.2  # of the strokes' brightness: darker pixels are background texture
MAX_MARKS = 12  # separate marks of ink (specks aside) that one digit may be made of
MAX_COVER = 0.45  # of the image: more ink than that is not a digit on a background
MIN_CONTRAST = 0.1  # between ink and paper, of the full range: less is a blank page
PAPER_SAMPLES = 64  # the paper's light is fitted on the image reduced to about this many pixels a side
PAPER_ROUNDS = 5  # fits, each leaving out what is far from the last
PAPER_TOLERANCE = 0.02  # of the full range: pixels this close to the fit (beyond the noise) are paper
SPECK_MASS = 0.02  # of the ink: a mark with less is dust, left out of the crop
FRAME_SIDE = 0.9  # of each side of the ink's rectangle: a mark inked along that much of all four may be a frame ...
FRAME_BAND = 0.08  # ... within this much of the rectangle's longer side of them (a tilted line strays by its length)
STROKE_SCALE = 4  # crops are reduced to at most this many times the box before strokes are measured
REDUCING_GAP = 3.0  # Pillow's: a reduction by twice this or more is first made by whole pixels (`Image.reduce`)
# MNIST's strokes are 2.8 pixels wide in the 20-pixel box (median; 90 % are between 2.1 and 4.4):
BOLDEST = 4.5  # box pixels: strokes bolder than this are thinned ...
THINNED_WIDTH = 3.3  # ... to about this (MNIST's upper quartile)
FINEST = 1.8  # and strokes finer than this thickened ...
THICKENED_WIDTH = 2.4  # ... to about this (MNIST's lower quartile)
WIDEST = 1.25  # width per height: one digit's ink wider than this is narrowed to it (so are 1.4 % of MNIST's)
STRAY_MASS = 0.12  # of the heaviest digit's ink: a group of marks with less is not a digit
# Pixels that touch, by an edge or a corner, are one mark: `ndimage.label`'s structure, made once (as a boolean
# array scipy takes it as it is; made per call, it nearly doubles the time of labelling a candidate).
TOUCHING = np.ones((3, 3), bool)


class ImageError(ValueError):
    """A file that cannot be read as an image, with the reason in one line."""


class NotADigit(ValueError):
    """An image that was read but cannot hold one digit; the message is the short reason."""


@dataclass(frozen=True)
class Digit:
    image: np.ndarray  # (28, 28) float32 in [0, 1], white on black: what the model sees
    box: tuple  # (x, y, width, height) of the ink, in the original image's pixels
    inverted: bool  # whether the original was dark ink on a light background


@dataclass(frozen=True)
class Picture:
    """A decoded image: grayscale, float32 in [0, 1], 0 = black."""

    gray: np.ndarray
    scale: float = 1.0  # its pixels per pixel of the file: less than 1 when it was reduced while decoded


def read(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> Picture:
    """Decode a path or bytes into a grayscale Picture, EXIF orientation applied.

    An image larger than the working size is reduced while it is decoded, to
    between one and two times that size (a JPEG by decoding fewer of its
    frequencies, Pillow's `draft`; any other by `reduce`), so no more than the
    file's own pixels, and at most `max_pixels`, are ever held at once.
    """
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageError("empty file")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width == 0 or height == 0:
            raise ImageError(f"the image has no pixels ({width} x {height})")
        if width * height > max_pixels:
            raise ImageError(f"{width} x {height} pixels is more than the limit of {max_pixels:,}")
        image.seek(0)  # the first frame of an animation
        factor = max(width, height) // WORKING_SIZE
        if factor > 1 and image.format == "JPEG":
            image.draft("L", (-(-width // factor), -(-height // factor)))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        if max(image.size) >= 2 * WORKING_SIZE:
            image = image.reduce(max(image.size) // WORKING_SIZE)
        return Picture(grayscale(image), max(image.size) / max(width, height))
    except UnidentifiedImageError:
        raise ImageError("not an image (Pillow cannot identify its format)") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"too many pixels: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"truncated or corrupt image: {error}") from None


def grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to float32 luminance in [0, 1]; transparency is composited on paper (`paper_behind`)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        # 16-bit files are 0-65535; 32-bit integer images are usually 8- or 16-bit data.
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / top, 0, 1).astype(np.float32)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        span = values.max() - values.min()
        return ((values - values.min()) / span if span else np.zeros_like(values)).astype(np.float32)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, paper_behind(rgba)), rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def paper_behind(rgba: Image.Image) -> tuple[int, int, int, int]:
    """The colour transparent pixels show: white, unless hardly anything painted is dark (white or pale strokes
    on a transparent canvas, not a page of paper and ink), which then shows on black."""
    alpha = np.asarray(rgba.getchannel("A"))
    if alpha.min() < 255:
        painted = np.asarray(rgba.convert("L"))[alpha >= 128]  # luminance, the alpha left out
        if painted.size and np.count_nonzero(painted < 128) < 0.01 * painted.size:
            return (0, 0, 0, 255)
    return (255, 255, 255, 255)


@dataclass(frozen=True)
class Ink:
    """An image's ink, white on black, cleaned (steps 1-3), at the working resolution."""

    map: np.ndarray  # float32 in [0, 1]
    scale: float  # working pixels per original pixel (1, or less for large images)
    inverted: bool
    origin: tuple[int, int] = (0, 0)  # (row, column) of the map's top left in the working image: 0, 0 but for a crop


def ink_of(gray: np.ndarray, scale: float = 1.0) -> Ink:
    """Steps 1-3 of the module's list; raises NotADigit if there is no ink.

    `scale` is `gray`'s pixels per pixel of the original image, for the boxes.
    """
    height, width = gray.shape
    reduction = min(1.0, WORKING_SIZE / max(height, width))
    working = gray
    if reduction < 1:
        working = resized(gray, (max(1, round(width * reduction)), max(1, round(height * reduction))))
    scale *= reduction

    # Ink is what stands out from the paper, darker or lighter: the side whose outliers weigh more.
    difference = working - paper_of(working)
    spread = noise_of(difference[::2, ::2])  # every other pixel each way: the same spread, a quarter of the work
    dark = float(np.clip(-difference - 3 * spread, 0, None).sum())
    light = float(np.clip(difference - 3 * spread, 0, None).sum())
    inverted = dark > light
    ink = np.clip(-difference if inverted else difference, 0, None)

    # The strokes' brightness: the brightest ink once isolated specks are filtered out.
    peak = brightest_stroke(ink)
    if peak < MIN_CONTRAST:
        raise NotADigit("no ink: the image is blank or has too little contrast")
    ink = np.clip((ink / peak - INK_FLOOR) / (1 - INK_FLOOR), 0, 1).astype(np.float32)
    unframed = without_frame(ink)
    if unframed is not ink:  # the strokes' brightness is the digit's, not the frame's
        ink = np.clip(unframed / max(brightest_stroke(unframed), MIN_CONTRAST), 0, 1)
    return Ink(ink, scale, inverted)


def without_frame(ink: np.ndarray) -> np.ndarray:
    """`ink` without a box drawn around the rest of it (a form's field, a frame around a number), or `ink`
    itself: a mark along all four sides and in all four corners of the strong ink's rectangle, in straight
    lines (`frame_lines`), holding more than dust and nearly all the other ink. Writing that touches the box
    is one mark with it, and keeps what is not the box's lines."""
    strong = ink > 0.5
    inked = inked_rectangle(strong)
    if inked is None:
        return ink
    box = strong[inked]
    band = min(round(FRAME_BAND * max(box.shape)), min(box.shape) // 4)  # a quarter of the way in at most
    if band < 2 or not along_the_sides(box, band):  # most images: no frame, and no labelling
        return ink
    from scipy import ndimage

    labels, _ = ndimage.label(ink > 0, structure=TOUCHING)
    marks = labels[inked]
    inside = np.zeros(box.shape, bool)
    inside[band:-band, band:-band] = True
    frame = np.bincount(marks[box & ~inside]).argmax()  # the mark with the most strong ink near the sides
    mark = (marks == frame) & box
    whole = labels == frame
    if not along_the_sides(mark, band) or on_every_border(whole & strong):  # the guards' texture or picture
        return ink
    drawn = frame_lines(marks == frame, mark, band)
    if not drawn.any():
        return ink
    # What is left of the mark is writing where it reaches inside, the lines' grey edges and corners where not.
    left, _ = ndimage.label((marks == frame) & ~drawn, structure=TOUCHING)
    writing = np.unique(left[mark & inside])
    lines = whole.copy()  # outside the rectangle: the lines' grey edges
    lines[inked] = (marks == frame) & ~np.isin(left, writing[writing > 0])
    unframed = np.where(lines, 0, ink)
    held = float(unframed[inked].sum())  # what the frame holds: more than dust, and nearly all that is left
    return unframed if held > SPECK_MASS * ink.sum() and held >= (1 - SPECK_MASS) * unframed.sum() else ink


def frame_lines(mark: np.ndarray, strong: np.ndarray, band: int) -> np.ndarray:
    """The pixels of `mark` (a frame and what touches it, cropped to the frame's rectangle) that are the
    frame's four lines: along each side, in each column (row), the run of `strong` ink that starts within
    `band` of the side, as thick as the side's thinner runs (where writing touches the line, its run is
    longer), and a pixel past it. Nothing unless on every side the runs start along a straight line, are at
    most twice `band` thick and have paper past them along most of the side: not a bold stroke, the tops of
    a row of digits, or the outline of a filled shape."""
    lines = np.zeros(mark.shape, bool)
    for side in (lambda a: a, lambda a: a[::-1], lambda a: a.T, lambda a: a.T[::-1]):  # top, bottom, left, right
        part, marked, near = side(lines), side(mark), side(strong)[: 3 * band]
        found = near[:band].any(axis=0)
        first = near[:band].argmax(axis=0)
        rows = np.arange(len(near))[:, None]
        after = (rows >= first) & ~near  # the first gap after the run's start ends the run
        ends = np.where(after.any(axis=0), after.argmax(axis=0), len(near))
        thickness = round(float(np.percentile((ends - first)[found], 25)))
        columns = np.flatnonzero(found)
        straight = np.polyval(np.polyfit(columns, first[found], 1), columns)
        within = marked[np.minimum(first[found] + 2 * thickness + 2, len(marked) - 1), columns]  # past its edge
        if (
            thickness > 2 * band
            or np.median(np.abs(first[found] - straight)) > max(1, thickness / 2)
            or within.mean() >= FRAME_SIDE
        ):
            return np.zeros(mark.shape, bool)
        rows = np.arange(len(marked))[:, None]
        part |= marked & found & (rows >= first - thickness) & (rows <= first + thickness)
    return lines


def along_the_sides(mark: np.ndarray, band: int) -> bool:
    """Whether `mark` runs along the four sides of its rectangle as a frame does: within `band` of each side
    along `FRAME_SIDE` of it (but for the `band` nearest each corner, where a tilted frame's other lines lie),
    and in all four corners (where a 0's or an oval's rectangle is empty)."""
    middle = slice(band, -band)
    sides = mark[:band, middle].any(axis=0), mark[-band:, middle].any(axis=0)
    sides += mark[middle, :band].any(axis=1), mark[middle, -band:].any(axis=1)
    corners = mark[:band, :band], mark[:band, -band:], mark[-band:, :band], mark[-band:, -band:]
    return min(side.mean() for side in sides) >= FRAME_SIDE and all(corner.any() for corner in corners)


def within_height(ink: Ink, rows: int) -> Ink:
    """The ink reduced (area-averaged, so no stroke gains a halo) until what it inks is at most `rows` high."""
    inked = np.flatnonzero(ink.map.any(axis=1))
    if not len(inked) or inked[-1] + 1 - inked[0] <= rows:
        return ink
    # A row less: averaging may spread the first and the last inked row into one more row each.
    reduction = (rows - 1) / (inked[-1] + 1 - inked[0])
    height, width = ink.map.shape
    size = (max(1, round(width * reduction)), max(1, round(height * reduction)))
    return Ink(resized(ink.map, size, Image.Resampling.BOX), ink.scale * reduction, ink.inverted)


def inked_part(ink: Ink) -> Ink:
    """The ink cropped to the rectangle of its inked pixels, its origin moved with it: a number's photo is
    mostly blank paper, and the steps after this one cost by the pixel. A last step: `within_height` and
    the like take whole maps."""
    inked = inked_rectangle(ink.map)
    if inked is None:
        return ink
    rows, columns = inked
    return Ink(ink.map[inked], ink.scale, ink.inverted, (ink.origin[0] + rows.start, ink.origin[1] + columns.start))


def inked_rectangle(image: np.ndarray) -> tuple[slice, slice] | None:
    """The rows and the columns of the smallest rectangle that holds every nonzero pixel of `image`; None if
    it has none."""
    rows, columns = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    if not len(rows):
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(columns[0]), int(columns[-1]) + 1)


def brightest_stroke(ink: np.ndarray) -> float:
    """The brightest ink but for specks: the highest 3x3 median, looked for only near the brighter pixels."""
    rows, columns = np.nonzero(ink > 0.3 * float(ink.max(initial=0)))
    if not len(rows):
        return 0.0
    near = ink[max(rows.min() - 1, 0) : rows.max() + 2, max(columns.min() - 1, 0) : columns.max() + 2]
    return float(median_3x3(near).max())


def median_3x3(image: np.ndarray) -> np.ndarray:
    """`scipy.ndimage.median_filter(image, size=3)`, the same values from a few array operations. With each
    column of three sorted, the median of nine is the middle one of the highest low, the middle middle and
    the lowest high of its three columns (borders mirrored, as scipy's)."""
    padded = np.pad(image, 1, mode="symmetric")
    above, centre, below = padded[:-2], padded[1:-1], padded[2:]
    low = np.minimum(np.minimum(above, centre), below)
    middle = middle_of(above, centre, below)
    high = np.maximum(np.maximum(above, centre), below)

    def columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return values[:, :-2], values[:, 1:-1], values[:, 2:]

    return middle_of(np.maximum.reduce(columns(low)), middle_of(*columns(middle)), np.minimum.reduce(columns(high)))


def middle_of(first: np.ndarray, second: np.ndarray, third: np.ndarray) -> np.ndarray:
    """The middle value of three, element by element."""
    return np.maximum(np.minimum(first, second), np.minimum(np.maximum(first, second), third))


def paper_of(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness under the ink: a smooth surface fitted to the pixels that are not ink.

    A quadratic in x and y (a light gradient, a vignette, a dim corner) fitted
    by least squares to a reduced copy of the image, leaving out, again and
    again, the pixels far from it on either side: strokes of any width, dark or
    light, are left out, so unlike a filter of some size it cannot take a broad
    stroke for light on the paper.
    """
    height, width = gray.shape
    factor = max(1.0, max(height, width) / PAPER_SAMPLES)
    sample = resized(gray, (max(1, round(width / factor)), max(1, round(height / factor))), Image.Resampling.BOX)
    design = quadratic_terms(sample.shape)
    values = sample.ravel().astype(np.float64)
    coefficients = np.array([median(values), 0, 0, 0, 0, 0])  # the paper is most of the image
    for _ in range(PAPER_ROUNDS):
        residual = values - design @ coefficients
        keep = np.abs(residual) <= 3 * noise_of(residual) + PAPER_TOLERANCE
        if keep.sum() < design.shape[1]:
            break
        kept = design[keep]
        coefficients = np.linalg.lstsq(kept.T @ kept, kept.T @ values[keep], rcond=None)[0]  # normal equations
    c = coefficients.astype(np.float32)
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height - 0.5)[:, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width - 0.5)[None, :]
    return c[0] + c[1] * x + c[3] * x * x + y * (c[2] + c[4] * x + c[5] * y)


@functools.lru_cache(maxsize=64)
def quadratic_terms(shape: tuple[int, int]) -> np.ndarray:
    """The terms of `paper_of`'s surface at each pixel of an image of `shape`, one row per pixel (read-only)."""
    # Coordinates from -0.5 to 0.5 across the image, at pixel centres: the same surface at any size.
    y, x = ((np.arange(side) + 0.5) / side - 0.5 for side in shape)
    y, x = np.meshgrid(y, x, indexing="ij")
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    terms.flags.writeable = False
    return terms


def noise_of(values: np.ndarray) -> float:
    """The spread of the paper's pixels around their level: a robust standard deviation (1.4826 x MAD)."""
    return float(1.4826 * median(np.abs(values - median(values))))


def median(values: np.ndarray) -> np.floating:
    """`np.median(values)`, the same value without its overhead, which is most of the time on small arrays."""
    flat, half = values.ravel(), values.size // 2
    if values.size % 2:
        return np.partition(flat, half)[half]
    low, high = np.partition(flat, (half - 1, half))[half - 1 : half + 1]
    return (low + high) / 2


def to_mnist(gray: np.ndarray, scale: float = 1.0) -> Digit:
    """The MNIST-format Digit in a grayscale image (0 = black); raises NotADigit, with the reason, if it holds none.

    `scale` is `gray`'s pixels per pixel of the original image, for the box.
    """
    ink = ink_of(gray, scale)
    refuse_non_digits(ink.map, MAX_MARKS, "one digit")
    return digit_from(ink, ink.map, widest=WIDEST)


def digit_masks(ink: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the marks of a number, left to right: groups of connected ink, each a digit or more.

    Pieces that overlap horizontally (the strokes of a 4 or a 5 drawn apart) are
    one group, specks and stray marks (far less ink than a digit) are dropped,
    and digits that almost touch stay apart as long as ink does not join them;
    digits that touch are one group, for `pipeline.serving.segmentation` to cut.
    """
    from scipy import ndimage

    labels, count = ndimage.label(ink > 0, structure=TOUCHING)
    pieces = [
        (slices[1].start, slices[1].stop, slices[0].start, slices[0].stop, number + 1)
        for number, slices in enumerate(ndimage.find_objects(labels))
    ]
    tallest = max(bottom - top for _, _, top, bottom, _ in pieces)
    # Specks: pieces much smaller than the tallest in both directions.
    pieces = [piece for piece in pieces if max(piece[1] - piece[0], piece[3] - piece[2]) >= tallest / 5]
    groups = []  # [left, right, [label numbers]]
    for left, right, _, _, number in sorted(pieces):
        if groups:
            last = groups[-1]
            overlap = min(right, last[1]) - max(left, last[0])
            if overlap > 0.5 * min(right - left, last[1] - last[0]):
                last[1] = max(last[1], right)
                last[2].append(number)
                continue
        groups.append([left, right, [number]])
    group_of = np.zeros(count + 1, np.intp)  # by label: its group's number, from 1; 0 for background and specks
    for number, (_, _, members) in enumerate(groups, 1):
        group_of[members] = number
    grouped = group_of[labels]
    masks = [grouped == number for number in range(1, len(groups) + 1)]
    # Stray marks: groups with far less ink than the heaviest digit (a 1 has about a third of an 8's).
    # A group as wide as several digits (digits that touch) is weighed per digit's width of it.
    masses = [float(ink[mask].sum()) for mask in masks]
    heaviest = max(mass / max(1.0, (right - left) / tallest) for mass, (left, right, _) in zip(masses, groups))
    return [mask for mask, mass in zip(masks, masses) if mass >= heaviest * STRAY_MASS]


def digit_from(ink: Ink, selected: np.ndarray, origin: tuple[int, int] = (0, 0), widest: float | None = None) -> Digit:
    """Step 4: crop `selected` (ink or part of it) to its marks, even out the strokes, fit in 20x20, centre in 28x28.

    `selected` may be a part of the ink's map whose top left corner is at `origin` (row, column) in it. With
    `widest`, a crop wider than that for its height is narrowed to it: a squat 4 or 7 that some hands and
    typefaces draw is read in MNIST's proportions. The pieces of numbers keep theirs, which tell one digit
    from two (`pipeline.serving.segmentation`).
    """
    selected = without_specks(selected)
    rows, columns = inked_rectangle(selected)
    crop = selected[rows, columns]
    if max(crop.shape) > STROKE_SCALE * BOX:
        crop = fit_in(crop, STROKE_SCALE * BOX)
    if widest and crop.shape[1] > widest * crop.shape[0]:
        crop = resized(crop, (round(widest * crop.shape[0]), crop.shape[0]))
    x, y = ink.origin[1] + origin[1] + columns.start, ink.origin[0] + origin[0] + rows.start  # in the working image
    box = tuple(int(round(value / ink.scale)) for value in (x, y, columns.stop - columns.start, rows.stop - rows.start))
    fitted = fit_in(normal_strokes(crop), BOX)
    # A fine pen in a large image comes out grey at 20x20: MNIST's strokes are white at their centre.
    fitted = np.clip(fitted / max(float(fitted.max()), MIN_CONTRAST), 0, 1)
    return Digit(centred(fitted), box, ink.inverted)


def without_specks(selected: np.ndarray) -> np.ndarray:
    """`selected` without the marks that hold almost none of its ink (dust, noise, light left on the paper)."""
    from scipy import ndimage

    labels, count = ndimage.label(selected > 0, structure=TOUCHING)
    if count < 2:
        return selected
    masses = np.bincount(labels.ravel(), weights=selected.ravel(), minlength=count + 1)
    kept = masses >= SPECK_MASS * masses[1:].sum()  # by label; label 0, the background, stays 0 either way
    return np.where(kept[labels], selected, 0) if kept[1:].any() else selected


def stroke_width(ink: np.ndarray) -> float:
    """The strokes' mean width in pixels: twice their ink over the length of their outline (0 for no ink)."""
    strong = ink > 0.5 * float(ink.max(initial=0))
    around = framed(strong, 1, 1)  # scipy's binary_erosion with its cross, borders outside, in four array operations
    outline = strong & ~(around[:-2, 1:-1] & around[2:, 1:-1] & around[1:-1, :-2] & around[1:-1, 2:])
    if not outline.any():
        return 0.0
    return 2 * float(ink.sum() / ink.max()) / int(outline.sum())


def normal_strokes(crop: np.ndarray) -> np.ndarray:
    """Strokes brought toward MNIST's width: a broad marker's thinned, so that 4s, 6s, 8s keep their holes,
    and a fine pen's in a large image thickened."""
    per_box = BOX / max(crop.shape)  # box pixels per crop pixel
    width = stroke_width(crop) * per_box
    if width > BOLDEST:
        radius, thicken = round((width - THINNED_WIDTH) / per_box / 2), False
    elif 0 < width < FINEST:
        radius, thicken = round((THICKENED_WIDTH - width) / per_box / 2), True
    else:
        return crop
    if radius < 1:
        return crop
    changed = over_disk(crop, radius, np.maximum if thicken else np.minimum)
    inked = inked_rectangle(changed > INK_FLOOR * changed.max(initial=0))
    return crop if inked is None else changed[inked]


def over_disk(image: np.ndarray, radius: int, extreme: np.ufunc) -> np.ndarray:
    """The image grown by `radius` pixels each side, each pixel its `extreme` (`np.maximum`: grey dilation;
    `np.minimum`: erosion) over the disk of `radius` around it, 0 outside the image: scipy's `grey_dilation` or
    `grey_erosion` of the image padded with that many zeros, footprint that disk, the same values. The disk is
    rows of extents; each extent is first taken along the rows (`maximum_filter1d`, `minimum_filter1d`), then
    the rows are combined: a few array operations, not one per pixel of the disk."""
    from scipy import ndimage

    along = ndimage.maximum_filter1d if extreme is np.maximum else ndimage.minimum_filter1d
    height = image.shape[0] + 2 * radius
    padded = framed(image, 2 * radius, radius)  # columns: the growth; rows: the growth and the disk's reach
    reaches = {}  # by half-width: the rows' extremes over that many pixels each side
    result = None
    for row in range(-radius, radius + 1):
        reach = math.isqrt(radius * radius - row * row)
        if reach not in reaches:
            reaches[reach] = along(padded, 2 * reach + 1, axis=1, mode="constant", cval=0.0)
        shifted = reaches[reach][radius + row : radius + row + height]
        result = shifted.copy() if result is None else extreme(result, shifted, out=result)
    return result


def framed(image: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """`image` in a frame of zeros (False), `rows` deep above and below and `columns` either side: `np.pad`'s
    result without its overhead, which is most of the time on small arrays."""
    height, width = image.shape
    frame = np.zeros((height + 2 * rows, width + 2 * columns), image.dtype)
    frame[rows : rows + height, columns : columns + width] = image
    return frame


def refuse_non_digits(ink: np.ndarray, max_marks: int, holding: str) -> None:
    """Raise NotADigit for ink that cannot be `holding` ("one digit", "a number") on a background."""
    from scipy import ndimage

    strong = ink > 0.5
    if on_every_border(strong):
        raise NotADigit("ink touches all four borders: a texture or a picture, not a digit on paper")
    if strong.mean() > MAX_COVER:
        raise NotADigit(f"ink covers {strong.mean():.0%} of the image: a texture or a picture, not a digit on paper")
    inked = inked_rectangle(strong)
    if inked is None:
        return
    # The marks are counted where there are any: the same marks, from a fraction of a photo's pixels.
    labels, count = ndimage.label(strong[inked])
    sizes = np.bincount(labels.ravel())[1:]
    speck = max(4, strong.size // 20000)  # pixels
    if (sizes > speck).sum() > max_marks:
        raise NotADigit(f"{(sizes > speck).sum()} separate marks: too many for {holding}")


def on_every_border(mark: np.ndarray) -> bool:
    return bool(mark[0].any() and mark[-1].any() and mark[:, 0].any() and mark[:, -1].any())


def resized(
    array: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """Resize a float array in [0, 1] to (width, height), with an anti-aliasing (Lanczos) filter by default.

    A crop fitted into the box (every digit's last step; a number's candidates are dozens of them) is
    resampled by Pillow's own Lanczos weights as two matrix products (`lanczos_weights`): the same pixels to
    float rounding, in a quarter of the time, since handing a crop to Pillow and back costs more than
    resampling it. Larger arrays and sizes, reductions that Pillow makes in two steps and other filters go
    through Pillow.
    """
    height, width = array.shape
    if (
        resample == Image.Resampling.LANCZOS
        and max(size) <= BOX
        and max(height, width) <= 2 * STROKE_SCALE * BOX
        and max(width / size[0], height / size[1]) < 2 * REDUCING_GAP
    ):
        pixels = np.asarray(array, np.float32)
        if size[0] != width:
            pixels = pixels @ lanczos_weights(width, size[0]).T
        if size[1] != height:
            pixels = lanczos_weights(height, size[1]) @ pixels
        return np.clip(pixels, 0, 1)
    # The pixels handed to Pillow and taken back as raw bytes: its own conversions cost more than the resizing.
    image = Image.frombuffer("F", (width, height), np.ascontiguousarray(array, np.float32), "raw", "F", 0, 1)
    pixels = np.frombuffer(image.resize(size, resample, reducing_gap=REDUCING_GAP).tobytes(), np.float32)
    return np.clip(pixels.reshape(size[1], size[0]), 0, 1)


@functools.cache
def lanczos_weights(size: int, new_size: int) -> np.ndarray:
    """The (new_size, size) matrix that resamples a line of `size` pixels to `new_size` as Pillow's Lanczos
    filter does (`precompute_coeffs` in its Resample.c): each new pixel a normalized, windowed sinc of the old
    ones within three of its widths (the new pixel's, where it is the wider). Cached, as making one costs as
    much as a resize: `resized` asks for at most 160 x 20 of them, about 11 MB if every one were asked for."""
    scale = size / new_size
    widening = max(scale, 1.0)
    support = 3.0 * widening
    centres = (np.arange(new_size) + 0.5) * scale
    low = np.maximum((centres - support + 0.5).astype(int), 0)  # truncated, as C's (int) cast does
    high = np.minimum((centres + support + 0.5).astype(int), size)
    old = np.arange(size)
    x = (old - centres[:, None] + 0.5) / widening
    within = (old >= low[:, None]) & (old < high[:, None]) & (x >= -3) & (x < 3)
    weights = np.sinc(x) * np.sinc(x / 3) * within
    total = weights.sum(axis=1, keepdims=True)
    weights = np.divide(weights, total, out=weights, where=total != 0).astype(np.float32)
    weights.flags.writeable = False  # shared by every call
    return weights


def fit_in(crop: np.ndarray, side: int) -> np.ndarray:
    """Scale the ink to fit side x side, keeping its aspect ratio."""
    height, width = crop.shape
    factor = side / max(height, width)
    return resized(crop, (max(1, round(width * factor)), max(1, round(height * factor))))


def centred(fitted: np.ndarray) -> np.ndarray:
    """Place the fitted ink in SIZE x SIZE with its centre of mass at the centre."""
    height, width = fitted.shape
    mass = fitted.sum(dtype=np.float64)
    centre_row = fitted.sum(axis=1, dtype=np.float64) @ np.arange(height) / mass
    centre_column = fitted.sum(axis=0, dtype=np.float64) @ np.arange(width) / mass
    top = int(round(SIZE / 2 - centre_row - 0.5))
    left = int(round(SIZE / 2 - centre_column - 0.5))
    top, left = min(max(top, 0), SIZE - height), min(max(left, 0), SIZE - width)
    frame = np.zeros((SIZE, SIZE), np.float32)
    frame[top : top + height, left : left + width] = fitted
    return frame
