"""Images that are not digits, in the MNIST format: what a "not a digit" class learns from.

Three kinds, each turned into 28x28 by the same `pipeline.serving.images.to_mnist` that
people's images go through, so the network sees them as it would see them
served:

- clothing: Fashion-MNIST images;
- letters and symbols, printed in the typefaces training prints digits with
  (`pipeline.data.typefaces`) at random sizes and angles, from hairline to
  very bold, so that the network learns that no stroke width makes a
  non-digit; among them the letters nearest to digits that still differ from
  them once cropped and scaled (S, b);
- scribbles (tangled strokes) and blobs (filled shapes).

Images the preprocessing already refuses (a texture touching every border, say)
are left out, since they never reach the network, and so are thin upright
shapes, which look like a 1. Everything comes from a seed, so a
run is repeatable.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.data import typefaces
from pipeline.serving import images

# Letters and symbols a digit is not. Left out: those that, cropped and scaled to 20x20 as every
# image is, are a digit as people write it (O, l, I, |, /; q and g are 9s, Z a 2, B an 8).
GLYPHS = "ACEFHKMNPRTUWXacefhkmnprtuwx#%@*=+Sb"
NARROWEST = 8  # pixels of 28: anything narrower looks like a 1, so it is not drawn as a non-digit
CANVAS = 96
KINDS = ("clothing", "glyph", "scribble", "blob")


def sample(count: int, seed: int, clothing: np.ndarray) -> np.ndarray:
    """`count` MNIST-format non-digits, (count, 28, 28) float32: a quarter of each kind.

    `clothing` is a pool of uint8 Fashion-MNIST images to draw from.
    """
    rng = np.random.default_rng(seed)
    made = []
    while len(made) < count:
        kind = KINDS[len(made) % len(KINDS)]
        if kind == "clothing":
            picture = clothing[rng.integers(len(clothing))].astype(np.float32) / 255.0
        else:
            picture = DRAWERS[kind](rng)
        seen = prepared(picture)
        if seen is not None:
            made.append(seen)
    return np.stack(made)


def prepared(picture: np.ndarray) -> np.ndarray | None:
    """A drawing as the network sees it, or None where training leaves it out: refused by the
    preprocessing, or as thin as a 1."""
    try:
        seen = images.to_mnist(picture).image
    except images.NotADigit:
        return None
    return seen if np.count_nonzero(seen.max(axis=0) > 0.3) >= NARROWEST else None


def canvas() -> Image.Image:
    return Image.new("L", (CANVAS, CANVAS), 0)


def as_array(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture, dtype=np.float32) / 255.0


def glyph(rng: np.random.Generator) -> np.ndarray:
    picture = canvas()
    size = int(rng.integers(40, 72))
    fonts = typefaces.training()
    path = fonts[rng.integers(len(fonts))]
    font = ImageFont.truetype(path, size) if path else ImageFont.load_default(size)
    character = GLYPHS[rng.integers(len(GLYPHS))]
    ImageDraw.Draw(picture).text(
        (CANVAS / 2, CANVAS / 2),
        character,
        fill=255,
        font=font,
        anchor="mm",
        stroke_width=int(rng.integers(0, 7)),
        stroke_fill=255,
    )
    return as_array(picture.rotate(float(rng.uniform(-20, 20)), resample=3))


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A tangle: one stroke through 7 to 12 random points, crossing itself."""
    picture = canvas()
    points = [tuple(point) for point in rng.uniform(12, CANVAS - 12, size=(int(rng.integers(7, 13)), 2))]
    ImageDraw.Draw(picture).line(points, fill=255, width=int(rng.integers(3, 10)), joint="curve")
    return as_array(picture)


def blob(rng: np.random.Generator) -> np.ndarray:
    """A filled shape: an ellipse or a random polygon, sometimes two."""
    picture = canvas()
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:
            left, top = rng.uniform(8, CANVAS / 2, size=2)
            width, height = rng.uniform(20, CANVAS / 2, size=2)
            draw.ellipse((left, top, left + width, top + height), fill=255)
        else:
            corners = [tuple(point) for point in rng.uniform(8, CANVAS - 8, size=(int(rng.integers(3, 7)), 2))]
            draw.polygon(corners, fill=255)
    return as_array(picture)


DRAWERS = {"glyph": glyph, "scribble": scribble, "blob": blob}
