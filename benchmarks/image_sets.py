"""Write image sets that look like people's photos and scans: digits, whole numbers, and things that are not digits.

    python -m benchmarks.image_sets --output image-sets            # from MNIST's test digits
    python -m benchmarks.image_sets --output dev-images --split validation
    python -m benchmarks.image_sets --output style-sets --styles   # styles training never draws
    mlflow run . -e evaluate -P images=image-sets --env-manager local

The handwriting is MNIST's: the test digits (written by people whose digits are
not in the training images) or, with `--split validation`, the validation ones,
to tune against without touching the test set. Each digit is drawn the way a
person's photo of it comes out: any height from 24 to 320 pixels, off-centre,
rotated up to 12 degrees, strokes thinner or thicker, black, blue or grey ink on
white or cream paper with uneven light, or white chalk on a dark board, as PNG
or JPEG. Numbers are 2 to 6 digits side by side, spaced or almost touching. Not
digits: letters and symbols in fonts the training never used, clothing
(Fashion-MNIST's test images) on a light background, tangled scribbles, and
blank pages.

The layout is what `evaluate --images` reads:

    digits/<digit>/*.png|jpg   numbers/<number>/*.png|jpg   not-digits/<kind>/*.png|jpg

With `--styles` the sets are instead written in styles that training never
draws, one folder per category, each with the same layout (`evaluate` reports
each category): digits drawn with the held-out pens of `pipeline.data.strokes`
(chalk on boards, a broad-edged calligraphy nib), printed in the held-out
typefaces of `pipeline.data.typefaces` (the regular ones, and apart, those
drawn from handwriting), MNIST's test handwriting written with a broad marker
(far bolder than any training variation) and photographed dim or on coloured
paper; numbers of 1 to 12 of those digits spaced, touching and overlapping;
letters, symbols and digit-like letters (S, Z, b, g, q) printed in the
held-out typefaces; MNIST's test handwriting scanned coarsely (8 to 16
pixels a side, enlarged); and digits of those pens, typefaces and hands in a
box, as in a form's field, some touching it.

Everything comes from `--seed`, so a set is the same wherever it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pipeline.data import datasets, scans, strokes, typefaces

INKS = {"black": (20, 20, 25), "blue": (25, 45, 150), "grey": (80, 80, 85)}
PAPERS = {"white": (250, 250, 247), "cream": (242, 234, 214)}
BOARDS = {"green board": (35, 62, 48), "black board": (30, 32, 35)}
CHALK = (235, 235, 228)
FONT_FOLDERS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation2")
GLYPHS = "ACEFHKLMNPRTUVWXYacefhkmnprtuvwxy#%@*=+&"
LOOKALIKES = "SZbgq"  # letters that share a digit's shape in some hands and typefaces
COLOURED = {"yellow paper": ((238, 222, 120), (30, 30, 140)), "pink paper": ((240, 190, 200), (20, 90, 40))}
MNIST_INK = 20  # pixels: the height of MNIST's digits in their 28
FORM_TILT = 3  # degrees: a form lies nearly straight in a scan or a photo taken of it


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_sets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="the folder to write (its files are replaced)")
    parser.add_argument(
        "--split",
        choices=("test", "validation"),
        default="test",
        help="whose handwriting: MNIST's test digits (default) or the validation ones",
    )
    parser.add_argument("--digits", type=int, default=1000)
    parser.add_argument("--numbers", type=int, default=200)
    parser.add_argument("--not-digits", dest="not_digits", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--styles",
        action="store_true",
        help="styles instead, one folder per category (--digits and --numbers per category): those training "
        "never draws, or with --split validation a development set drawn with training's",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    folder = Path(args.output)
    if args.styles:
        written = write_styles(folder, args.digits, args.numbers, args.not_digits, args.seed, args.split)
    else:
        written = write(folder, args.split, args.digits, args.numbers, args.not_digits, args.seed)
    print(f"{args.output}: " + ", ".join(f"{count} {kind}" for kind, count in written.items()))


def write(
    folder: Path, split: str = "test", digits: int = 1000, numbers: int = 200, not_digits: int = 500, seed: int = 0
) -> dict[str, int]:
    """Write the three sets under `folder`; return how many files of each were written."""
    mnist = datasets.load(datasets.MNIST)
    if split == "test":
        handwriting, labels = mnist.test_images, mnist.test_labels
    else:
        handwriting, labels = mnist.train_images[-5000:], mnist.train_labels[-5000:]
    rng = np.random.default_rng(seed)
    for index in range(digits):
        pick = rng.integers(len(labels))
        save(photo(ink_of(handwriting[pick]), rng), folder / "digits" / str(labels[pick]), f"{index:04d}", rng)
    for index in range(numbers):
        picks = rng.integers(len(labels), size=rng.integers(2, 7))
        written = "".join(str(labels[pick]) for pick in picks)
        save(
            photo(side_by_side([ink_of(handwriting[pick]) for pick in picks], rng), rng),
            folder / "numbers" / written,
            f"{index:04d}",
            rng,
        )
    clothing = datasets.load(datasets.FASHION_MNIST).test_images
    fonts = [path for directory in FONT_FOLDERS for path in sorted(Path(directory).glob("*.ttf"))]
    kinds = {
        "letters and symbols": lambda: glyph(rng, fonts),
        "clothing": lambda: ink_of(clothing[rng.integers(len(clothing))]),
        "scribbles": lambda: scribble(rng),
        "blank pages": lambda: np.zeros((28, 28), np.float32),
    }
    shares = {"letters and symbols": 0.4, "clothing": 0.3, "scribbles": 0.2, "blank pages": 0.1}
    for kind, share in shares.items():
        for index in range(round(not_digits * share)):
            save(photo(kinds[kind](), rng), folder / "not-digits" / kind, f"{index:04d}", rng)
    return {
        kind: sum(1 for path in (folder / kind).rglob("*") if path.is_file())
        for kind in ("digits", "numbers", "not-digits")
    }


def write_styles(
    folder: Path, digits: int = 200, numbers: int = 50, not_digits: int = 200, seed: int = 0, split: str = "test"
) -> dict:
    """Write one set per category under `folder`; return how many files each category has.

    With `split="test"` the pens and typefaces are those training never draws, and the handwriting is
    MNIST's test digits; with "validation", a development set in the same layout, the categories drawn
    with training's pens and typefaces instead (and the development typefaces drawn from handwriting,
    which training does not print with either), and the handwriting MNIST's validation digits.
    """
    rng = np.random.default_rng(seed)
    mnist = datasets.load(datasets.MNIST)
    if split == "test":
        pens, fonts, hands = strokes.HELD_OUT_PENS, typefaces.held_out(), typefaces.handwriting(held_out=True)
        handwriting, labels = mnist.test_images, mnist.test_labels
    else:
        pens = {name: strokes.TRAINING_PENS[name] for name in ("ballpoint", "felt-tip")}
        fonts, hands = typefaces.training(), typefaces.handwriting()
        handwriting, labels = mnist.train_images[-5000:], mnist.train_labels[-5000:]

    def drawn(pen: str) -> tuple[np.ndarray, int]:
        digit = int(rng.integers(10))
        variants = list(strokes.TEMPLATES[digit])
        return upright(strokes.draw(digit, variants[rng.integers(len(variants))], pens[pen], rng)), digit

    def printed(faces: list[str] = fonts) -> tuple[np.ndarray, int]:
        digit = int(rng.integers(10))
        return upright(typefaces.printed(digit, faces[rng.integers(len(faces))], rng)), digit

    def hand_printed() -> tuple[np.ndarray, int]:
        return printed(hands)

    def handwritten() -> tuple[np.ndarray, int]:
        pick = rng.integers(len(labels))
        return ink_of(handwriting[pick]), int(labels[pick])

    def marker() -> tuple[np.ndarray, int]:
        ink, digit = handwritten()
        big = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize((112, 112), Image.Resampling.BICUBIC))
        width = int(rng.integers(5, 12))  # strokes 5 to 11 pixels broader, of 80: 20-28 % of the height in all
        return np.asarray(Image.fromarray(big).filter(ImageFilter.MaxFilter(width | 1)), np.float32) / 255.0, digit

    def dim(picture: Image.Image) -> Image.Image:
        """A photo in poor light: everything darker, less contrast, a little noise."""
        pixels = np.asarray(picture, np.float32) * rng.uniform(0.3, 0.55) + rng.uniform(5, 25)
        return Image.fromarray(np.clip(pixels + rng.normal(0, 2, pixels.shape), 0, 255).astype(np.uint8))

    categories = {
        **{
            pen: ((lambda pen=pen: drawn(pen)), {"board": pens[pen].kind == "chalk"})
            for pen in pens  # each pen a category
        },
        "typefaces": (printed, {}),
        "broad marker": (marker, {}),
        "dim photos": (handwritten, {"after": dim}),
        "coloured paper": (handwritten, {"coloured": True}),
        # Last, so that the other categories are drawn as before; only where their Debian packages are installed.
        **({"handwriting typefaces": (hand_printed, {})} if hands else {}),
    }
    for category, (make, look) in categories.items():
        for index in range(digits):
            ink, digit = make()
            shot = photo(ink, rng, **photo_options(ink, look, rng))
            save(
                (look.get("after", lambda image: image)(shot[0]), shot[1]),
                folder / category / "digits" / str(digit),
                f"{index:04d}",
                rng,
            )
    makers = [*(lambda pen=pen: drawn(pen) for pen in pens), printed, handwritten, marker]
    if hands:
        makers.append(hand_printed)
    for category, gaps in {"spaced numbers": (0.1, 0.3), "touching numbers": (-0.12, 0.0)}.items():
        for index in range(numbers):
            make = makers[rng.integers(len(makers))]  # one hand, pen or typeface for the whole number
            inks, digits_written = zip(*(make() for _ in range(rng.integers(1, 13))))
            row = in_a_row([in_28_rows(ink) for ink in inks], gaps, rng)
            save(
                photo(row, rng), folder / category / "numbers" / "".join(map(str, digits_written)), f"{index:04d}", rng
            )
    glyphs = {"letters and symbols": GLYPHS, "digit-like letters": LOOKALIKES}
    for kind, characters in glyphs.items():
        for index in range(not_digits // 2):
            ink = glyph(rng, [Path(path) for path in fonts + hands if path], characters)
            save(photo(ink, rng), folder / "letters" / "not-digits" / kind, f"{index:04d}", rng)
    for index in range(digits):  # last, so that every set above is drawn as before
        ink, digit = handwritten()
        ink = coarse(ink, rng)
        save(
            photo(ink, rng, **photo_options(ink, {}, rng)),
            folder / "coarse scans" / "digits" / str(digit),
            f"{index:04d}",
            rng,
        )
    for index in range(digits):  # last too: a form's box around the digit, of any pen, typeface or hand
        ink, digit = makers[rng.integers(len(makers))]()
        options = photo_options(ink, {}, rng)
        save(
            photo(boxed(ink, rng), rng, tilt=FORM_TILT, **options),
            folder / "boxed" / "digits" / str(digit),
            f"{index:04d}",
            rng,
        )
    return {path.name: sum(1 for file in path.rglob("*") if file.is_file()) for path in sorted(folder.iterdir())}


def boxed(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`ink` in a box drawn around it, as a form's field: lines 3 to 6 % of the digit's height thick, each side
    10 to 40 % of its height away from the ink or, one side in three, drawn over its outermost ink."""
    rows, columns = np.nonzero(ink > 0.1)
    height = rows.max() + 1 - rows.min()
    width = max(1, round(rng.uniform(0.03, 0.06) * height))
    # How far each line's inner edge is from the ink (top, bottom, left, right); below 0, over it.
    away = [-((width + 1) // 2) if rng.random() < 1 / 3 else round(rng.uniform(0.1, 0.4) * height) for _ in range(4)]
    margin = max(away) + width + 2
    framed = np.pad(ink, margin)
    top, bottom = rows.min() + margin - away[0] - width, rows.max() + 1 + margin + away[1] + width
    left, right = columns.min() + margin - away[2] - width, columns.max() + 1 + margin + away[3] + width
    for lines in (np.s_[top : top + width, left:right], np.s_[bottom - width : bottom, left:right]):
        framed[lines] = 1.0
    for lines in (np.s_[top:bottom, left : left + width], np.s_[top:bottom, right - width : right]):
        framed[lines] = 1.0
    return framed


def coarse(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A digit scanned coarsely: its 28 x 28 ink averaged to 8 to 16 pixels a side, then enlarged to 112
    pixels, blocky or smooth, as a low-resolution scan or a thumbnail is when it is blown up."""
    side = int(rng.integers(8, 17))
    return scans.scan(ink, side, rng.random() < 0.5, 112)


def upright(ink: np.ndarray) -> np.ndarray:
    """Ink of any size in MNIST's layout: cropped, scaled to fit 80 x 80 pixels, in a 112-pixel frame."""
    rows, columns = np.nonzero(ink > 0.05)
    crop = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    factor = 80 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
    scaled = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS))
    frame = np.zeros((112, 112), np.float32)
    top, left = (112 - size[1]) // 2, (112 - size[0]) // 2
    frame[top : top + size[1], left : left + size[0]] = scaled / 255.0
    return frame


def in_28_rows(ink: np.ndarray) -> np.ndarray:
    """A digit's frame in MNIST's layout, of any size, scaled to MNIST's 28 rows (its ink 20 high)."""
    factor = 28 / ink.shape[0]
    size = (max(1, round(ink.shape[1] * factor)), 28)
    return np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)) / 255.0


def photo_options(ink: np.ndarray, look: dict, rng: np.random.Generator) -> dict:
    options = {"ink_height": MNIST_INK * ink.shape[0] / 28}
    if look.get("board"):
        options["colours"] = (np.array(BOARDS["green board"]), np.array(CHALK))
    if look.get("coloured"):
        options["colours"] = tuple(np.array(colour) for colour in list(COLOURED.values())[rng.integers(len(COLOURED))])
    return options


def in_a_row(inks: list[np.ndarray], gaps: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Digits (28 high) in a row, each cropped to its ink, a gap drawn from `gaps` (in digit heights; below 0
    they overlap) apart, shifted a little up or down; overlapping ink is merged."""
    row = np.zeros((36, 8 + sum(ink.shape[1] for ink in inks) + 8), np.float32)
    left = 4
    for ink in inks:
        columns = np.flatnonzero(ink.max(axis=0) > 0.1)
        cropped = ink[:, columns.min() : columns.max() + 1]
        offset = int(rng.integers(0, 9))
        span = row[offset : offset + 28, left : left + cropped.shape[1]]
        span[...] = np.maximum(span, cropped[:, : span.shape[1]])
        left = max(4, left + cropped.shape[1] + round(rng.uniform(*gaps) * MNIST_INK))
    used = np.flatnonzero(row.max(axis=0) > 0)
    return np.pad(row[:, : used.max() + 1], ((0, 0), (0, 4)))


def ink_of(picture: np.ndarray) -> np.ndarray:
    """uint8 white-on-black 28x28 to ink strength in [0, 1]."""
    return picture.astype(np.float32) / 255.0


def side_by_side(inks: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Digits in a row: each cropped to its ink, spaced 2 to 8 pixels (of 28) apart, shifted a little up or down."""
    pieces = []
    for ink in inks:
        columns = np.flatnonzero(ink.max(axis=0) > 0.1)
        piece = np.zeros((36, 28), np.float32)
        offset = rng.integers(0, 9)
        cropped = ink[:, columns.min() : columns.max() + 1]
        piece[offset : offset + 28, : cropped.shape[1]] = cropped
        pieces.append(piece[:, : cropped.shape[1]])
        pieces.append(np.zeros((36, rng.integers(2, 9)), np.float32))
    return np.pad(np.concatenate(pieces[:-1], axis=1), ((0, 0), (4, 4)))


def photo(
    ink: np.ndarray,
    rng: np.random.Generator,
    ink_height: float = MNIST_INK,
    colours: tuple[np.ndarray, np.ndarray] | None = None,
    tilt: float = 12,
) -> tuple[Image.Image, str]:
    """A photo or scan of `ink` (a digit `ink_height` pixels high): size, position, angle (up to `tilt`
    degrees), stroke, colours, light.

    `colours` (background, ink) replace the drawn paper, board and ink."""
    height = int(np.exp(rng.uniform(np.log(24), np.log(320))))
    scale = height / ink_height
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    strength = Image.fromarray((ink * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    stroke = int(rng.integers(-1, 3)) * max(1, round(scale / 2))  # thinner, as written, or thicker
    if stroke > 0:
        strength = strength.filter(ImageFilter.MaxFilter(2 * (stroke // 2) + 1))
    elif stroke < 0 and scale >= 3:
        strength = strength.filter(ImageFilter.MinFilter(3))
    strength = strength.rotate(float(rng.uniform(-tilt, tilt)), resample=Image.Resampling.BICUBIC, expand=True)
    # The page: 1.2 to 2.2 times the ink's size, the ink anywhere on it.
    page = tuple(int(side * rng.uniform(1.2, 2.2)) + 8 for side in strength.size)
    placed = Image.new("L", page, 0)
    placed.paste(strength, tuple(int(rng.integers(0, page[axis] - strength.size[axis] + 1)) for axis in (0, 1)))
    alpha = np.asarray(placed, np.float32)[..., None] / 255.0

    if colours is not None:
        background, ink_colour = colours
    elif rng.random() < 0.15:
        background, ink_colour = np.array(list(BOARDS.values())[rng.integers(len(BOARDS))]), np.array(CHALK)
    else:
        background = np.array(list(PAPERS.values())[rng.integers(len(PAPERS))])
        ink_colour = np.array(list(INKS.values())[rng.integers(len(INKS))])
    rows, columns = np.mgrid[0 : page[1], 0 : page[0]]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * columns / page[0] + np.sin(angle) * rows / page[1]
    light = 1 - rng.uniform(0, 0.35) * (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    scan = rng.random() < 0.5  # a clean PNG scan, or a JPEG photo with sensor noise
    paper = background * light[..., None] + (0 if scan else rng.normal(0, 3, (page[1], page[0], 1)))
    pixels = paper * (1 - alpha) + ink_colour * light[..., None] * alpha
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * max(1, scale / 4)))
    return image, "PNG" if scan else "JPEG"


def glyph(rng: np.random.Generator, fonts: list[Path], characters: str = GLYPHS) -> np.ndarray:
    """A letter or symbol in one of the system's fonts (Pillow's own where there are none), as 28-pixel ink."""
    size = 80
    font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), size) if fonts else ImageFont.load_default(size)
    picture = Image.new("L", (2 * size, 2 * size), 0)
    character = characters[rng.integers(len(characters))]
    ImageDraw.Draw(picture).text((size, size), character, fill=255, font=font, anchor="mm")
    box = picture.getbbox() or (0, 0, 1, 1)
    return fitted(np.asarray(picture.crop(box), np.float32) / 255.0)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A pen wandering over the page, crossing its own path: a smooth random curve, as 28-pixel ink."""
    heading = np.cumsum(rng.normal(0, 0.35, size=600))  # turning a little at each step
    steps = np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)
    steps = (steps - steps.min(axis=0)) / np.maximum(np.ptp(steps, axis=0), 1e-6) * 180 + 10
    picture = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(picture).line([tuple(point) for point in steps], fill=255, width=int(rng.integers(4, 12)))
    return fitted(np.asarray(picture, np.float32) / 255.0)


def fitted(ink: np.ndarray) -> np.ndarray:
    """Ink of any size scaled so its height is 20 pixels, MNIST's, in a 28-pixel-high strip."""
    height, width = ink.shape
    factor = 20 / height
    scaled = Image.fromarray((ink * 255).astype(np.uint8)).resize(
        (max(1, round(width * factor)), 20), Image.Resampling.LANCZOS
    )
    return np.pad(np.asarray(scaled, np.float32) / 255.0, ((4, 4), (4, 4)))


def save(photographed: tuple[Image.Image, str], folder: Path, name: str, rng: np.random.Generator) -> None:
    image, format = photographed
    folder.mkdir(parents=True, exist_ok=True)
    if format == "JPEG":
        image.save(folder / f"{name}.jpg", "JPEG", quality=int(rng.integers(60, 96)))
    else:
        image.save(folder / f"{name}.png", optimize=False)


if __name__ == "__main__":
    main()
