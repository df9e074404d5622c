"""People's images of digits into the MNIST format: 28x28, white ink on black, the digit in a 20x20 box, centred.

MNIST digits were size-normalized to fit a 20x20 box (aspect ratio kept,
anti-aliased) and centred by their centre of mass in a 28x28 frame. A photo or
scan of a digit is none of that, so `read` decodes any image Pillow can read
into grayscale, and `to_mnist` turns it into what the networks were trained on:

1. polarity: dark ink on light paper, or light chalk on a dark board, judged by
   the image's border, which is mostly background; made white-on-black;
2. uneven light: the background, estimated by a grey opening wider than any
   stroke, is subtracted;
3. contrast: the strokes' brightness is stretched to 1, keeping the grey
   anti-aliased edges rather than binarizing, and faint paper texture is cut;
4. crop to the ink, downscale with an anti-aliasing filter to fit 20x20 keeping
   the aspect ratio, and centre by centre of mass in 28x28.

An image that cannot hold one digit is refused with `NotADigit` and a short
reason: no ink, ink touching all four borders or covering nearly half the image
(a texture or a photo, not a digit on a background), or far too many separate
marks.
"""

from __future__ import annotations

import io
import warnings
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
WIDEST = 1.25  # one digit's width at most, in digit heights: wider ink is digits that touch
DIGIT_WIDTH = 0.7  # a typical digit's width, in digit heights
STRAY_MASS = 0.12  # of the heaviest digit's ink: a group of marks with less is not a digit


class ImageError(ValueError):
    """A file that cannot be read as an image, with the reason in one line."""


class NotADigit(ValueError):
    """An image that was read but cannot hold one digit; the message is the short reason."""


@dataclass(frozen=True)
class Digit:
    image: np.ndarray  # (28, 28) float32 in [0, 1], white on black: what the model sees
    box: tuple  # (x, y, width, height) of the ink, in the original image's pixels
    inverted: bool  # whether the original was dark ink on a light background


def read(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a path or bytes into a float32 grayscale array in [0, 1] (0 = black), EXIF orientation applied."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width == 0 or height == 0:
                raise ImageError(f"the image has no pixels ({width} x {height})")
            if width * height > max_pixels:
                raise ImageError(f"{width} x {height} pixels is more than the limit of {max_pixels:,}")
            image.seek(0)  # the first frame of an animation
            image.load()
            image = ImageOps.exif_transpose(image)
            return grayscale(image)
    except UnidentifiedImageError:
        raise ImageError("not an image (Pillow cannot identify its format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"too many pixels: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"truncated or corrupt image: {error}") from None


def grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to float32 luminance in [0, 1]; transparency is composited on white."""
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
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Ink:
    """An image's ink, white on black, cleaned (steps 1-3), at the working resolution."""

    map: np.ndarray  # float32 in [0, 1]
    scale: float  # working pixels per original pixel (1, or less for large images)
    inverted: bool


def ink_of(gray: np.ndarray) -> Ink:
    """Steps 1-3 of the module's list; raises NotADigit if there is no ink."""
    from scipy import ndimage

    height, width = gray.shape
    scale = min(1.0, WORKING_SIZE / max(height, width))
    working = resized(gray, (max(1, round(width * scale)), max(1, round(height * scale)))) if scale < 1 else gray

    border = np.concatenate([working[0], working[-1], working[:, 0], working[:, -1]])
    inverted = bool(np.median(border) > 0.5)
    ink = 1.0 - working if inverted else working

    # A grey opening wider than any stroke keeps only the slowly varying background light.
    width_of_opening = max(3, round(min(ink.shape) / 3))
    ink = np.clip(ink - ndimage.grey_opening(ink, size=width_of_opening), 0, None)

    # The strokes' brightness: the brightest ink once isolated specks are filtered out.
    peak = float(ndimage.median_filter(ink, size=3).max())
    if peak < 0.1:
        raise NotADigit("no ink: the image is blank or has too little contrast")
    ink = np.clip((ink / peak - INK_FLOOR) / (1 - INK_FLOOR), 0, 1).astype(np.float32)
    return Ink(ink, scale, inverted)


def to_mnist(gray: np.ndarray) -> Digit:
    """The MNIST-format Digit in a grayscale image (0 = black); raises NotADigit, with the reason, if it holds none."""
    ink = ink_of(gray)
    refuse_non_digits(ink.map, MAX_MARKS, "one digit")
    return digit_from(ink, ink.map)


def digits_in(gray: np.ndarray) -> list[Digit]:
    """Each digit of a whole number, left to right, as MNIST-format Digits; raises NotADigit if there are none.

    Digits are groups of connected ink: pieces that overlap horizontally (the
    strokes of a 4 or a 5 drawn apart) are one digit, specks and stray marks
    (far less ink than a digit) are dropped, digits that almost touch stay
    apart as long as ink does not join them, and ink far wider than tall is cut
    where it is thinnest (digits that touch).
    """
    ink = ink_of(gray)
    refuse_non_digits(ink.map, MAX_MARKS * 4, "a number")
    return [digit_from(ink, ink.map * mask) for mask in digit_masks(ink.map)]


def digit_masks(ink: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the ink of each digit, ordered left to right."""
    from scipy import ndimage

    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
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
    masks = [part for _, _, numbers in groups for part in split_wide(np.isin(labels, numbers), ink, tallest)]
    # Stray marks: groups with far less ink than the heaviest digit (a 1 has about a third of an 8's).
    masses = [float(ink[mask].sum()) for mask in masks]
    return [mask for mask, mass in zip(masks, masses) if mass >= max(masses) * STRAY_MASS]


def split_wide(mask: np.ndarray, ink: np.ndarray, height: int) -> list[np.ndarray]:
    """Ink far wider than the digits are tall is digits that touch: cut it into as many as fit, where ink is thinnest.

    Each cut is the column with the least ink within a tenth of a digit's width of
    where an even split would put it (not further: the middle of a 0 has less ink
    than where two 0s touch).
    """
    columns = np.nonzero(mask)[1]
    left, width = columns.min(), np.ptp(columns) + 1
    if width <= WIDEST * height:
        return [mask]
    parts = max(2, round(width / (DIGIT_WIDTH * height)))
    profile = (ink * mask)[:, left : left + width].sum(axis=0)
    step = width / parts
    cuts = [left]
    for number in range(1, parts):
        low = round(step * (number - 0.1))
        high = max(low + 1, round(step * (number + 0.1)))
        cuts.append(left + low + int(np.argmin(profile[low:high])))
    cuts.append(left + width)
    pieces = []
    for start, stop in zip(cuts, cuts[1:]):
        piece = np.zeros_like(mask)
        piece[:, start:stop] = mask[:, start:stop]
        if piece.any():
            pieces.append(piece)
    return pieces


def digit_from(ink: Ink, selected: np.ndarray) -> Digit:
    """Step 4: crop `selected` (ink, or part of it), fit it in 20x20 and centre it in 28x28."""
    rows, columns = np.nonzero(selected)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    fitted = fit_in_box(selected[top:bottom, left:right])
    box = tuple(int(round(value / ink.scale)) for value in (left, top, right - left, bottom - top))
    return Digit(centred(fitted), box, ink.inverted)


def refuse_non_digits(ink: np.ndarray, max_marks: int, holding: str) -> None:
    """Raise NotADigit for ink that cannot be `holding` ("one digit", "a number") on a background."""
    from scipy import ndimage

    strong = ink > 0.5
    if strong[0].any() and strong[-1].any() and strong[:, 0].any() and strong[:, -1].any():
        raise NotADigit("ink touches all four borders: a texture or a picture, not a digit on paper")
    if strong.mean() > MAX_COVER:
        raise NotADigit(f"ink covers {strong.mean():.0%} of the image: a texture or a picture, not a digit on paper")
    labels, count = ndimage.label(strong)
    sizes = np.bincount(labels.ravel())[1:]
    speck = max(4, strong.size // 20000)  # pixels
    if (sizes > speck).sum() > max_marks:
        raise NotADigit(f"{(sizes > speck).sum()} separate marks: too many for {holding}")


def resized(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float array in [0, 1] to (width, height) with an anti-aliasing (Lanczos) filter."""
    image = Image.fromarray(array.astype(np.float32), mode="F")
    return np.clip(np.asarray(image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)), 0, 1)


def fit_in_box(crop: np.ndarray) -> np.ndarray:
    """Scale the ink to fit BOX x BOX, keeping its aspect ratio."""
    height, width = crop.shape
    factor = BOX / max(height, width)
    return resized(crop, (max(1, round(width * factor)), max(1, round(height * factor))))


def centred(fitted: np.ndarray) -> np.ndarray:
    """Place the fitted ink in SIZE x SIZE with its centre of mass at the centre."""
    from scipy import ndimage

    height, width = fitted.shape
    centre_row, centre_column = ndimage.center_of_mass(fitted)
    top = int(round(SIZE / 2 - centre_row - 0.5))
    left = int(round(SIZE / 2 - centre_column - 0.5))
    top, left = min(max(top, 0), SIZE - height), min(max(left, 0), SIZE - width)
    frame = np.zeros((SIZE, SIZE), np.float32)
    frame[top : top + height, left : left + width] = fitted
    return frame
