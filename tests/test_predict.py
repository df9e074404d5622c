"""`python -m pipeline.predict`: people's image files in, one answer per file out."""

import json

import mlflow
import numpy as np
import pytest
from conftest import run_cli, train_tiny, use_store
from PIL import Image
from test_images import encoded, on_paper


@pytest.fixture(scope="module")
def model_uri(tmp_path_factory, mnist):
    """A version 4 network trained on 20,000 images, in a store the CLI also sees."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(tmp_path_factory.mktemp("store"), monkeypatch)
        run_id = train_tiny(version=4, subset=20000, validation=1000, epochs=2, register=False)
        yield f"runs:/{run_id}/model"
    mlflow.set_tracking_uri(None)


@pytest.fixture
def files(tmp_path, mnist):
    written = {}
    for index in range(6):
        digit = mnist.test_images[index] / 255.0
        path = tmp_path / f"digit{index}-{mnist.test_labels[index]}.{'png' if index % 2 else 'jpg'}"
        path.write_bytes(encoded(on_paper(digit), "PNG" if index % 2 else "JPEG", "RGB"))
        written[path] = int(mnist.test_labels[index])
    return written


def predict(model_uri, *args):
    return run_cli("python", "-m", "pipeline.predict", "--model", model_uri, *map(str, args), check=False)


def test_digits_on_paper_are_read(model_uri, files, tmp_path):
    result = predict(model_uri, *files, "--json", "--show", tmp_path / "seen.png")
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    assert [answer["file"] for answer in answers] == [str(path) for path in files]
    for answer in answers:
        assert set(answer) == {"file", "digit", "confidence", "probabilities", "rejected", "reason"}
        assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4
        assert answer["confidence"] == max(answer["probabilities"])
    correct = [answer["digit"] == label for answer, label in zip(answers, files.values())]
    assert sum(correct) >= 5, answers
    assert Image.open(tmp_path / "seen.png").size[0] > 100


def test_bad_files_are_named_and_the_rest_still_read(model_uri, files, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    good = next(iter(files))
    (tmp_path / "cut.png").write_bytes(encoded(np.ones((64, 64)) * 0.9, "PNG")[:60])
    (tmp_path / "blank.png").write_bytes(encoded(np.ones((64, 64)), "PNG"))
    paths = [
        tmp_path / "empty.png",
        good,
        tmp_path / "notes.txt",
        tmp_path / "cut.png",
        tmp_path / "missing.png",
        tmp_path / "blank.png",
    ]
    result = predict(model_uri, *paths, "--json")
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    for name, reason in (
        ("empty.png", "empty file"),
        ("notes.txt", "not an image"),
        ("cut.png", "truncated or corrupt"),
        ("missing.png", "No such file"),
    ):
        assert any(line.startswith(f"predict: {tmp_path / name}: ") and reason in line for line in errors), errors
    answers = json.loads(result.stdout)
    assert [answer["file"] for answer in answers] == [str(good), str(tmp_path / "blank.png")]
    blank = answers[1]
    assert blank["rejected"] and blank["digit"] is None and blank["reason"].startswith("no ink")


def test_threshold_rejects_unsure_answers_and_lines_say_so(model_uri, files):
    result = predict(model_uri, *files, "--threshold", "1")
    assert result.returncode == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(files)
    assert all("rejected (confidence" in line and "below the threshold 100%" in line for line in lines)
    plain = predict(model_uri, next(iter(files))).stdout.strip()
    assert plain.startswith(f"{next(iter(files))}: ") and plain.endswith("%)")


def test_a_bad_threshold_is_refused():
    result = run_cli("python", "-m", "pipeline.predict", "x.png", "--threshold", "2", check=False)
    assert result.returncode == 2 and "expected a number between 0 and 1" in result.stderr


def test_a_whole_number_is_read_digit_by_digit(model_uri, mnist, tmp_path):
    from test_segmentation import written_number

    indices = list(range(30, 36))
    paper, spans = written_number(mnist, indices, 4)
    path = tmp_path / "number.png"
    path.write_bytes(encoded(paper, "PNG"))
    result = predict(model_uri, path, "--number", "--json", "--show", tmp_path / "seen.png")
    assert result.returncode == 0, result.stderr[-2000:]
    (answer,) = json.loads(result.stdout)
    assert answer["digit"] is None and len(answer["digits"]) == len(indices)
    expected = "".join(str(label) for label in mnist.test_labels[indices])
    read = "".join(str(digit["digit"]) for digit in answer["digits"])
    assert sum(a == b for a, b in zip(read, expected)) >= len(expected) - 1, (read, expected)
    # The number stands only if every digit is confident enough; else it is refused, naming the digit.
    unsure = [index for index, digit in enumerate(answer["digits"]) if digit["confidence"] < 0.5]
    if unsure:
        assert answer["number"] is None and answer["rejected"] and f"digit {unsure[0] + 1} of 6" in answer["reason"]
    else:
        assert answer["number"] == read and not answer["rejected"]
    (anything,) = json.loads(predict(model_uri, path, "--number", "--json", "--threshold", "0").stdout)
    assert anything["number"] == read, "with threshold 0 the number is always read"
    for digit, (left, _) in zip(answer["digits"], spans):
        assert abs(digit["box"][0] - left) <= 10 and len(digit["box"]) == 4
    plain = predict(model_uri, path, "--number").stdout.strip()
    assert plain.startswith(f"{path}: ")
