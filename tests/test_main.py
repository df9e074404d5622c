"""The main job: its order, what it says, and which earlier runs it may reuse."""

import subprocess

import mlflow
import pytest
from conftest import BIN, REPO, mlflow_run, run_cli

from pipeline import main
from pipeline.data import datasets


def test_the_main_job_serves_a_reader_first_then_trains_the_rest(tracking, mnist, fashion):
    result = run_cli(
        BIN / "mlflow", "run", ".", "--env-manager", "local",
        "-P", "versions=1,6", "-P", "epochs=1", "-P", "subset=1500", "-P", "validation=300",
    )  # fmt: skip
    out = result.stdout
    assert out.startswith("main: a quick run") and "ready to serve after" in out and "Done in" in out
    [parent] = mlflow.search_runs(filter_string="attributes.run_name = 'main'", output_format="list")
    children = mlflow.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    steps = [child.info.run_name for child in children]
    assert steps == ["prep mnist", "prep fashion-mnist", "train v6", "promote", "train v1", "promote"]
    assert all(child.info.status == "FINISHED" for child in children)
    client = mlflow.MlflowClient()
    production = client.get_model_version_by_alias("mnist", "production")
    assert production.tags["project_version"] == "6"
    assert f"models:/mnist/Production is registry version {production.version} (project version 6" in out
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # MLflow 3.17's UI opens on its GenAI view unless the address asks for model training.
    assert f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}?workflowType=machine_learning" in out
    for dataset in (datasets.MNIST, datasets.FASHION_MNIST):
        [prep] = mlflow.search_runs(output_format="list", filter_string=f"attributes.run_name = 'prep {dataset.name}'")
        assert prep.data.tags["dataset_digest"] == datasets.digest(dataset)


def test_without_fashion_mnist_the_readers_are_skipped_and_the_rest_runs(tracking, monkeypatch, capsys):
    steps = []

    def step(entry_point, parameters, experiment_id, reuse):
        steps.append((entry_point, parameters.get("version") or parameters.get("dataset")))
        if parameters.get("dataset") == "fashion-mnist":
            raise main.StepFailed("step prep failed")

    monkeypatch.setattr(main, "run_step", step)
    main.main(["--versions", "1,6,2"])
    assert steps == [("prep", "mnist"), ("prep", "fashion-mnist"), ("train", 1), ("train", 2), ("promote", None)]
    assert 'skipping version 6: it learns "not a digit" from Fashion-MNIST' in capsys.readouterr().err


def test_the_estimate_names_where_the_time_goes():
    said = main.estimate([6], [1, 2, 3, 4], full=True)
    assert said == (
        "main: about 44 minutes on 2 cores (prep MNIST 0.5, prep Fashion-MNIST 0.5, version 6 25, version 1 1, "
        "version 2 2, version 3 13, version 4 1, promote 1); a Production model that reads people's images "
        "is ready after about 26"
    )
    said = main.estimate([6], [1, 2, 3, 4], full=True, precision="float32")
    assert said.startswith("main: about 78 minutes on 2 cores without bfloat16 instructions, training in float32 (")
    assert "version 6 53, version 1 1, version 2 3, version 3 18," in said and said.endswith("ready after about 54")


@pytest.fixture
def head(monkeypatch):
    """The commit the runs record; the work tree counts as clean, as on a fresh clone."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(main, "clean_commit", lambda: commit)
    return commit


def test_only_a_run_of_exactly_what_the_main_job_would_run_is_reused(tracking, mnist, head):
    quick = {"version": 1, "subset": 1000, "validation": 200}
    same = mlflow_run("train", **quick, epochs=1)
    mlflow_run("train", **quick, epochs=1, seed=3)
    mlflow_run("train", **quick, epochs=1, register="false")
    mlflow_run("train", **quick, epochs=2)
    with mlflow.start_run(run_name="a search") as search:  # what a search leaves for `train -P params_from`
        mlflow.log_dict({"version": 1, "units": 40, "learning_rate": 0.001}, "search/best_params.json")
    searched = mlflow_run("train", **quick, epochs=1, params_from=search.info.run_id)
    assert searched.data.params["units"] == "40"
    experiment = same.info.experiment_id

    def reused(epochs):
        args = main.parse(["--versions", "1", "--subset", "1000", "--validation", "200", "--epochs", str(epochs)])
        parameters = {key: str(value) for key, value in main.train_parameters(1, args).items()}
        return main.finished_run("train", *main.resolved("train", parameters), experiment)

    assert reused(epochs=1).info.run_id == same.info.run_id
    assert reused(epochs=2).data.params["seed"] == "0"
    assert reused(epochs=0) is None, "no run trained version 1's own 15 epochs"
    # The same parameters on other data (another digest) are not the same run.
    mlflow.MlflowClient().set_tag(same.info.run_id, "validation_set", "mnist:0000000000000000:subset=1000:last=200")
    assert reused(epochs=1) is None
