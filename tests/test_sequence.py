"""The sequence reader: numbers as lines, its training, its answers decoded, and how they join segmentation's."""

import base64
import io
import itertools

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import train_tiny
from PIL import Image

from pipeline import train
from pipeline.data import numbers
from pipeline.serving import images, reading, sequence
from pipeline.training import sequence_reader
from pipeline.training.settings import Settings, SettingsError
from pipeline.training.splits import split


def page(ink_columns, height=60, width=200, top=20, ink_height=20):
    """White paper with black ink filling rows top..top+ink_height over each (start, stop) of `ink_columns`."""
    gray = np.ones((height, width), np.float32)
    for start, stop in ink_columns:
        gray[top : top + ink_height, start:stop] = 0.0
    return gray


def frames_reading(labels, sure=0.9):
    """Logits for one line: each frame's label (BLANK for none) at probability about `sure`."""
    logits = np.zeros((sequence.FRAMES, sequence.BLANK + 1))
    for frame, label in enumerate(labels):
        logits[frame, label] = np.log(sure * sequence.BLANK / (1 - sure))
    return logits


def test_a_line_is_the_ink_scaled_to_its_height_from_the_left():
    line = sequence.line_of(page([(20, 80)]))  # ink 60 wide, 20 high
    assert line.image.shape == (sequence.HEIGHT, sequence.WIDTH) and line.image.dtype == np.float32
    inner = sequence.HEIGHT - 2 * sequence.MARGIN
    assert line.columns == 60 * inner // 20  # the ink's width in its height, kept
    inked = np.argwhere(line.image > 0.5)
    assert inked.min(axis=0).tolist() == [sequence.MARGIN, sequence.MARGIN]
    assert inked.max(axis=0).tolist() == [sequence.MARGIN + inner - 1, sequence.MARGIN + line.columns - 1]
    assert line.crop == (20, 20, 60, 20)


def test_a_number_too_long_for_the_line_is_narrowed_to_fit_and_a_blank_page_is_refused():
    line = sequence.line_of(page([(10, 1990)], width=2000))
    assert line.columns == sequence.WIDTH - 2 * sequence.MARGIN
    inner = line.image[sequence.MARGIN : -sequence.MARGIN, sequence.MARGIN : -sequence.MARGIN]
    assert (
        inner.shape == (sequence.HEIGHT - 2 * sequence.MARGIN, sequence.WIDTH - 2 * sequence.MARGIN)
        and inner.mean() > 0.8
    )  # all of it inked
    with pytest.raises(images.NotADigit):
        sequence.line_of(np.ones((60, 200), np.float32))


def test_each_digit_read_gets_the_columns_halfway_to_its_neighbours():
    line = sequence.line_of(page([(20, 80)]))  # 84 line columns for 60 image columns
    # Digits read at frames 5 and 15: their centres are line columns 20 and 60 after the margin, so the
    # boxes meet at 40 of 84 columns, 40 * 60 / 84 = 28.6 image columns from the ink's left edge at 20.
    assert line.boxes([5, 15]) == [(20, 20, 29, 20), (49, 20, 31, 20)]
    assert line.boxes([9]) == [(20, 20, 60, 20)]  # one digit: all the ink


def test_a_reduced_image_gets_boxes_in_the_original_pixels():
    line = sequence.line_of(page([(20, 80)]), scale=0.5)  # the file was twice as large
    assert line.boxes([9]) == [(40, 40, 120, 40)]


def test_the_reader_is_decoded_greedily_repeats_merged_blanks_dropped():
    blank = sequence.BLANK
    labels = [blank, 3, 3, blank, 3, blank, blank, 1, 1, *[blank] * (sequence.FRAMES - 9)]
    logits = frames_reading(labels)
    logits[2, 3] += 1.0  # the first 3 is surest at its second frame
    frames = sequence.probabilities(logits[None])[0]
    assert np.allclose(frames.sum(axis=1), 1) and abs(frames[1, 3] - 0.9) < 1e-9
    assert sequence.digit_frames(frames) == [2, 4, 7]
    assert sequence.number_in(frames) == "331"
    assert sequence.number_in(sequence.probabilities(frames_reading([blank] * sequence.FRAMES)[None])[0]) == ""


def every_path_reading(frames, number):
    """P(number | frames) summed over every path of one label per frame, each collapsed by hand."""
    total = 0.0
    for path in itertools.product(range(sequence.BLANK + 1), repeat=len(frames)):
        merged = [label for frame, label in enumerate(path) if frame == 0 or label != path[frame - 1]]
        if "".join(str(label) for label in merged if label != sequence.BLANK) == number:
            total += np.prod([frames[frame, label] for frame, label in enumerate(path)])
    return total


def test_the_likelihood_of_a_number_sums_every_path_that_reads_it():
    frames = np.random.default_rng(0).random((4, sequence.BLANK + 1))
    frames /= frames.sum(axis=1, keepdims=True)
    for number in ("", "3", "33", "34", "343", "3434"):
        expected = every_path_reading(frames, number)
        assert abs(sequence.log_likelihood(frames, number) - np.log(expected)) < 1e-9, number
    assert sequence.log_likelihood(frames, "34343") < -60  # five digits cannot be read from four frames


@pytest.fixture(scope="module")
def test_digits(mnist):
    return [(mnist.test_images[:2000].astype(np.float32) / 255, mnist.test_labels[:2000])]


def test_lines_are_repeatable_from_a_seed_with_the_digits_they_hold(test_digits):
    lines, labels, lengths = numbers.lines(12, 3, test_digits, [1.0])
    again = numbers.lines(12, 3, test_digits, [1.0])
    assert all(np.array_equal(made, remade) for made, remade in zip((lines, labels, lengths), again))
    assert not np.array_equal(lines, numbers.lines(12, 4, test_digits, [1.0])[0])
    assert lines.shape == (12, sequence.HEIGHT, sequence.WIDTH) and 0 <= lines.min() and lines.max() <= 1
    assert labels.shape == (12, sequence.MAX_DIGITS) and 1 <= lengths.min() and lengths.max() <= sequence.MAX_DIGITS
    assert all(not row[length:].any() for row, length in zip(labels, lengths))  # 0 past each number's end
    sevens = [(test_digits[0][0][test_digits[0][1] == 7], np.full(int((test_digits[0][1] == 7).sum()), 7))]
    _, seven_labels, seven_lengths = numbers.lines(6, 3, sevens, [1.0])
    assert all(set(row[:length]) == {7} for row, length in zip(seven_labels, seven_lengths))


def test_lines_composed_in_several_processes_are_those_composed_in_one(test_digits, monkeypatch):
    in_one = numbers.lines(4, 3, test_digits, [1.0])
    monkeypatch.setattr(numbers, "LINES_PER_PROCESS", 4)
    in_three = numbers.lines(10, 3, test_digits, [1.0])  # 4 + 4 + 2 lines, each part from its own seed
    assert [part.shape[0] for part in in_three] == [10, 10, 10]
    assert all(np.array_equal(one, three[:4]) for one, three in zip(in_one, in_three))
    assert len({line.tobytes() for line in in_three[0]}) == 10  # the parts are not copies of each other


def test_lines_are_read_up_to_their_ink_rounded_to_buckets():
    lines = np.zeros((3, sequence.HEIGHT, sequence.WIDTH), np.float32)
    lines[0, 10, 2:20] = 1  # ink to column 19: with the margin 22 columns, one bucket of 32
    lines[1, 10, 2:31] = 1  # to column 30: 33 columns, two buckets
    lines[2, 10, 2 : sequence.WIDTH - 2] = 1  # the longest line
    assert list(sequence.read_columns(lines)) == [32, 64, sequence.WIDTH]
    assert sequence.trimmed(lines[:2]).shape == (2, sequence.HEIGHT, 64)
    assert np.array_equal(sequence.trimmed(lines[:2]), lines[:2, :, :64])
    assert sequence.trimmed(np.zeros((1, sequence.HEIGHT, sequence.WIDTH), np.float32)).shape[2] == 32


def test_training_batches_hold_lines_of_one_width_each_line_once_an_epoch():
    widths = [32, 32, 32, 64, 96, 96, 32, 64, 320, 96]
    lines = np.zeros((len(widths), sequence.HEIGHT, sequence.WIDTH), np.float32)
    for line, width in zip(lines, widths):
        line[5, width - 3] = 1.0  # its last ink column, read with the margin up to `width`
    packed = np.arange(len(widths), dtype=np.float32)[:, None]  # each line's index, to find it in its batch
    assert sequence_reader.BATCH_SIZE >= 4  # so that each width's lines fit one batch here
    read = sequence.read_columns(lines)
    per_epoch = sequence_reader.batches_per_epoch(read)
    assert per_epoch == 4  # widths 32, 64, 96 and 320
    batches = list(sequence_reader.batches(lines, read, packed, seed=1).take(2 * per_epoch).as_numpy_iterator())
    for epoch in (batches[:per_epoch], batches[per_epoch:]):
        seen = sorted(int(index) for _, indices in epoch for index in indices[:, 0])
        assert seen == list(range(len(widths)))
        for batch, indices in epoch:
            assert {widths[int(index)] for index in indices[:, 0]} == {batch.shape[2]}
            assert np.array_equal(batch, lines[indices[:, 0].astype(int), :, : batch.shape[2]])
    again = list(sequence_reader.batches(lines, read, packed, seed=1).take(per_epoch).as_numpy_iterator())
    assert all(np.array_equal(first[1], second[1]) for first, second in zip(batches, again))


def test_the_ctc_loss_is_lower_for_the_right_number():
    import keras

    labels, lengths = np.zeros((1, sequence.MAX_DIGITS)), np.array([2])
    labels[0, :2] = [4, 2]
    blank = sequence.BLANK
    right = frames_reading([blank] * 10 + [4, blank, 2] + [blank] * (sequence.FRAMES - 13))
    wrong = frames_reading([blank] * 10 + [4, blank, 7] + [blank] * (sequence.FRAMES - 13))
    packed = keras.ops.convert_to_tensor(sequence_reader.targets(labels, lengths))
    losses = [
        float(sequence_reader.ctc_loss(packed, keras.ops.convert_to_tensor(logits[None], "float32"))[0])
        for logits in (right, wrong)
    ]
    assert np.isfinite(losses).all() and losses[0] < losses[1]


def test_the_reader_trains_on_a_slice_and_reports_how_it_did(mnist):
    network, metrics = sequence_reader.train(split(mnist, 500, 3000), 0.02, seed=0, epochs=1)  # 50
    assert network.output_shape == (None, None, sequence.BLANK + 1)  # a frame per FRAME_COLUMNS, any width
    assert network.predict_on_batch(np.zeros((2, sequence.HEIGHT, 64), np.float32)).shape == (2, 16, 11)
    assert set(metrics) == {"reader_train_seconds", "reader_trained_on", "reader_val_exact"}
    assert metrics["reader_trained_on"] == 50 and 0 <= metrics["reader_val_exact"] <= 1


def seventy(mnist):
    """A 7 and a 0 side by side, a little apart, dark on light paper."""
    ink = np.zeros((28, 48))
    ink[:, 0:20] = mnist.test_images[0][:, 4:24] / 255.0
    ink[:, 26:46] = mnist.test_images[3][:, 4:24] / 255.0
    return images.Picture(1 - ink)


def test_the_reader_answers_where_it_counts_other_digits_than_segmentation_and_reads_each_digit_besides(mnist):
    asked = []

    def classifier(batch):
        return np.eye(10)[np.full(len(batch), 7)] * 0.9 + 0.01

    def reading_as(labels, sure=0.9):
        def lines_of(batch):
            asked.append(len(batch))
            blank = sequence.BLANK
            frames = [blank] * sequence.FRAMES
            for frame, label in zip((3, 8, 13), labels):
                frames[frame] = label
            return np.stack([frames_reading(frames, sure)] * len(batch))

        return lines_of

    pictures = [seventy(mnist), seventy(mnist), images.Picture(1 - mnist.test_images[0] / 255.0)]
    modes = ["number", "number", "digit"]
    alone = reading.answers(pictures, modes, classifier)
    assert alone[0]["number"] == "77"  # segmentation, whatever the classifier reads, finds two digits
    # As many digits: each read by both, with segmentation's boxes. The classifier is 91 % sure of 7.
    agreeing = reading.answers(pictures, modes, classifier, lines_of=reading_as([7, 7]))
    assert agreeing[0]["number"] == "77" and asked == [2]
    assert [digit["box"] for digit in agreeing[0]["digits"]] == [digit["box"] for digit in alone[0]["digits"]]
    disagreeing = reading.answers(pictures, modes, classifier, lines_of=reading_as([1, 2]))
    assert disagreeing[0]["rejected"]  # 7 at 91 % against 1 at 91 %: 35 % sure of either
    assert disagreeing[0]["reason"].startswith("digit 1 of 2: confidence 35%")
    surer = reading.answers(pictures, modes, classifier, lines_of=reading_as([1, 2], sure=0.999))
    assert surer[0]["number"] == "12"  # 7 at 91 % against 1 at 99.9 %: 85 % sure of the 1
    counting_three = reading.answers(pictures, modes, classifier, lines_of=reading_as([1, 2, 3]))
    assert [answer["number"] for answer in counting_three[:2]] == ["123", "123"]
    boxes = [digit["box"] for digit in counting_three[0]["digits"]]
    segmented = [digit["box"] for digit in alone[0]["digits"]]
    # The ink's columns, from the 7's left edge to the 0's right one, split among the three.
    assert abs(boxes[0][0] - segmented[0][0]) <= 1
    assert abs(boxes[-1][0] + boxes[-1][2] - segmented[-1][0] - segmented[-1][2]) <= 1
    assert all(abs(left[0] + left[2] - right[0]) <= 1 for left, right in zip(boxes, boxes[1:]))
    assert counting_three[2] == alone[2]  # a single digit is never asked about


def test_where_the_reader_counts_one_digit_more_but_barely_segmentations_reading_stands(mnist):
    def classifier(batch):
        return np.eye(10)[np.full(len(batch), 7)] * 0.9 + 0.01

    def reading_three_sevens(doubt):
        """A reader that reads 777, its middle 7 `doubt` (in logits) likelier than no digit at its frame."""

        def lines_of(batch):
            labels = [sequence.BLANK] * sequence.FRAMES
            labels[3] = labels[8] = labels[13] = 7
            logits = frames_reading(labels)
            logits[8, sequence.BLANK] = logits[8, 7] - doubt
            return np.stack([logits] * len(batch))

        return lines_of

    picture = [seventy(mnist)]
    alone = reading.answers(picture, ["number"], classifier)[0]
    barely = reading.answers(picture, ["number"], classifier, lines_of=reading_three_sevens(0.5))[0]
    assert barely == alone  # 777 only e^0.5 times likelier than 77: segmentation's reading, its boxes
    surer = reading.answers(picture, ["number"], classifier, lines_of=reading_three_sevens(1.5))[0]
    assert surer["number"] == "777" and len(surer["digits"]) == 3  # e^1.5 times likelier: past READER_MARGIN


@pytest.fixture
def reader_run(tracking, mnist):
    return train_tiny(version=6, subset=1000, validation=200, sequence_reader=0.0625)  # 50


def test_a_trained_version_carries_its_sequence_reader_and_reads_numbers_with_it(reader_run, mnist):
    run = mlflow.get_run(reader_run)
    assert {"reader_train_seconds", "reader_val_exact"} <= set(run.data.metrics)
    assert run.data.params["sequence_reader"] == "0.0625"
    model = mlflow.pyfunc.load_model(f"runs:/{reader_run}/model")
    recognizer = model.unwrap_python_model()
    assert recognizer.lines_of is not None

    buffer = io.BytesIO()
    Image.fromarray((seventy(mnist).gray * 255).astype(np.uint8)).save(buffer, "PNG")
    request = pd.DataFrame({"image": [base64.b64encode(buffer.getvalue()).decode()]})
    answer = model.predict(request, params={"mode": "number", "threshold": 0.0})[0]
    assert answer["number"] and len(answer["digits"]) == len(answer["number"])
    assert all(len(digit["box"]) == 4 for digit in answer["digits"])
    # Served, the reader is compiled for TensorFlow Lite and reads a line at a time: Keras' logits.
    lines = np.zeros((3, sequence.HEIGHT, sequence.WIDTH), np.float32)
    lines[:, 5, 100] = 1.0
    lines[1, 10:20, 30:40] = 0.7
    expected = recognizer.sequence_reader.predict(sequence.trimmed(lines), verbose=0)
    np.testing.assert_allclose(recognizer.line_logits(lines), expected, rtol=1e-4, atol=1e-4)


def test_version_6_trains_a_reader_unless_told_not_to():
    assert Settings.for_version(6).sequence_reader > 0 and Settings.for_version(1).sequence_reader == 0
    assert train.parse(["--version", "6"]).sequence_reader is None  # the version's own
    told = train.parse(["--version", "6", "--sequence_reader", "0"]).sequence_reader  # as `mlflow run` passes it
    assert told == 0 and Settings.for_version(6, sequence_reader=told).sequence_reader == 0


def test_a_negative_share_of_numbers_for_the_reader_is_refused():
    with pytest.raises(SettingsError, match="sequence_reader is a number of composed numbers per training digit"):
        Settings.for_version(6, sequence_reader=-1)
