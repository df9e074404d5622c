"""The user's workflow through the real `mlflow` CLI on a small slice of real MNIST:
train, promote, load the Production model, evaluate, and the main job."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import BIN, mlflow_run, use_store
from test_images import encoded, on_paper, written_number

from pipeline.data import datasets
from pipeline.training.splits import scaled

SUBSET, VALIDATION = 2000, 500


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """One `train` run of version 1 (one epoch), then `promote`, in a store of their own."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(tmp_path_factory.mktemp("store"), monkeypatch)
        run = mlflow_run("train", version=1, epochs=1, subset=SUBSET, validation=VALIDATION)
        promoted = mlflow_run("promote")
        yield run, promoted
        mlflow.set_tracking_uri(None)


def artifacts(run_id, path=""):
    found = []
    for item in mlflow.MlflowClient().list_artifacts(run_id, path):
        found += artifacts(run_id, item.path) if item.is_dir else [item.path]
    return found


def test_train_logs_params_and_tags(trained):
    run, _ = trained
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
    run, _ = trained
    client = mlflow.MlflowClient()
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1], metric
    metrics = run.data.metrics
    assert 0.5 < metrics["test_accuracy"] <= 1 and metrics["train_seconds"] > 0
    assert metrics["test_errors"] == round((1 - metrics["test_accuracy"]) * SUBSET)


def test_train_logs_artifacts_and_dataset(trained):
    run, _ = trained
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
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"mnist-train", "mnist-test"}
    counts = next(tag.value for tag in inputs["mnist-train"].tags if tag.key == "class_counts")
    assert '"1": 6742' in counts


def test_train_registers_a_tagged_model_version(trained):
    run, _ = trained
    [version] = mlflow.MlflowClient().search_model_versions("name = 'mnist'")
    assert version.run_id == run.info.run_id
    assert version.tags["version"] == "1" and version.tags["run_id"] == run.info.run_id


def test_promote_then_load_production_by_stage_and_by_alias(trained, mnist):
    _, promoted = trained
    assert promoted.data.tags["decision"] == "promoted"
    images = scaled(mnist.test_images[:20])
    by_stage = mlflow.pyfunc.load_model("models:/mnist/Production").unwrap_python_model().probabilities(images)
    by_alias = mlflow.pyfunc.load_model("models:/mnist@production").unwrap_python_model().probabilities(images)
    assert by_stage.shape == (20, 10)
    np.testing.assert_allclose(by_stage, by_alias)
    np.testing.assert_allclose(by_stage.sum(axis=1), 1, rtol=1e-5)
    assert (by_stage.argmax(axis=1) == mnist.test_labels[:20]).mean() >= 0.7


def test_evaluate_the_production_model(trained, mnist):
    run, _ = trained
    evaluated = mlflow_run("evaluate", subset=SUBSET)
    # The same model on the same images: the same figures as at the end of training.
    assert evaluated.data.metrics["test_accuracy"] == pytest.approx(run.data.metrics["test_accuracy"])
    assert evaluated.data.metrics["test_errors"] == run.data.metrics["test_errors"]
    assert "figures/worst_errors.png" in artifacts(evaluated.info.run_id)


def test_main_job_runs_every_step_nested(tracking, mnist, fashion):
    """Version 6 needs Fashion-MNIST, so the main job prepares it too."""
    parent = mlflow_run("main", versions="1,6", epochs=1, subset=1500, validation=300)
    children = mlflow.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'", output_format="list"
    )
    steps = sorted(child.data.tags["mlflow.project.entryPoint"] for child in children)
    assert steps == ["prep", "prep", "promote", "train", "train"]
    assert all(child.info.status == "FINISHED" for child in children)
    assert mlflow.MlflowClient().get_model_version_by_alias("mnist", "production")
    for dataset in (datasets.MNIST, datasets.FASHION_MNIST):
        [prep] = mlflow.search_runs(output_format="list", filter_string=f"attributes.run_name = 'prep {dataset.name}'")
        assert prep.data.tags["dataset_digest"] == datasets.digest(dataset)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def test_mlflow_models_serve_reads_arrays_and_image_files(trained, mnist):
    port = free_port()
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/mnist/Production",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not come up in 180 s"
            time.sleep(1)

        model = mlflow.pyfunc.load_model("models:/mnist/Production")
        images = scaled(mnist.test_images[:8])
        expected = model.unwrap_python_model().probabilities(images)
        for shape in (images.shape, images.shape + (1,)):
            status, body = post(f"{base}/invocations", {"inputs": images.reshape(shape).tolist()})
            assert status == 200, body
            answers = body["predictions"]
            assert [set(answer) for answer in answers] == [ANSWER_KEYS] * 8
            np.testing.assert_allclose([answer["probabilities"] for answer in answers], expected, rtol=1e-4, atol=1e-6)
            assert [answer["digit"] for answer in answers] == [
                None if row.max() < 0.5 else int(row.argmax()) for row in expected
            ]

        # Image files as base64: digits on paper, a blank page, and a whole number (mode column and param).
        digit_files = [
            encoded(on_paper(image), "PNG" if index % 2 else "JPEG", "RGB") for index, image in enumerate(images[:4])
        ]
        blank = encoded(np.ones((60, 60)), "PNG")
        number, _ = written_number(mnist, list(range(30, 34)), [6] * 4)
        number_file = encoded(number, "PNG")
        rows = [[base64.b64encode(data).decode(), "digit"] for data in digit_files + [blank]]
        rows.append([base64.b64encode(number_file).decode(), "number"])
        status, body = post(f"{base}/invocations", {"dataframe_split": {"columns": ["image", "mode"], "data": rows}})
        assert status == 200, body
        answers = body["predictions"]
        in_process = model.predict(pd.DataFrame(rows, columns=["image", "mode"]))
        assert [answer["digit"] for answer in answers] == [answer["digit"] for answer in in_process]
        assert answers[4]["rejected"] and answers[4]["digit"] is None and "no ink" in answers[4]["reason"]
        assert set(answers[5]) == ANSWER_KEYS | {"number", "digits"} and len(answers[5]["digits"]) == 4
        status, body = post(
            f"{base}/invocations",
            {
                "dataframe_split": {"columns": ["image"], "data": [[rows[5][0]]]},
                "params": {"mode": "number", "threshold": 0.0},
            },
        )
        (read,) = body["predictions"]
        assert status == 200 and len(read["number"]) == 4
        assert read["number"] == "".join(str(digit["digit"]) for digit in read["digits"])
        assert answers[5]["number"] in (None, read["number"])

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
            status, body = post(f"{base}/invocations", payload)
            assert 400 <= status < 500 and message in body.get("message", ""), (payload, status, body)

        status, _ = post(f"{base}/invocations", {"inputs": images[:2].tolist()})
        assert status == 200, "the server keeps serving after bad requests"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


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
