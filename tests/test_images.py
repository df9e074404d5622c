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
    gray = images.read(encoded(paper, format, mode))
    assert gray.shape == paper.shape and gray.dtype == np.float32
    assert np.abs(gray - paper).mean() < 0.03
    assert similarity(images.to_mnist(gray).image, images.to_mnist(paper).image) > 0.95


def test_transparent_pixels_are_white_paper(digits):
    ink = (digits[3] > 0.5).astype(np.uint8) * 255
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., 3] = ink  # black ink where opaque, transparent elsewhere
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    gray = images.read(buffer.getvalue())
    assert gray[0, 0] == 1.0 and gray[ink > 0].max() == 0.0
    assert images.to_mnist(gray).inverted


def test_exif_orientation_is_applied(digits):
    paper = on_paper(digits[4])
    rotated = Image.fromarray((paper * 255).astype(np.uint8)).rotate(90, expand=True)  # stored turned
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to display"
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif, quality=95)
    gray = images.read(buffer.getvalue())
    assert gray.shape == paper.shape
    assert np.abs(gray - paper).mean() < 0.03


def test_the_first_frame_of_an_animation(digits):
    frames = [Image.fromarray((on_paper(digit) * 255).astype(np.uint8)) for digit in digits[5:7]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert np.abs(images.read(buffer.getvalue()) - on_paper(digits[5])).mean() < 0.03


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


def written_number(mnist, indices, gaps, height=200):
    """MNIST test digits side by side (each trimmed to its ink, `gaps` pixels apart) on paper, with their boxes."""
    columns, boxes, left = [], [], 20
    for index, gap in zip(indices, gaps):
        digit = mnist.test_images[index] / 255.0
        used = np.nonzero(digit.max(axis=0) > 0)[0]
        piece = digit[:, used.min() : used.max() + 1]
        rows = np.nonzero(piece.max(axis=1) > 0)[0]
        boxes.append((left, rows.min(), piece.shape[1], rows.max() - rows.min() + 1))
        columns += [piece, np.zeros((28, gap))]
        left += piece.shape[1] + gap
    strip = np.pad(np.concatenate(columns, axis=1), ((0, 0), (20, 20)))
    scale = height / 28
    big = np.asarray(
        Image.fromarray(strip.astype(np.float32), mode="F").resize(
            (round(strip.shape[1] * scale), height), Image.Resampling.BILINEAR
        )
    )
    paper = (0.9 - 0.2 * np.linspace(0, 1, big.shape[1])[None, :]) * (1 - 0.9 * np.clip(big, 0, 1))
    return paper.astype(np.float32), [tuple(round(value * scale) for value in box) for box in boxes]


@pytest.mark.parametrize("gap", [2, 12])  # pixels of 28: almost touching, spaced
def test_a_whole_number_is_split_into_its_digits_left_to_right(mnist, gap):
    indices = list(range(10, 22))  # twelve digits
    paper, boxes = written_number(mnist, indices, [gap] * len(indices))
    found = images.digits_in(paper)
    assert len(found) == len(indices)
    for digit, (x, y, width, height) in zip(found, boxes):
        assert digit.image.shape == (28, 28) and digit.inverted
        found_x, found_y, found_width, found_height = digit.box
        assert abs(found_x - x) <= 10 and abs(found_y - y) <= 10
        assert abs(found_width - width) <= 14 and abs(found_height - height) <= 14


def test_the_pieces_of_a_digit_stay_together():
    five = np.zeros((28, 28), np.float32)
    five[3:6, 9:22] = 1.0  # the top bar, drawn as a stroke of its own
    five[7:14, 8:11] = 1.0  # the rest in one stroke: down,
    five[12:15, 8:20] = 1.0  # right,
    five[12:23, 17:20] = 1.0  # down
    five[20:23, 7:20] = 1.0  # and back left
    paper = 1 - np.pad(np.concatenate([five, np.zeros((28, 6)), five], axis=1), 20)
    found = images.digits_in(paper.astype(np.float32))
    assert [digit.box[1] for digit in found] == [23, 23]  # each from its top bar down


def test_specks_are_not_digits(mnist):
    paper, _ = written_number(mnist, [10, 11], [8, 0])
    paper[5:8, 5:8] = 0.0  # a speck of dust in the corner
    assert len(images.digits_in(paper)) == 2


def test_digits_that_touch_are_cut_apart(mnist):
    zeros = [mnist.test_images[index] / 255.0 for index in (3, 10, 13)]
    pieces = [zero[:, np.nonzero(zero.max(axis=0))[0]] for zero in zeros]
    strip, lefts = np.zeros((28, 80)), []
    left = 4
    for piece in pieces:  # each zero overlaps the one before by 3 pixels: the ink joins
        lefts.append(left)
        strip[:, left : left + piece.shape[1]] = np.maximum(strip[:, left : left + piece.shape[1]], piece)
        left += piece.shape[1] - 3
    paper = 1 - np.kron(np.pad(strip, 6), np.ones((8, 8)))
    found = images.digits_in(paper.astype(np.float32))
    assert len(found) == 3
    for digit, left in zip(found, lefts):
        assert abs(digit.box[0] - (left + 6) * 8) <= 3 * 8


def test_a_stray_mark_between_digits_is_not_a_digit(mnist):
    paper, boxes = written_number(mnist, [10, 11], [12, 0])
    right_of_first = boxes[0][0] + boxes[0][2]
    paper[60:120, right_of_first + 12 : right_of_first + 15] = 0.6  # a thin faint stroke in the gap
    assert len(images.digits_in(paper)) == 2


@pytest.mark.parametrize("height, width", [(2, 5), (3, 30)])
def test_a_tiny_flat_mark_is_split_without_failing(height, width):
    paper = np.ones((60, 80), np.float32)
    paper[28 : 28 + height, 10 : 10 + width] = 0.0
    found = images.digits_in(paper)
    assert found and sum(digit.box[2] for digit in found) <= width + len(found)
