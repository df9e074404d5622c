"""Printed digits: the ten digits in regular typefaces (serif, sans, mono; book, bold, italic).

The typefaces training prints with are files that every installation has:
those Matplotlib ships (DejaVu Sans, Serif and Sans Mono, STIX) and Pillow's
own. Computer Modern, which Matplotlib also ships, and Liberation, where
Debian's fonts-liberation2 is installed, are `held_out`: only the evaluation
sets print with them (`benchmarks/image_sets.py`), so that those sets measure
reading, not memory of the typefaces. So are the typefaces drawn from
handwriting that `make setup` installs from Debian (`handwriting`): Kristi and
Seto for the held-out sets, those of fifteen other packages for the development sets.

Each digit is printed large, a little bolder or not, tilted up to 8 degrees,
and prepared by `pipeline.serving.images` as served images are. Everything
comes from a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.serving import images

SIZE = 80  # the font size digits are printed at, in pixels
SYSTEM_FONTS = Path("/usr/share/fonts")
# Typefaces drawn from handwriting, in Debian packages (`make setup` installs them): file patterns under SYSTEM_FONTS.
# Training never prints with them: the development sets print with HANDWRITING, the held-out ones with the other two.
HANDWRITING = (
    "truetype/rufscript/Rufscript010.ttf",  # fonts-rufscript
    "truetype/tlwg/Purisa*.ttf",  # fonts-tlwg-purisa-ttf
    "truetype/kiloji/kiloji*.ttf",  # fonts-kiloji
    "truetype/andika/Andika-*.ttf",  # fonts-sil-andika
    "opentype/kaushanscript/KaushanScript-Regular.otf",  # fonts-kaushanscript
    "truetype/leckerli-one/LeckerliOne-Regular.ttf",  # fonts-leckerli-one
    "truetype/staypuft/StayPuft.ttf",  # fonts-staypuft
    "truetype/tomsontalks/TomsonTalks.ttf",  # fonts-tomsontalks
    "truetype/sjfonts/*.ttf",  # fonts-sjfonts: Delphine, Steve Hand
    "opentype/havana/Havana-Regular.otf",  # fonts-havana
    "opentype/joscelyn/Joscelyn-Regular.otf",  # fonts-joscelyn
    "opentype/lobster/lobster.otf",  # fonts-lobster
    "opentype/opendyslexic/OpenDyslexic-*.otf",  # fonts-opendyslexic
    "truetype/aoyagi-soseki/aoyagi-soseki.ttf",  # fonts-aoyagi-soseki
    "truetype/aoyagi-kouzan-t/AoyagiKouzanT.ttf",  # fonts-aoyagi-kouzan-t
)
HELD_OUT_HANDWRITING = ("truetype/kristi/Kristi.ttf", "truetype/seto/setofont.ttf")  # fonts-kristi, fonts-seto


def matplotlib_fonts() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def training() -> list[str]:
    """The typefaces training prints with: paths of font files, and "" for Pillow's own."""
    names = ["DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral"]
    found = sorted(
        str(path)
        for path in matplotlib_fonts().glob("*.ttf")
        if any(path.stem.startswith(name) for name in names) and "Display" not in path.stem  # Display: no digits
    )
    return [*found, ""]


def held_out() -> list[str]:
    """The regular typefaces only the evaluation sets print with."""
    computer_modern = [str(matplotlib_fonts() / f"{name}.ttf") for name in ("cmr10", "cmb10", "cmss10", "cmtt10")]
    return computer_modern + system_fonts(("truetype/liberation2/*.ttf",))


def handwriting(held_out: bool = False) -> list[str]:
    """The typefaces drawn from handwriting that the development sets print with, or (`held_out`) the held-out sets."""
    return system_fonts(HELD_OUT_HANDWRITING if held_out else HANDWRITING)


def system_fonts(patterns: tuple[str, ...]) -> list[str]:
    """The font files under SYSTEM_FONTS that match `patterns`, in order; none for a package not installed."""
    return [str(path) for pattern in patterns for path in sorted(SYSTEM_FONTS.glob(pattern))]


def font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, SIZE) if path else ImageFont.load_default(SIZE)


def printed(digit: int, path: str, rng: np.random.Generator) -> np.ndarray:
    """One digit printed in the typeface at `path`, as a float32 ink map, white on black."""
    picture = Image.new("L", (2 * SIZE, 2 * SIZE), 0)
    ImageDraw.Draw(picture).text(
        (SIZE, SIZE),
        str(digit),
        fill=255,
        font=font(path),
        anchor="mm",
        stroke_width=int(rng.integers(0, 4)),
        stroke_fill=255,
    )
    picture = picture.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BICUBIC)
    return np.asarray(picture, np.float32) / 255.0


def sample(count: int, seed: int, typefaces: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`count` MNIST-format printed digits (count, 28, 28) float32, and labels: each digit and typeface in turn."""
    typefaces = training() if typefaces is None else typefaces
    rng = np.random.default_rng(seed)
    made, labels = [], []
    for index in range(count):
        digit, path = index % 10, typefaces[(index // 10) % len(typefaces)]
        ink = printed(digit, path, rng)
        made.append(images.digit_from(images.Ink(ink, 1.0, False), ink).image)
        labels.append(digit)
    return np.stack(made), np.array(labels, np.uint8)
