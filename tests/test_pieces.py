"""The piece network's data and training: numbers composed from digits, cut by the real segmentation, labelled."""

import numpy as np
import pytest

from pipeline.data import numbers
from pipeline.training import pieces
from pipeline.training.splits import split


@pytest.fixture(scope="module")
def test_digits(mnist):
    return [(mnist.test_images[:2000].astype(np.float32) / 255, mnist.test_labels[:2000])]


def test_a_piece_is_the_digit_whose_columns_it_holds_or_not_one_digit():
    spans, digits, height = [(0, 20), (20, 34), (34, 60)], [7, 1, 4], 30
    assert numbers.label_of((1, 5, 19, 30), spans, digits, height) == 7  # 19 of 20 columns, nothing else
    assert numbers.label_of((21, 0, 13, 30), spans, digits, height) == 1
    assert numbers.label_of((0, 0, 34, 30), spans, digits, height) == numbers.NOT_ONE_DIGIT  # 7 and 1 run together
    assert numbers.label_of((40, 0, 10, 30), spans, digits, height) == numbers.NOT_ONE_DIGIT  # a sliver of the 4
    assert numbers.label_of((0, 0, 13, 30), spans, digits, height) is None  # 65 % of the 7: neither, left out
    overlapping = [(0, 30), (4, 10)]  # a narrow 1 written into a wide 4
    assert numbers.label_of((0, 0, 30, 30), overlapping, [4, 1], height) == numbers.NOT_ONE_DIGIT
    assert numbers.label_of((0, 0, 30, 30), [(0, 30), (27, 35)], [4, 1], height) == 4  # only the 1's edge is in it


def test_a_narrow_digit_is_matched_by_its_edges():
    """A bold pen widens a 1 by a few pixels on each side: most of its columns, but still a 1."""
    spans, digits, height = [(0, 44), (50, 56), (66, 100)], [4, 1, 0], 50
    assert numbers.label_of((45, 0, 16, 50), spans, digits, height) == 1  # 5 columns more on either side
    assert numbers.label_of((42, 0, 16, 50), spans, digits, height) == 1  # and a sliver of the 4
    assert numbers.label_of((50, 0, 30, 50), spans, digits, height) == numbers.NOT_ONE_DIGIT  # a third of the 0 too
    assert numbers.label_of((66, 0, 14, 50), spans, digits, height) == numbers.NOT_ONE_DIGIT  # the 0's left side


def test_pieces_are_repeatable_from_a_seed_in_mnist_format_and_of_both_kinds(test_digits):
    made, labels = numbers.pieces(30, 5, test_digits, [1.0])
    again, again_labels = numbers.pieces(30, 5, test_digits, [1.0])
    assert np.array_equal(made, again) and np.array_equal(labels, again_labels)
    other, _ = numbers.pieces(30, 6, test_digits, [1.0])
    assert other.shape != made.shape or not np.array_equal(other, made)
    assert made.shape == (len(labels), 28, 28) and made.dtype == np.float32 and labels.dtype == np.uint8
    assert made.min() >= 0 and made.max() <= 1
    assert set(labels) <= set(range(11)) and numbers.NOT_ONE_DIGIT in labels and (labels < 10).sum() >= 30


def test_whole_pieces_are_labelled_with_the_digit_a_network_reads_in_them(test_digits, reader):
    """Version 4, trained on MNIST's training digits, reads the pieces labelled whole as their labels."""
    made, labels = numbers.pieces(60, 7, test_digits, [1.0])
    whole = labels < numbers.NOT_ONE_DIGIT
    read = reader(made[whole]).argmax(axis=1)
    # Measured: 0.91 of 408 (the rest are cut a little into a touching neighbour, or misread).
    assert np.mean(read == labels[whole]) >= 0.85


def test_the_piece_network_trains_on_a_slice_and_reports_how_it_did(mnist):
    splits = split(mnist, 500, 3000)
    network, metrics = pieces.train(splits, 0.03, seed=0)
    assert network.output_shape == (None, 11)
    assert set(metrics) == {"pieces_train_seconds", "pieces_trained_on", "pieces_val_accuracy"}
    assert metrics["pieces_trained_on"] > 2500  # the pieces of 75 numbers and the 2,500 digits
    # Measured on pieces of numbers composed from the 500 validation digits: 0.83 (about a minute, tests beside it).
    assert metrics["pieces_val_accuracy"] >= 0.7
