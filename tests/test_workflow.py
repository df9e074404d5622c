"""The user's workflow through the real `mlflow` CLI on a small slice of real MNIST:
train, promote, load the Production model, evaluate, and the main job."""

import base64
import concurrent.futures
import io
import json
import shutil
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import mlflow_run, use_store
from PIL import Image
from test_images import encoded, on_paper
from test_segmentation import written_number

from pipeline.analysis import reverse_proxy, scoring_server
from pipeline.training.splits import scaled

SUBSET, VALIDATION = 2000, 500


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist, fashion):
    """`train` runs of versions 1 (one epoch) and 6 (two), then `promote`, in a store of their own.

    Version 6 is the one promoted: only a model that can say "not a digit" serves Production.
    """
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(tmp_path_factory.mktemp("store"), monkeypatch)
        run = mlflow_run("train", version=1, epochs=1, subset=SUBSET, validation=VALIDATION)
        reader = mlflow_run("train", version=6, epochs=2, subset=SUBSET, validation=VALIDATION)
        promoted = mlflow_run("promote")
        yield run, reader, promoted
        mlflow.set_tracking_uri(None)


def artifacts(run_id, path=""):
    found = []
    for item in mlflow.MlflowClient().list_artifacts(run_id, path):
        found += artifacts(run_id, item.path) if item.is_dir else [item.path]
    return found


def test_train_logs_params_and_tags(trained):
    run, _, _ = trained
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert {
        key: params[key]
        for key in (
            "version",
            "epochs",
            "batch_size",
            "learning_rate",
            "seed",
            "validation",
            "subset",
            "dataset",
            "units",
        )
    } == {
        "version": "1",
        "epochs": "1",
        "batch_size": "128",
        "learning_rate": "0.001",
        "seed": "0",
        "validation": str(VALIDATION),
        "subset": str(SUBSET),
        "dataset": "mnist",
        "units": "128",
    }
    tags = run.data.tags
    assert tags["version_name"] == "mlp" and tags["tensorflow"].startswith("2.")
    assert tags["cpu"] and int(tags["threads"]) >= 1 and len(tags["git_commit"]) == 40
    assert tags["validation_set"].endswith(f"subset={SUBSET}:last={VALIDATION}")


def test_train_logs_epoch_and_test_metrics(trained):
    run, _, _ = trained
    client = mlflow.MlflowClient()
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1], metric
    metrics = run.data.metrics
    assert 0.5 < metrics["test_accuracy"] <= 1 and metrics["train_seconds"] > 0
    assert metrics["test_errors"] == round((1 - metrics["test_accuracy"]) * SUBSET)


def test_train_logs_artifacts_and_dataset(trained, mnist):
    run, _, _ = trained
    logged = set(artifacts(run.info.run_id))
    assert {
        "figures/learning_curves.png",
        "figures/confusion_matrix.png",
        "figures/worst_errors.png",
        "evaluation/confusion_matrix.csv",
        "evaluation/test_predictions.csv",
        "architecture/summary.txt",
    } <= logged
    if shutil.which("dot"):
        assert "architecture/layers.png" in logged
    # What it trained, validated and tested on: the first 1,500, the next 500, and the first 2,000 test images.
    inputs = {i.dataset.name: {tag.key: tag.value for tag in i.tags} for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"mnist-train", "mnist-validation", "mnist-test"}
    trained_on = SUBSET - VALIDATION
    for name, labels, rows, context in [
        ("mnist-train", mnist.train_labels[:trained_on], f"0-{trained_on - 1}", "training"),
        ("mnist-validation", mnist.train_labels[trained_on:SUBSET], f"{trained_on}-{SUBSET - 1}", "validation"),
        ("mnist-test", mnist.test_labels[:SUBSET], f"0-{SUBSET - 1}", "testing"),
    ]:
        counts = json.loads(inputs[name]["class_counts"])
        assert counts == {str(digit): int((labels == digit).sum()) for digit in range(10)}, name
        assert inputs[name]["rows"] == rows and inputs[name]["mlflow.data.context"] == context


def test_train_registers_a_described_model_version(trained):
    run, reader, _ = trained
    client = mlflow.MlflowClient()
    versions = {v.run_id: v for v in client.search_model_versions("name = 'mnist'")}
    assert set(versions) == {run.info.run_id, reader.info.run_id}
    # The registry's number is not the project's version: the tags and description say which was trained.
    first = versions[run.info.run_id]
    assert (
        str(first.version) == "1"
        and first.tags["project_version"] == "1"
        and first.tags["project_version_name"] == "mlp"
    )
    assert first.description == f"project version 1 (mlp), trained in run {run.info.run_id}"
    assert versions[reader.info.run_id].tags["project_version"] == "6"
    assert "the project's versions" in client.get_registered_model("mnist").description


def test_promote_serves_the_model_that_can_refuse_by_stage_and_by_alias(trained, mnist):
    _, reader, promoted = trained
    assert promoted.data.tags["decision"] == "promoted"
    assert promoted.data.tags["promoted_version"] == "2", "version 6 (registered second), not the more accurate 1"
    images = scaled(mnist.test_images[:100])
    by_stage = mlflow.pyfunc.load_model("models:/mnist/Production").unwrap_python_model().probabilities(images)
    by_alias = mlflow.pyfunc.load_model("models:/mnist@production").unwrap_python_model().probabilities(images)
    assert by_stage.shape == (100, 11)  # the ten digits and "not a digit"
    np.testing.assert_allclose(by_stage, by_alias)
    np.testing.assert_allclose(by_stage.sum(axis=1), 1, rtol=1e-5)
    assert (by_stage.argmax(axis=1) == mnist.test_labels[:100]).mean() >= 0.6


def test_version_6_carries_a_piece_network_for_numbers_and_version_1_none(trained):
    run, reader, _ = trained
    assert 0 < reader.data.metrics["pieces_val_accuracy"] <= 1 and reader.data.metrics["pieces_train_seconds"] > 0
    assert "pieces_val_accuracy" not in run.data.metrics
    served = mlflow.pyfunc.load_model(f"runs:/{reader.info.run_id}/model").unwrap_python_model()
    assert served.pieces.output_shape == (None, 11) and served.judges.output_shape == (None, 22)
    assert mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").unwrap_python_model().pieces is None


def test_evaluate_the_production_model(trained, mnist):
    _, reader, _ = trained
    evaluated = mlflow_run("evaluate", subset=SUBSET)
    # The same model on the same images: the same figures as at the end of training, loss included.
    for metric in ("test_accuracy", "test_loss"):
        assert evaluated.data.metrics[metric] == pytest.approx(reader.data.metrics[metric], rel=1e-4), metric
    assert evaluated.data.metrics["test_errors"] == reader.data.metrics["test_errors"]
    assert "figures/worst_errors.png" in artifacts(evaluated.info.run_id)


def post(url, payload):
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


ANSWER_KEYS = {"digit", "confidence", "probabilities", "rejected", "reason"}


@pytest.fixture(scope="module")
def served(trained):
    """A real `mlflow models serve -m models:/mnist/Production` on 127.0.0.1, with two workers."""
    with scoring_server.running("models:/mnist/Production", workers=2) as server:
        yield f"{server.url}/invocations"


def test_mlflow_models_serve_reads_arrays_and_image_files(served, mnist):
    model = mlflow.pyfunc.load_model("models:/mnist/Production")
    images = scaled(mnist.test_images[:8])
    expected = model.unwrap_python_model().probabilities(images)
    for shape in (images.shape, images.shape + (1,)):
        status, body = post(served, {"inputs": images.reshape(shape).tolist()})
        assert status == 200, body
        answers = body["predictions"]
        assert [set(answer) for answer in answers] == [ANSWER_KEYS] * 8
        # The ten digits' probabilities; "not a digit" is said by `rejected` and `reason`.
        np.testing.assert_allclose(
            [answer["probabilities"] for answer in answers], expected[:, :10], rtol=1e-4, atol=1e-6
        )
        assert [answer["digit"] for answer in answers] == [
            None if row.argmax() == 10 or row.max() < 0.5 else int(row.argmax()) for row in expected
        ]

    # Image files as base64: digits on paper, a blank page, and a whole number (mode column and param).
    digit_files = [
        encoded(on_paper(image), "PNG" if index % 2 else "JPEG", "RGB") for index, image in enumerate(images[:4])
    ]
    blank = encoded(np.ones((60, 60)), "PNG")
    number, _ = written_number(mnist, list(range(30, 34)), 6)
    number_file = encoded(number, "PNG")
    rows = [[base64.b64encode(data).decode(), "digit"] for data in digit_files + [blank]]
    rows.append([base64.b64encode(number_file).decode(), "number"])
    status, body = post(served, {"dataframe_split": {"columns": ["image", "mode"], "data": rows}})
    assert status == 200, body
    answers = body["predictions"]
    in_process = model.predict(pd.DataFrame(rows, columns=["image", "mode"]))
    assert [answer["digit"] for answer in answers] == [answer["digit"] for answer in in_process]
    assert answers[4]["rejected"] and answers[4]["digit"] is None and "no ink" in answers[4]["reason"]
    assert set(answers[5]) == ANSWER_KEYS | {"number", "digits"}
    # The same file as `base64` wraps it (lines of 76, GNU's default) and as a browser's data URL.
    wrapped = base64.encodebytes(digit_files[0]).decode()
    assert "\n" in wrapped
    status, body = post(
        served,
        {"dataframe_split": {"columns": ["image"], "data": [[wrapped], [f"data:image/jpeg;base64,{rows[0][0]}"]]}},
    )
    assert status == 200, body
    assert [answer["confidence"] for answer in body["predictions"]] == [answers[0]["confidence"]] * 2
    status, body = post(
        served,
        {
            "dataframe_split": {"columns": ["image"], "data": [[rows[5][0]]]},
            "params": {"mode": "number", "threshold": 0.0},
        },
    )
    (read,) = body["predictions"]
    assert status == 200 and read["number"]  # trained 2 epochs on 2,000 digits, it may miscount: not checked here
    assert read["number"] == "".join(str(digit["digit"]) for digit in read["digits"])
    # At the default threshold: what the model answers in-process, digit boxes included.
    assert answers[5]["number"] == in_process[5]["number"]
    assert [d["box"] for d in answers[5]["digits"]] == [d["box"] for d in read["digits"]]

    for payload, message in [
        ({"inputs": [[1, 2, 3]]}, "N x 28 x 28"),
        ({"inputs": (images[:1] * 255).tolist()}, "[0, 1]"),
        ({"dataframe_split": {"columns": ["image"], "data": [[rows[0][0]], ["not base64!"]]}}, "row 1"),
        (
            {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(b"text").decode()]]}},
            "not an image",
        ),
        ({"dataframe_split": {"columns": ["image"], "data": [[rows[0][0]]]}, "params": {"mode": "words"}}, "mode"),
    ]:
        status, body = post(served, payload)
        assert 400 <= status < 500 and message in body.get("message", ""), (payload, status, body)

    status, _ = post(served, {"inputs": images[:2].tolist()})
    assert status == 200, "the server keeps serving after bad requests"


def test_requests_past_the_limits_are_refused_saying_which(served, mnist):
    from pipeline.serving import images, model

    side = int(images.MAX_PIXELS**0.5) + 1
    huge = io.BytesIO()
    Image.new("L", (side, side), 255).save(huge, "PNG")  # 40 kB on disk
    files = [
        [base64.b64encode(huge.getvalue()).decode()],
        ["A" * (model.MAX_IMAGE_BYTES // 2)],
        ["A" * (model.MAX_IMAGE_BYTES // 2 + 4)],
    ]
    for payload, message in [
        ({"inputs": np.zeros((257, 28, 28)).tolist()}, "257 images is more than the limit of 256 per request"),
        ({"dataframe_split": {"columns": ["image"], "data": files[:1]}}, "more than the limit of 50,000,000"),
        ({"dataframe_split": {"columns": ["image"], "data": files[1:]}}, "more than the limit of 32,000,000"),
    ]:
        status, body = post(served, payload)
        assert status == 400 and message in body["message"], (status, str(body)[-300:])
    status, body = post(served, {"inputs": scaled(mnist.test_images[:256]).tolist()})
    assert status == 200 and len(body["predictions"]) == 256


@pytest.mark.skipif(reverse_proxy.nginx() is None, reason="no nginx here: apt-get install nginx-light (make test does)")
def test_behind_deploy_nginx_conf_a_body_past_the_limit_is_refused_unread(served, mnist):
    """The scoring server parses a whole body before the model counts it; nginx refuses it from its length."""
    from pipeline.serving import model

    upstream = served.removesuffix("/invocations")
    arrays = {"inputs": scaled(mnist.test_images[:3]).tolist()}
    with reverse_proxy.running(upstream) as proxy:
        heavy = {"dataframe_split": {"columns": ["image"], "data": [["A" * (model.MAX_IMAGE_BYTES - 40)]]}}
        status, body = post(f"{proxy}/invocations", heavy)  # the JSON around it takes the body past the limit
        assert status == 413 and body["message"] == (
            f"the request body is more than the limit of {model.MAX_IMAGE_BYTES:,} bytes"
        )
        # Everything else passes unchanged, the model's own refusals included.
        assert post(f"{proxy}/invocations", arrays) == post(served, arrays)
        status, body = post(f"{proxy}/invocations", {"inputs": np.zeros((257, 28, 28)).tolist()})
        assert status == 400 and "257 images is more than the limit of 256" in body["message"]
        heavy["dataframe_split"]["data"] = [["A" * (model.MAX_IMAGE_BYTES - 100)]]
        status, body = post(f"{proxy}/invocations", heavy)
        assert status == 400 and "not an image" in body["message"], body["message"][-200:]


def test_concurrent_requests_get_the_answers_sequential_ones_get(served, mnist):
    requests = [{"inputs": scaled(mnist.test_images[index : index + 3]).tolist()} for index in range(0, 24, 3)]
    papers = [on_paper(image) for image in scaled(mnist.test_images[24:32])]
    requests += [
        {"dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(encoded(paper, "JPEG")).decode()]]}}
        for paper in papers
    ]
    number, _ = written_number(mnist, list(range(40, 45)), 0)
    file = base64.b64encode(encoded(number, "PNG")).decode()
    requests += [{"dataframe_split": {"columns": ["image"], "data": [[file]]}, "params": {"mode": "number"}}] * 4
    sequential = [post(served, payload) for payload in requests]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(lambda payload: post(served, payload), requests)) == sequential
    assert all(status == 200 for status, _ in sequential)


def test_train_in_an_isolated_environment_built_by_uv(tracking, mnist):
    """`--env-manager uv` installs conda.yaml's pins into an environment of its own and runs there."""
    run = mlflow_run("train", env_manager="uv", version=1, epochs=1, subset=SUBSET, validation=VALIDATION)
    assert run.info.status == "FINISHED"
    assert run.data.tags["tensorflow"] == "2.21.0" and run.data.tags["keras"] == "3.15.1"
    assert run.data.metrics["test_accuracy"] > 0.5


def test_evaluating_a_missing_model_is_one_clear_line(tracking, mnist):
    from pipeline import evaluate

    with pytest.raises(SystemExit, match=r"^evaluate: cannot evaluate models:/mnist/Production: .*mnist"):
        evaluate.main([])
