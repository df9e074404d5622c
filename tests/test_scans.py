"""Digits as a coarse scan shows them: a share of them, each keeping its ink and place, losing its detail."""

import numpy as np
import pytest
from test_augmentation import centres_of_mass

from pipeline.data import scans, strokes


@pytest.fixture(scope="module")
def drawn():
    images, _ = strokes.sample(200, seed=5)
    return images


def test_about_the_share_is_scanned_and_the_rest_left_as_it_was(drawn):
    for share in (0.0, 0.25, 1.0):
        scanned = scans.coarse(drawn, share, seed=1)
        changed = np.abs(scanned - drawn).max(axis=(1, 2)) > 0.05
        assert abs(changed.mean() - share) < 0.1, share
        np.testing.assert_array_equal(scanned[~changed], drawn[~changed])
    assert scanned.shape == drawn.shape and scanned.dtype == np.float32
    assert scanned.min() >= 0 and scanned.max() <= 1


def test_a_scan_keeps_the_digits_ink_and_place_and_loses_its_detail(drawn):
    scanned = scans.coarse(drawn, 1.0, seed=2)
    ink, scanned_ink = drawn.sum(axis=(1, 2)), scanned.sum(axis=(1, 2))
    change = np.abs(scanned_ink / ink - 1)
    assert np.median(change) < 0.02 and change.max() < 0.3  # a fine stroke enlarged blocky gains most
    for before, after in zip(centres_of_mass(drawn), centres_of_mass(scanned)):
        assert np.abs(after - before).max() < 1.0
    # Averaged down to at most 20 pixels a side, an image has fewer distinct rows of ink than it had.
    assert np.mean([len(np.unique(image, axis=0)) for image in scanned]) < np.mean(
        [len(np.unique(image, axis=0)) for image in drawn]
    )


def test_the_same_seed_scans_the_same_way_and_another_seed_otherwise(drawn):
    before = drawn.copy()
    once, again = scans.coarse(drawn, 0.5, seed=3), scans.coarse(drawn, 0.5, seed=3)
    np.testing.assert_array_equal(once, again)
    assert not np.array_equal(once, scans.coarse(drawn, 0.5, seed=4))
    np.testing.assert_array_equal(drawn, before)  # a copy is scanned, the images given are left as they were
