"""Digits drawn in pen strokes and printed in typefaces: the training digits beyond MNIST's."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_images import enclosed

from pipeline.data import strokes, typefaces
from pipeline.serving import images

STYLES = [(digit, variant) for digit in strokes.TEMPLATES for variant in strokes.TEMPLATES[digit]]
# Reserved for independent evaluation: never drawn from, by training or by these tests.
RESERVED = ("dkg-handwriting", "breip", "bwht", "femkeklaver", "humor", "comic", "dancing", "ecolier", "klee", "yusei")


def drawn_and_printed(count, seed):
    return strokes.sample(count, seed), typefaces.sample(count, seed)


def test_the_same_seed_gives_the_same_digits_and_another_seed_others():
    (drawn, drawn_labels), (printed, printed_labels) = drawn_and_printed(40, seed=3)
    (again, again_labels), (printed_again, _) = drawn_and_printed(40, seed=3)
    assert np.array_equal(drawn, again) and np.array_equal(drawn_labels, again_labels)
    assert np.array_equal(printed, printed_again)
    (other, _), (printed_other, _) = drawn_and_printed(40, seed=4)
    assert not np.array_equal(drawn, other) and not np.array_equal(printed, printed_other)


def test_digits_come_in_mnist_format():
    for made, labels in drawn_and_printed(60, seed=0):
        assert made.shape == (60, 28, 28) and made.dtype == np.float32 and labels.dtype == np.uint8
        assert made.min() >= 0 and made.max() == pytest.approx(1.0, abs=0.02)
        for image in made:
            rows, columns = np.nonzero(image > 0.1)
            assert max(np.ptp(rows), np.ptp(columns)) + 1 in (19, 20, 21)  # fitted in MNIST's 20x20 box
            mass = np.array([np.average(axis, weights=image[rows, columns]) for axis in (rows, columns)])
            assert np.abs(mass - 13.5).max() <= 1.0  # centred by its centre of mass


def test_every_style_and_every_pen_is_drawn_in_turn():
    count = len(STYLES) * len(strokes.TRAINING_PENS)
    made, labels = strokes.sample(count, seed=0)
    assert list(labels) == [digit for _ in strokes.TRAINING_PENS for digit, _ in STYLES]
    # The pens differ: each broader one draws broader strokes (before they are evened out for the network).
    rng = np.random.default_rng(0)
    widths = [
        np.mean([images.stroke_width(strokes.draw(digit, variant, pen, rng)) for digit, variant in STYLES])
        for pen in strokes.TRAINING_PENS.values()
    ]
    assert widths == sorted(widths) and widths[-1] > 4 * widths[0], widths
    printed, printed_labels = typefaces.sample(10 * len(typefaces.training()), seed=0)
    assert list(printed_labels) == list(range(10)) * len(typefaces.training())


def test_a_fine_pen_draws_unbroken_strokes():
    rng = np.random.default_rng(0)
    fine = strokes.Pen((0.02, 0.02))
    for digit, variant in [(1, "stick"), (7, "plain"), (0, "oval")]:
        from scipy import ndimage

        _, count = ndimage.label(strokes.draw(digit, variant, fine, rng) > 0.5, structure=np.ones((3, 3)))
        assert count == 1, (digit, variant)


def test_a_looped_4_closes_its_loop_and_a_small_top_8_has_the_smaller_loop_on_top():
    rng = np.random.default_rng(0)
    ballpoint = strokes.Pen((0.06, 0.06))
    eights = []
    for _ in range(8):
        assert enclosed(strokes.draw(4, "looped", ballpoint, rng))
        loops = sorted(
            enclosed(strokes.draw(8, "small top", ballpoint, rng)), key=lambda loop: np.nonzero(loop)[0].mean()
        )
        eights.append([int(loop.sum()) for loop in loops])  # from the top down
    closed = [areas for areas in eights if len(areas) == 2]  # a stroke's end may leave the upper loop open
    assert len(closed) >= len(eights) // 2, eights
    assert all(upper < lower / 2 for upper, lower in closed), closed


def test_training_and_evaluation_never_share_a_pen_or_a_typeface():
    assert not set(strokes.TRAINING_PENS) & set(strokes.HELD_OUT_PENS)
    held_out = typefaces.held_out() + typefaces.handwriting(held_out=True)
    development = typefaces.handwriting()  # the development sets' handwriting: not trained on either
    assert not set(typefaces.training()) & set(held_out + development) and not set(held_out) & set(development)
    assert all(Path(path).is_file() for path in typefaces.training() + held_out + development if path)
    for path in typefaces.training() + held_out + development:
        assert not any(name in path.lower() for name in RESERVED), path


def test_the_handwriting_typefaces_are_where_setup_installs_them():
    patterns = typefaces.HANDWRITING + typefaces.HELD_OUT_HANDWRITING
    installed = [pattern for pattern in patterns if typefaces.system_fonts((pattern,))]
    if not installed:
        pytest.skip("the Debian packages of the typefaces drawn from handwriting are not installed (make setup)")
    assert installed == list(patterns)


def test_setup_installs_the_package_of_every_handwriting_typeface():
    found = [typefaces.system_fonts((pattern,)) for pattern in typefaces.HANDWRITING + typefaces.HELD_OUT_HANDWRITING]
    if not all(found) or not shutil.which("dpkg-query"):
        pytest.skip("the typefaces drawn from handwriting are not installed from Debian here (make setup)")
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    listed = re.search(r"^HANDWRITING_FONTS := (.*?[^\\])$", makefile, re.MULTILINE | re.DOTALL).group(1).split()
    for files in found:
        owner = subprocess.run(["dpkg-query", "-S", files[0]], capture_output=True, text=True, check=True).stdout
        assert owner.split(":")[0] in listed, owner


def test_every_typeface_has_the_ten_digits():
    """A typeface without a digit prints the same box for each missing one: each must print ten shapes."""
    every = typefaces.training() + typefaces.held_out() + typefaces.handwriting() + typefaces.handwriting(held_out=True)
    for path in every:
        shapes = set()
        for digit in range(10):
            picture = Image.new("L", (2 * typefaces.SIZE, 2 * typefaces.SIZE))
            ImageDraw.Draw(picture).text(
                (typefaces.SIZE, typefaces.SIZE), str(digit), fill=255, font=typefaces.font(path), anchor="mm"
            )
            shapes.add((np.asarray(picture) > 127).tobytes())
        assert len(shapes) == 10, path


def test_a_network_trained_on_mnist_reads_the_written_digits(reader):
    """The labels are the digits drawn: MNIST's own network, which never saw these styles, mostly agrees."""
    for made, labels in drawn_and_printed(300, seed=5):
        assert (reader(made).argmax(axis=1) == labels).mean() >= 0.8


def test_a_pens_dabs_traced_together_leave_what_they_leave_one_by_one():
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0 : strokes.CANVAS, 0 : strokes.CANVAS]
    # A wandering path that runs off the canvas and back, the pen's radius changing along it.
    path = np.cumsum(rng.normal(0, 2.5, (100, 2)), axis=0) + (5, 60)
    radii = rng.uniform(0.6, 9.0, len(path))
    one_by_one = np.zeros(rows.shape, np.float32)
    for (x, y), radius in zip(path, radii):
        distance = np.hypot(rows - y, columns - x)
        one_by_one = np.maximum(one_by_one, np.clip(radius + 0.5 - distance, 0, 1)).astype(np.float32)
    traced = strokes.traced(path, radii, rows, columns)
    assert traced.dtype == np.float32 and np.array_equal(traced, one_by_one)
