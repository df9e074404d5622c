"""Digits bent as hands bend them: each its own smooth bend, keeping its ink and place, repeatable from a seed."""

import numpy as np
import pytest
from test_augmentation import centres_of_mass

from pipeline.data import bends, strokes


@pytest.fixture(scope="module")
def drawn():
    images, _ = strokes.sample(200, seed=5)
    return images


def test_no_strength_leaves_the_digits_as_they_were(drawn):
    np.testing.assert_array_equal(bends.bent(drawn, 0.0, seed=1), drawn)


def test_a_bend_moves_strokes_and_keeps_the_digits_ink_and_place(drawn):
    bent = bends.bent(drawn, 34.0, seed=2)
    assert bent.shape == drawn.shape and bent.dtype == np.float32
    assert bent.min() >= 0 and bent.max() <= 1
    moved = np.abs(bent - drawn).max(axis=(1, 2))
    assert np.mean(moved > 0.3) > 0.8  # strokes have left pixels they covered, in nearly every digit
    change = np.abs(bent.sum(axis=(1, 2)) / drawn.sum(axis=(1, 2)) - 1)
    assert np.median(change) < 0.05 and change.max() < 0.35
    for before, after in zip(centres_of_mass(drawn), centres_of_mass(bent)):
        assert np.median(np.abs(after - before)) < 0.5 and np.abs(after - before).max() < 3.5


def test_stronger_bends_move_strokes_further(drawn):
    def moved(alpha):
        return np.abs(bends.bent(drawn, alpha, seed=3) - drawn).mean()

    assert moved(8.0) < moved(34.0)


def test_the_same_seed_bends_the_same_way_and_another_seed_otherwise(drawn):
    before = drawn.copy()
    once, again = bends.bent(drawn, 34.0, seed=3), bends.bent(drawn, 34.0, seed=3)
    np.testing.assert_array_equal(once, again)
    assert not np.array_equal(once, bends.bent(drawn, 34.0, seed=4))
    np.testing.assert_array_equal(drawn, before)  # a copy is bent, the images given are left as they were
