"""Our own image sets (`benchmarks/image_sets.py`) and `evaluate --images` on them."""

import base64
import hashlib

import mlflow
import numpy as np
import pytest
from conftest import mlflow_run, run_cli, train_tiny, use_store

from benchmarks import image_sets
from pipeline.analysis import image_folders
from pipeline.data import typefaces
from pipeline.serving import images, reading


@pytest.fixture(scope="module")
def image_set(tmp_path_factory, mnist, fashion):
    folder = tmp_path_factory.mktemp("images")
    image_sets.write(folder, split="validation", digits=60, numbers=20, not_digits=30, seed=7)
    return folder


def digest(folder):
    return hashlib.sha256(
        b"".join(
            path.relative_to(folder).as_posix().encode() + path.read_bytes()
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        )
    ).hexdigest()


def test_a_set_is_the_same_from_the_same_seed(image_set, tmp_path):
    image_sets.write(tmp_path, split="validation", digits=60, numbers=20, not_digits=30, seed=7)
    assert digest(tmp_path) == digest(image_set)
    found = image_folders.items(image_set)
    assert [sum(item.set == name for item in found) for name in image_folders.SETS] == [60, 20, 30]
    assert {item.path.suffix for item in found} == {".png", ".jpg"}
    assert {item.expected for item in found if item.set == "not-digits"} == {
        "letters and symbols",
        "clothing",
        "scribbles",
        "blank pages",
    }


def test_a_held_out_styles_set_is_repeatable_and_in_categories(tmp_path, mnist, fashion, reader):
    first, again = tmp_path / "first", tmp_path / "again"
    image_sets.write_styles(first, digits=4, numbers=3, not_digits=4, seed=2)
    image_sets.write_styles(again, digits=4, numbers=3, not_digits=4, seed=2)
    assert digest(first) == digest(again)
    found = image_folders.items(first)
    categories = {item.category for item in found}
    printed_from_handwriting = ["handwriting typefaces"] if typefaces.handwriting(held_out=True) else []
    assert categories == {
        "broad marker",
        "calligraphy pen",
        "chalk",
        "coloured paper",
        "dim photos",
        "typefaces",
        "spaced numbers",
        "touching numbers",
        "letters",
        "coarse scans",
        "boxed",
        *printed_from_handwriting,  # where setup could install their typefaces
    }
    assert {item.set for item in found if "numbers" in item.category} == {"numbers"}
    development = tmp_path / "development"  # drawn with training's pens and typefaces, to tune on
    image_sets.write_styles(development, digits=2, numbers=1, not_digits=2, seed=2, split="validation")
    drawn_with = {item.category for item in image_folders.items(development)} - categories
    assert drawn_with == {"ballpoint", "felt-tip"}
    assert all(1 <= len(item.expected) <= 12 for item in found if item.set == "numbers")

    class Reader:  # the served model's interface, around a real network
        def predict(self, frame, params):
            pictures = [images.read(base64.b64decode(image)) for image in frame["image"]]
            return reading.answers(pictures, list(frame["mode"]), reader, params["threshold"])

    figures = image_folders.summary(image_folders.answers(Reader(), found, 0.5))
    of_digits = categories - {"spaced numbers", "touching numbers", "letters"}
    assert figures["digits_count"] == 4 * len(of_digits) and figures["chalk_digits_count"] == 4
    assert figures["touching_numbers_numbers_count"] == 3 and figures["letters_not_digits_count"] == 4
    assert 0 <= figures["chalk_digits_read"] <= figures["chalk_digits_accepted"] <= 1


def test_a_box_is_drawn_around_the_digit_or_over_its_outermost_ink():
    ink = np.zeros((28, 28), np.float32)
    ink[4:24, 10:18] = 0.8
    touched = []
    for seed in range(12):
        framed = image_sets.boxed(ink, np.random.default_rng(seed))
        rows, columns = (np.flatnonzero((framed == 1.0).any(axis=axis)) for axis in (1, 0))
        inside = framed[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        assert (inside[0] == 1).all() and (inside[-1] == 1).all() and (inside[:, 0] == 1).all()
        assert (inside[:, -1] == 1).all() and (framed == 0.8).sum() == (inside == 0.8).sum()  # all the ink in it
        touched.append((framed == 0.8).sum() < (ink == 0.8).sum())  # a line drawn over the ink's edge
    assert any(touched) and not all(touched)


def test_a_folder_without_sets_is_refused(tmp_path):
    (tmp_path / "digits" / "seven").mkdir(parents=True)
    (tmp_path / "digits" / "seven" / "a.png").write_bytes(b"x")
    with pytest.raises(image_folders.FolderError, match="named by their digits"):
        image_folders.items(tmp_path)
    with pytest.raises(image_folders.FolderError, match="no image files"):
        image_folders.items(tmp_path / "digits")


def test_evaluate_images_logs_the_figures_and_every_answer(image_set, tmp_path, monkeypatch):
    use_store(tmp_path, monkeypatch)
    try:
        run_id = train_tiny(version=4, subset=20000, validation=1000, epochs=2, register=False)
        run = mlflow_run("evaluate", model_uri=f"runs:/{run_id}/model", images=image_set)
        metrics = run.data.metrics
        assert metrics["images_digits_count"] == 60 and metrics["images_numbers_count"] == 20
        assert metrics["images_digits_read"] >= 0.85
        assert metrics["images_digits_read"] <= metrics["images_digits_accepted"]
        assert metrics["images_not_digits_rejected_blank_pages"] == 1.0
        answers = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/images/answers.csv").splitlines()
        assert len(answers) == 1 + 110 and answers[0].startswith("file,category,set,expected,answer")
        missing = run_cli(
            "python",
            "-m",
            "pipeline.evaluate",
            "--model-uri",
            f"runs:/{run_id}/model",
            "--images",
            str(tmp_path / "nowhere"),
            check=False,
        )
        assert missing.returncode != 0 and "is not a folder" in missing.stderr
    finally:
        mlflow.set_tracking_uri(None)
