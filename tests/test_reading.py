"""The answer objects: digits, rejections and whole numbers."""

import numpy as np

from pipeline.serving import images, reading, segmentation


def row(best, confidence, not_digit=None):
    probabilities = np.full(10, (1 - confidence - (not_digit or 0)) / 9)
    probabilities[best] = confidence
    return np.append(probabilities, not_digit) if not_digit is not None else probabilities


def test_a_confident_answer_is_the_digit():
    answer = reading.digit_answer(row(7, 0.9), threshold=0.5)
    assert answer == {
        "digit": 7,
        "confidence": answer["confidence"],
        "probabilities": answer["probabilities"],
        "rejected": False,
        "reason": None,
    }
    assert abs(answer["confidence"] - 0.9) < 1e-9 and len(answer["probabilities"]) == 10


def test_below_the_threshold_is_rejected_with_the_reason():
    answer = reading.digit_answer(row(3, 0.4), threshold=0.5)
    assert answer["digit"] is None and answer["rejected"]
    assert answer["reason"] == "confidence 40% is below the threshold 50%"
    assert answer["probabilities"][3] == 0.4


def test_the_not_a_digit_class_rejects_and_its_column_is_not_a_digit():
    answer = reading.digit_answer(row(1, 0.2, not_digit=0.7), threshold=0.0)
    assert answer["rejected"] and answer["reason"] == "not a digit (70% sure)"
    assert len(answer["probabilities"]) == 10
    accepted = reading.digit_answer(row(1, 0.6, not_digit=0.3), threshold=0.5)
    assert accepted["digit"] == 1


def test_a_number_is_rejected_when_any_digit_is():
    found = [(10 * n, 0, 8, 20) for n in range(3)]
    good = reading.number_answer([row(4, 0.9), row(2, 0.95), row(0, 0.8)], found, 0.5)
    assert good["number"] == "420" and not good["rejected"] and abs(good["confidence"] - 0.8) < 1e-9
    assert [digit["box"] for digit in good["digits"]] == [[0, 0, 8, 20], [10, 0, 8, 20], [20, 0, 8, 20]]
    bad = reading.number_answer([row(4, 0.9), row(2, 0.3), row(0, 0.8)], found, 0.5)
    assert bad["number"] is None and bad["rejected"] and bad["reason"].startswith("digit 2 of 3: confidence 30%")


def test_answers_batches_every_digit_and_keeps_refusals_in_place(mnist):
    digit = 1 - mnist.test_images[0] / 255.0  # a 7 on paper
    seen = []

    def probabilities_of(batch):
        seen.append(len(batch))
        return np.stack([row(7, 0.99)] * len(batch))

    pictures = [images.Picture(gray) for gray in (digit, np.ones((40, 40)), digit, digit)]
    results = reading.answers(pictures, ["digit", "digit", "number", "digit"], probabilities_of)
    assert len(seen) == 2 and seen[0] == 2  # one call for both digits, one for every candidate of the number
    assert results[3] == results[0]
    assert results[0]["digit"] == 7 and results[2]["number"] == "7"
    assert results[1] == reading.refusal(results[1]["reason"], "digit") and "no ink" in results[1]["reason"]


def test_the_pieces_of_a_number_are_digits_whatever_the_not_a_digit_class_says():
    found = [(0, 0, 8, 20)]
    answer = reading.number_answer([row(5, 0.35, not_digit=0.6)], found, 0.5)
    assert answer["number"] == "5" and abs(answer["digits"][0]["confidence"] - 0.35 / 0.4) < 1e-6
    unsure = reading.number_answer([row(5, 0.15, not_digit=0.6)], found, 0.5)
    assert unsure["rejected"] and "below the threshold" in unsure["reason"]


def test_the_candidates_of_numbers_only_are_judged_by_their_own_rows(mnist):
    """Given a way to judge them (a model's piece network beside its classifiers), the candidates of every
    number are judged by it in one call, and the cut it takes for whole digits wins over the cuts it takes for
    "not one digit", whatever the classifier alone says."""
    seven = 1 - mnist.test_images[0] / 255.0
    ink = np.zeros((28, 40))
    ink[:, 0:20] = mnist.test_images[0][:, 4:24] / 255.0
    ink[:, 14:34] = np.maximum(ink[:, 14:34], mnist.test_images[3][:, 4:24] / 255.0)  # a 0 run into the 7
    seventy = 1 - ink
    asked = []

    def classifier(batch):
        return np.stack([row(7, 0.9)] * len(batch))

    def judge(batch):  # only the widest candidate, the 7 and the 0 together, is one whole digit
        asked.append(len(batch))
        widths = [np.ptp(np.nonzero(image.max(axis=0))[0]) for image in batch]
        return np.stack([row(7, 0.9, 0.0) if w == max(widths) else row(7, 1e-6, not_digit=0.99) for w in widths])

    pictures = [images.Picture(gray) for gray in (seven, seventy)]
    plain = reading.answers(pictures, ["digit", "number"], classifier)
    judged = reading.answers(pictures, ["digit", "number"], classifier, candidates_of=judge)
    assert len(asked) == 1  # once, for the number's candidates; not for the single digit
    assert judged[0] == plain[0]
    assert len(plain[1]["digits"]) == 2 and len(judged[1]["digits"]) == 1


def test_judged_is_the_geometric_mean_of_the_digits_probabilities():
    rows = np.array([row(2, 0.9, not_digit=0.05)])
    combined = segmentation.judged(rows, np.array([row(2, 0.01, not_digit=0.98)]))
    assert abs(combined[0, 2] - np.sqrt(0.9 * 0.01)) < 1e-9 and combined[0, 10] == rows[0, 10]
