"""Reading people's images and turning them into MNIST-format digits."""

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.serving import images
from pipeline.training.splits import scaled


@pytest.fixture(scope="module")
def digits(mnist):
    return scaled(mnist.test_images[:100])


def encoded(array, format="PNG", mode="L", **options):
    """A grayscale array in [0, 1] as the bytes of an image file in that format and mode."""
    if mode == "I;16":
        image = Image.fromarray((np.clip(array, 0, 1) * 65535).astype(np.uint16))
    else:
        image = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8), mode="L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def on_paper(digit, size=(300, 400), at=(50, 200), scale=4, gradient=0.3):
    """A dark-ink digit, enlarged, off-centre, on light paper lit unevenly."""
    big = (
        np.asarray(
            Image.fromarray((digit * 255).astype(np.uint8)).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
        )
        / 255.0
    )
    canvas = np.zeros(size)
    canvas[at[0] : at[0] + big.shape[0], at[1] : at[1] + big.shape[1]] = big
    paper = 0.95 - gradient * np.linspace(0, 1, size[1])[None, :] - gradient / 3 * np.linspace(0, 1, size[0])[:, None]
    return (paper * (1 - 0.85 * canvas)).astype(np.float32)


def similarity(first, second):
    """Cosine similarity after a one-pixel blur: a thin stroke moved by a pixel is still the same digit."""
    from scipy import ndimage

    first, second = ndimage.gaussian_filter(first, 1.0), ndimage.gaussian_filter(second, 1.0)
    return float(np.sum(first * second) / np.sqrt(np.sum(first**2) * np.sum(second**2)))


def test_an_mnist_digit_passes_nearly_unchanged(digits):
    scores = []
    for digit in digits:
        result = images.to_mnist(digit)
        assert result.image.shape == (28, 28) and result.image.dtype == np.float32
        assert not result.inverted
        scores.append(similarity(result.image, digit))
    # Thin ones move by up to a pixel as they are re-centred: still the same digit.
    assert np.median(scores) > 0.9 and min(scores) > 0.7, (np.median(scores), min(scores))  # measured: 0.92, 0.76


def test_a_network_reads_the_prepared_digits_like_the_originals(mnist):
    """What matters: the network's answers on MNIST digits drawn dark on unevenly lit paper."""
    from pipeline.training.loop import fit, predict
    from pipeline.training.settings import Settings
    from pipeline.training.splits import split

    splits = split(mnist, validation=1000, subset=20000)
    network, _ = fit(Settings.for_version(4, subset=20000, validation=1000), splits, verbose=0)
    originals, labels = splits.test_images[:300], splits.test_labels[:300]
    prepared = np.array([images.to_mnist(on_paper(digit)).image for digit in originals])

    def accuracy(batch):
        return (predict(network, batch).argmax(axis=1) == labels).mean()

    assert accuracy(prepared) >= accuracy(originals) - 0.02


@pytest.mark.parametrize("variation", ["inverted", "shifted", "scaled up", "on uneven paper"])
def test_variations_give_nearly_the_same_input(digits, variation):
    make = {
        "inverted": lambda digit: 1 - digit,
        "shifted": lambda digit: np.pad(digit, ((5, 40), (60, 3))),
        "scaled up": lambda digit: np.asarray(
            Image.fromarray(digit, mode="F").resize((140, 140), Image.Resampling.BILINEAR)
        ),
        "on uneven paper": on_paper,
    }[variation]
    scores = [similarity(images.to_mnist(make(digit)).image, images.to_mnist(digit).image) for digit in digits]
    assert np.median(scores) > 0.9 and min(scores) > 0.7, (np.median(scores), min(scores))


def test_the_box_is_where_the_ink_is_in_the_original(digits):
    paper = on_paper(digits[0], at=(50, 200), scale=4)
    result = images.to_mnist(paper)
    assert result.inverted
    rows, columns = np.nonzero(digits[0] > 0.3)
    x, y, width, height = result.box
    assert abs(x - (200 + 4 * columns.min())) <= 6 and abs(y - (50 + 4 * rows.min())) <= 6
    assert abs(width - 4 * (columns.max() - columns.min() + 1)) <= 10
    assert abs(height - 4 * (rows.max() - rows.min() + 1)) <= 10


def test_the_digit_fills_a_20_pixel_box_centred_by_mass(digits):
    result = images.to_mnist(on_paper(digits[1])).image
    rows, columns = np.nonzero(result)
    assert max(rows.max() - rows.min(), columns.max() - columns.min()) + 1 in (20, 21)
    mass_row = (result.sum(axis=1) * np.arange(28)).sum() / result.sum()
    mass_column = (result.sum(axis=0) * np.arange(28)).sum() / result.sum()
    assert abs(mass_row - 13.5) <= 1 and abs(mass_column - 13.5) <= 1


@pytest.mark.parametrize(
    "format, mode",
    [
        ("PNG", "L"),
        ("PNG", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "LA"),
        ("PNG", "P"),
        ("PNG", "I;16"),
        ("JPEG", "L"),
        ("JPEG", "RGB"),
        ("BMP", "RGB"),
        ("GIF", "P"),
        ("WEBP", "RGB"),
        ("TIFF", "L"),
        ("TIFF", "RGB"),
    ],
)
def test_every_format_and_mode_reads_the_same(digits, format, mode):
    paper = on_paper(digits[2])
    gray = images.read(encoded(paper, format, mode)).gray
    assert gray.shape == paper.shape and gray.dtype == np.float32
    assert np.abs(gray - paper).mean() < 0.03
    assert similarity(images.to_mnist(gray).image, images.to_mnist(paper).image) > 0.95


def test_transparent_pixels_are_white_paper(digits):
    ink = (digits[3] > 0.5).astype(np.uint8) * 255
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = ink  # black ink where opaque, transparent elsewhere
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    gray = images.read(buffer.getvalue()).gray
    assert gray[0, 0] == 1.0 and gray[ink > 0].max() == 0.0
    assert images.to_mnist(gray).inverted


@pytest.mark.parametrize("colour", [(255, 255, 255), (255, 240, 120)])  # white, pale yellow
def test_light_strokes_on_a_transparent_canvas_show_on_black(digits, colour):
    ink = digits[3] > 0.5
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[ink] = (*colour, 255)  # transparent black elsewhere, as a cleared canvas is
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    gray = images.read(buffer.getvalue()).gray
    assert gray[0, 0] == 0.0 and gray[ink].min() > 0.85
    digit = images.to_mnist(gray)
    assert not digit.inverted and similarity(digit.image, images.to_mnist(1 - gray).image) > 0.99


def test_a_page_with_transparent_margins_keeps_them_white(digits):
    rgba = np.zeros((60, 60, 4), np.uint8)
    page = (on_paper(digits[5], size=(40, 40), at=(6, 6), scale=1, gradient=0) * 255).astype(np.uint8)
    rgba[10:50, 10:50, :3] = page[..., None]
    rgba[10:50, 10:50, 3] = 255  # an opaque page of light paper and dark ink, transparent around it
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    gray = images.read(buffer.getvalue()).gray
    assert gray[0, 0] == 1.0 and images.to_mnist(gray).inverted


def test_exif_orientation_is_applied(digits):
    paper = on_paper(digits[4])
    rotated = Image.fromarray((paper * 255).astype(np.uint8)).rotate(90, expand=True)  # stored turned
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to display"
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif, quality=95)
    gray = images.read(buffer.getvalue()).gray
    assert gray.shape == paper.shape
    assert np.abs(gray - paper).mean() < 0.03


def test_the_first_frame_of_an_animation(digits):
    frames = [Image.fromarray((on_paper(digit) * 255).astype(np.uint8)) for digit in digits[5:7]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert np.abs(images.read(buffer.getvalue()).gray - on_paper(digits[5])).mean() < 0.03


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty file"),
        (b"hello, this is text", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
)
def test_unreadable_files_get_one_line_reasons(data, message):
    with pytest.raises(images.ImageError, match=message):
        images.read(data)


def test_a_truncated_file_is_refused(digits):
    data = encoded(on_paper(digits[0]), "PNG")
    with pytest.raises(images.ImageError, match="truncated or corrupt"):
        images.read(data[: len(data) // 2])


def test_too_many_pixels_are_refused_before_decoding():
    data = encoded(np.zeros((2000, 3000)), "PNG")  # small on disk, 6 million pixels
    with pytest.raises(images.ImageError, match="2000 x 2000|3000 x 2000 pixels is more than the limit of 1,000,000"):
        images.read(data, max_pixels=1_000_000)


@pytest.mark.parametrize("picture", [np.ones((50, 50)), np.zeros((50, 50)), np.full((50, 50), 0.5)])
def test_a_blank_image_has_no_ink(picture):
    with pytest.raises(images.NotADigit, match="no ink"):
        images.to_mnist(picture.astype(np.float32))


def test_noise_and_textures_are_not_digits():
    noise = np.random.default_rng(0).random((200, 200)).astype(np.float32)
    with pytest.raises(images.NotADigit, match="all four borders|separate marks"):
        images.to_mnist(noise)
    stripes = np.tile((np.arange(200) // 10 % 2).astype(np.float32), (200, 1))
    with pytest.raises(images.NotADigit, match="ink covers 50% of the image"):
        images.to_mnist(stripes)


def test_scattered_dots_are_not_a_digit():
    page = np.ones((300, 300), np.float32)
    for row in range(30, 280, 50):
        for column in range(30, 280, 50):
            page[row : row + 6, column : column + 6] = 0.0  # 25 dots of ink
    with pytest.raises(images.NotADigit, match="25 separate marks"):
        images.to_mnist(page)


def test_a_large_photo_is_reduced_and_its_box_given_in_its_own_pixels(digits):
    paper = on_paper(digits[8], size=(2400, 3200), at=(900, 1500), scale=20, gradient=0.2)
    result = images.to_mnist(paper)
    rows, columns = np.nonzero(digits[8] > 0.3)
    x, y, width, height = result.box
    assert abs(x - (1500 + 20 * columns.min())) <= 30 and abs(y - (900 + 20 * rows.min())) <= 30
    assert similarity(result.image, images.to_mnist(digits[8]).image) > 0.9


@pytest.mark.parametrize("format", ["JPEG", "PNG"])
def test_a_large_file_is_reduced_while_decoded_and_boxes_stay_in_its_pixels(digits, format):
    paper = on_paper(digits[8], size=(2400, 3200), at=(900, 1500), scale=20, gradient=0.2)
    picture = images.read(encoded(paper, format, quality=90))
    assert images.WORKING_SIZE <= max(picture.gray.shape) < 2 * images.WORKING_SIZE
    assert picture.scale == pytest.approx(max(picture.gray.shape) / 3200)
    result = images.to_mnist(picture.gray, picture.scale)
    rows, columns = np.nonzero(digits[8] > 0.3)
    x, y, width, height = result.box
    assert abs(x - (1500 + 20 * columns.min())) <= 30 and abs(y - (900 + 20 * rows.min())) <= 30
    assert abs(height - 20 * (rows.max() - rows.min() + 1)) <= 40
    assert similarity(result.image, images.to_mnist(paper).image) > 0.95


def test_ink_taller_than_asked_is_reduced_to_that_height_and_its_scale_with_it():
    bar = np.zeros((300, 100), np.float32)
    bar[50:250, 40:60] = 1.0  # 200 rows of ink
    ink = images.within_height(images.Ink(bar, 0.5, True), 80)
    inked = np.flatnonzero(ink.map.any(axis=1))
    assert 78 <= inked[-1] + 1 - inked[0] <= 80
    reduction = ink.scale / 0.5
    assert 0.39 <= reduction <= 0.4 and ink.inverted  # 80 rows of 200, or a row less
    assert ink.map.shape == (round(300 * reduction), round(100 * reduction))
    assert ink.map.sum() == pytest.approx(bar.sum() * reduction**2, rel=0.02)  # averaged: no ink lost or made
    assert 0 <= ink.map.min() and ink.map.max() <= 1
    for short in (images.Ink(bar, 1.0, False), images.Ink(np.zeros_like(bar), 1.0, False)):
        assert images.within_height(short, 200) is short  # no taller than asked, or no ink at all


def holes(image):
    """Background regions the ink closes in: an 8 has two, a 0, 4, 6 or 9 one."""
    return len(enclosed(image))


def enclosed(image):
    """Each region of paper the ink closes in, as a mask; a single pixel is none."""
    from scipy import ndimage

    labels, count = ndimage.label(image < 0.3)
    border = set(labels[0]) | set(labels[-1]) | set(labels[:, 0]) | set(labels[:, -1])
    regions = (labels == label for label in range(1, count + 1) if label not in border)
    return [region for region in regions if region.sum() >= 2]


def drawn_on_paper(ink, size, paper=0.92, ink_level=0.1):
    """White-on-black `ink` laid dark on light paper, in the middle of a page of `size` (height, width)."""
    page = np.zeros(size, np.float32)
    top, left = (size[0] - ink.shape[0]) // 2, (size[1] - ink.shape[1]) // 2
    page[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return (paper - (paper - ink_level) * page).astype(np.float32)


@pytest.mark.parametrize("size", [(130, 60), (130, 400)])  # narrow and wide images
def test_a_broad_stroke_is_kept_whole(size):
    one = np.zeros((110, 24), np.float32)
    one[:, 2:22] = 1.0  # a 1 as a broad marker draws it: its stroke is a fifth of its height, or more
    result = images.to_mnist(drawn_on_paper(one, size))
    rows, columns = np.nonzero(result.image > 0.3)
    assert np.ptp(rows) + 1 >= 19  # all of its height: no part taken for light on the paper
    assert 2 <= np.ptp(columns) + 1 <= 8  # and no wider than MNIST's 1s
    x, y, width, height = result.box
    assert abs(height - 110) <= 4 and abs(width - 20) <= 6


@pytest.mark.parametrize("squat", [1.0, 2.0, 3.0])  # width per height, as drawn
def test_a_squat_digit_is_read_in_mnist_proportions(squat):
    from pipeline.data import strokes

    ink = strokes.draw(4, "closed", strokes.Pen((0.08, 0.08)), np.random.default_rng(2))
    rows, columns = np.nonzero(ink > 0.5)
    ink = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    height = round(ink.shape[1] / squat)
    squashed = np.asarray(Image.fromarray(ink).resize((ink.shape[1], height), Image.Resampling.BILINEAR))
    result = images.to_mnist(drawn_on_paper(squashed, (200, 300)))
    rows, columns = np.nonzero(result.image > 0.3)
    width, tall = np.ptp(columns) + 1, np.ptp(rows) + 1
    assert width <= 1.25 * tall + 2  # no wider for its height than 98.6 % of MNIST's digits
    assert tall >= (12 if squat > 1.5 else 19)  # the squattest would fill 20 x 7 in its own proportions
    x, y, box_width, box_height = result.box  # where it is in the photo: as drawn
    assert abs(box_width - ink.shape[1]) <= 3 and abs(box_height - height) <= 3


@pytest.mark.parametrize("digit, variant, count", [(8, "two loops", 2), (4, "closed", 1), (6, "curved", 1)])
def test_a_bold_digit_keeps_its_holes(digit, variant, count):
    from pipeline.data import strokes

    ink = strokes.draw(digit, variant, strokes.Pen((0.2, 0.2)), np.random.default_rng(1))
    assert holes(ink) == count  # as drawn
    assert holes(images.to_mnist(drawn_on_paper(ink, (200, 160))).image) == count


def test_bold_strokes_are_thinned_to_about_mnists_width():
    from pipeline.data import strokes

    thinned = []
    for pen in (0.28, 0.3, 0.33, 0.36, 0.4):  # of the digit's height: strokes 4.8 to 7.2 box pixels wide, measured
        for digit, variant in ((0, "oval"), (8, "two loops"), (4, "closed")):
            ink = strokes.draw(digit, variant, strokes.Pen((pen, pen)), np.random.default_rng(1))
            rows, columns = np.nonzero(ink > 0.5)
            crop = ink[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
            assert images.stroke_width(crop) * images.BOX / max(crop.shape) > images.BOLDEST
            out = images.normal_strokes(crop)
            thinned.append(images.stroke_width(out) * images.BOX / max(out.shape))
    # Thinned by whole pixels on each side of a crop about 105 high: 0.38 of a box pixel for each, so not exactly.
    assert abs(np.mean(thinned) - images.THINNED_WIDTH) < 0.2


@pytest.mark.parametrize("light", ["a dim photo", "light falling off across the page", "a vignette"])
def test_the_light_on_the_paper_is_not_ink(digits, light):
    page = on_paper(digits[1], size=(300, 300), at=(60, 80), scale=5, gradient=0.0)
    rows, columns = np.mgrid[0:300, 0:300] / 300
    lighting = {
        "a dim photo": np.full((300, 300), 0.45),  # paper at 0.4: darker than the middle of the range
        "light falling off across the page": 1 - 0.6 * columns * rows,
        "a vignette": 1 - 0.6 * ((rows - 0.5) ** 2 + (columns - 0.5) ** 2),
    }[light]
    result = images.to_mnist((page * lighting).astype(np.float32))
    assert result.inverted
    assert similarity(result.image, images.to_mnist(digits[1]).image) > 0.85
    rows, columns = np.nonzero(result.image > 0.1)
    assert max(np.ptp(rows), np.ptp(columns)) + 1 in (20, 21)  # the crop is the digit's, not the light's


@pytest.mark.parametrize(
    "paper, ink, inverted",
    [
        ((238, 222, 120), (30, 30, 140), True),  # blue ink on yellow paper
        ((240, 190, 200), (20, 90, 40), True),  # green ink on pink paper
        ((30, 40, 110), (250, 230, 90), False),  # yellow chalk on a blue board
        ((110, 110, 110), (60, 60, 60), True),  # dark ink on grey paper, photographed dim
    ],
)
def test_coloured_paper_and_ink(digits, paper, ink, inverted):
    strength = np.kron(digits[2], np.ones((6, 6)))[..., None]
    page = np.pad(strength, ((40, 40), (60, 60), (0, 0)))
    rgb = (np.array(paper) * (1 - page) + np.array(ink) * page).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    result = images.to_mnist(images.read(buffer.getvalue()).gray)
    assert result.inverted == inverted
    assert similarity(result.image, images.to_mnist(digits[2]).image) > 0.85


def in_a_box(page, top, left, bottom, right, width=4, darkness=0.05):
    """`page` with a dark rectangle's outline on it, `width` thick, its outer edges at those rows and columns."""
    boxed = page.copy()
    boxed[top : top + width, left:right] = boxed[bottom - width : bottom, left:right] = darkness
    boxed[top:bottom, left : left + width] = boxed[top:bottom, right - width : right] = darkness
    return boxed


@pytest.mark.parametrize("pen", ["ink", "pencil"])
def test_a_box_drawn_around_a_digit_is_not_ink(digits, pen):
    page = on_paper(digits[1], size=(200, 200), at=(44, 44), scale=4, gradient=0.1)
    if pen == "pencil":  # pale strokes in a box printed black: the digit is what is stretched to full ink
        page = 1 - 0.35 * (1 - page)
    result = images.to_mnist(in_a_box(page, 10, 10, 190, 190))
    assert similarity(result.image, images.to_mnist(page).image) > 0.95


@pytest.mark.parametrize("degrees", [-3, 2, 4])
def test_a_tilted_box_is_not_ink(digits, degrees):
    from scipy import ndimage

    page = on_paper(digits[1], size=(200, 200), at=(44, 44), scale=4, gradient=0)
    tilted = ndimage.rotate(in_a_box(page, 10, 10, 190, 190), degrees, reshape=False, order=1, cval=0.95)
    bare = ndimage.rotate(page, degrees, reshape=False, order=1, cval=0.95)
    assert similarity(images.to_mnist(tilted).image, images.to_mnist(bare).image) > 0.95


def test_a_box_around_a_number_is_not_ink(digits):
    number = np.minimum(
        on_paper(digits[2], size=(160, 300), at=(24, 30), scale=4, gradient=0),
        on_paper(digits[3], size=(160, 300), at=(24, 150), scale=4, gradient=0),
    )
    boxed = images.ink_of(in_a_box(number, 8, 8, 152, 292)).map
    assert boxed[8:12].max() == 0 and similarity(boxed, images.ink_of(number).map) > 0.98


@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_a_digit_touching_its_box_keeps_what_is_not_the_box(digits, side):
    for digit in digits[1:4]:
        page = on_paper(digit, size=(200, 200), at=(44, 44), scale=4, gradient=0.1)
        rows, columns = (np.flatnonzero((page < 0.6).any(axis=axis)) for axis in (1, 0))
        edges = {  # the box's line drawn over the digit's outermost ink on that side
            "top": (rows[0] - 1, 10, 190, 190),
            "bottom": (10, 10, rows[-1] + 3, 190),
            "left": (10, columns[0] - 1, 190, 190),
            "right": (10, 10, 190, columns[-1] + 3),
        }
        result = images.to_mnist(in_a_box(page, *edges[side]))
        assert similarity(result.image, images.to_mnist(page).image) > 0.85


def ring_with_a_dot():
    rows, columns = np.mgrid[0:200, 0:200]
    radius = np.hypot((rows - 100) / 80, (columns - 100) / 50)
    return np.where((np.abs(radius - 1) < 0.12) | (radius < 0.1), 0.05, 0.95)


@pytest.mark.parametrize(
    "page, on_the_frame",
    [
        (in_a_box(np.full((200, 200), 0.95), 10, 10, 190, 190), (11, 100)),  # a box with nothing in it
        (lambda digit: in_a_box(on_paper(digit, (200, 200), (44, 44), 4, 0), 10, 10, 120, 190), (118, 30)),
        (ring_with_a_dot(), (20, 100)),  # a 0 with a dot in it is no box
    ],
    ids=["an empty box", "a digit through its box", "a dotted 0"],
)
def test_what_is_not_a_box_apart_from_a_digit_stays_ink(digits, page, on_the_frame):
    page = page(digits[1]) if callable(page) else page
    assert images.ink_of(page).map[on_the_frame] > 0.5


def test_the_outline_of_a_filled_shape_is_no_box():
    ink = np.zeros((28, 28), np.float32)
    ink[4:24, 8:20] = 0.35  # a garment's body, as the polarity step makes its fainter fabric ink
    ink[4:24, 8:10] = ink[4:24, 18:20] = ink[4:6, 8:20] = ink[22:24, 8:20] = 1.0  # and its brighter edges
    assert images.without_frame(ink) is ink


def test_a_small_mark_beside_fainter_ink_is_no_box():
    ink = np.zeros((28, 28), np.float32)
    ink[5:7, 12:16] = 1.0  # strong ink along all four sides of its own rectangle, and nothing inside
    ink[15:20, 5:20] = 0.3  # fainter ink outside it, as a scribble among the non-digits has
    assert images.without_frame(ink) is ink


@pytest.mark.parametrize("shape", [(1, 200), (200, 1), (2, 300), (1, 1)])
def test_a_sliver_of_an_image_is_refused_in_words(shape):
    page = np.ones(shape, np.float32)
    page[shape[0] // 2, shape[1] // 2] = 0.0
    with pytest.raises(images.NotADigit):
        images.to_mnist(page)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (2, 2), (3, 9), (40, 300), (200, 50)])
def test_the_3x3_median_is_scipys(shape):
    from scipy import ndimage

    rng = np.random.default_rng(sum(shape))
    noise = rng.random(shape).astype(np.float32)
    for image in noise, np.round(noise * 3) / 3, noise * (noise > 0.7):  # ties and flat runs too
        assert np.array_equal(images.median_3x3(image), ndimage.median_filter(image, size=3))


@pytest.mark.parametrize("shape", [(1, 1), (3, 9), (40, 30), (80, 200)])
@pytest.mark.parametrize("radius", [1, 2, 3, 7])
def test_growing_and_thinning_over_a_disk_is_scipys(shape, radius):
    from scipy import ndimage

    rng = np.random.default_rng(sum(shape) + radius)
    strokes = (rng.random(shape) * (rng.random(shape) > 0.6)).astype(np.float32)
    disk = np.hypot(*np.mgrid[-radius : radius + 1, -radius : radius + 1]) <= radius
    padded = np.pad(strokes, radius)
    assert np.array_equal(images.over_disk(strokes, radius, np.maximum), ndimage.grey_dilation(padded, footprint=disk))
    assert np.array_equal(images.over_disk(strokes, radius, np.minimum), ndimage.grey_erosion(padded, footprint=disk))


@pytest.mark.parametrize("shape", [(1, 1), (3, 9), (40, 30), (80, 200)])
def test_the_stroke_width_counts_scipys_outline(shape):
    from scipy import ndimage

    ink = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    strong = ink > 0.5 * ink.max()
    outline = strong & ~ndimage.binary_erosion(strong)  # the pixels of the strokes that touch no ink on a side
    assert images.stroke_width(ink) == pytest.approx(2 * ink.sum() / ink.max() / outline.sum(), rel=1e-6)


@pytest.mark.parametrize("count", [1, 2, 7, 8, 1000, 1001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_median_is_numpys_to_the_bit(count, dtype):
    values = np.random.default_rng(count).normal(size=count).astype(dtype)
    for sample in values, np.round(values, 1), values.reshape(1, -1):
        assert images.median(sample) == np.median(sample)
        assert images.median(sample).dtype == np.median(sample).dtype


@pytest.mark.parametrize(
    ("shape", "size"),
    [((80, 57), (14, 20)), ((90, 30), (7, 20)), ((13, 9), (20, 14)), ((41, 41), (20, 20)), ((20, 3), (20, 3))],
)
def test_a_crop_fitted_into_the_box_is_resampled_as_pillow_does(shape, size):
    # The crops that `resized` resamples itself: reduced (up to 4.5 times), enlarged, and kept in one dimension.
    crop = np.random.default_rng(sum(shape)).random(shape).astype(np.float32)
    image = Image.fromarray(crop, mode="F").resize(size, Image.Resampling.LANCZOS, reducing_gap=images.REDUCING_GAP)
    assert np.abs(images.resized(crop, size) - np.clip(np.asarray(image), 0, 1)).max() < 1e-6
