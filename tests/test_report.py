"""`report`: every model of an experiment side by side, in Markdown and self-contained HTML."""

import base64
import re

import mlflow
import pytest
from conftest import mlflow_run

from pipeline import report
from pipeline.analysis import reporting

FIGURES = {"validation_curves.png", "confusion_matrices.png", "hardest_digits.png"}


def test_report_on_two_tiny_runs(two_tiny_runs, tmp_path):
    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="evaluate"):  # a run without a model is left out
        mlflow.log_metric("test_accuracy", 0.5)
    output = tmp_path / "report"
    mlflow_run("report", experiment="tests", output_dir=output)

    assert {path.name for path in (output / "figures").iterdir()} == FIGURES
    for name in FIGURES:
        assert (output / "figures" / name).read_bytes().startswith(b"\x89PNG")
    markdown = (output / "report.md").read_text()
    assert all(f"](figures/{name})" in markdown for name in FIGURES)
    html = (output / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(FIGURES) and all(base64.b64decode(data).startswith(b"\x89PNG") for data in embedded)
    assert 'src="figures/' not in html

    rows = reporting.table(reporting.model_runs("tests"))
    assert len(rows) == 2
    for seed, run_id in enumerate(two_tiny_runs):
        row = rows.loc[run_id[:8]]
        assert row["seed"] == str(seed) and row["name"] == "mlp"
        run = client.get_run(run_id)
        assert row["test_accuracy"] == run.data.metrics["test_accuracy"]
        assert row["val_accuracy"] == run.data.metrics["val_accuracy"]
        assert row["test_errors"] == run.data.metrics["test_errors"]
        assert row["train_seconds"] == run.data.metrics["train_seconds"]
        assert row["parameters"] == 101770 and row["epochs"] == 1
        assert row["seed_test_accuracy"] == 0.9762  # the seed's published figure for version 1
        assert f"| {run.data.metrics['test_accuracy']:.2%} |" in markdown
    logged = mlflow.search_runs(filter_string="tags.reported_experiment = 'tests'", output_format="list")
    artifacts = {item.path for item in client.list_artifacts(logged[0].info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figures"} <= artifacts


def test_an_experiment_without_models_is_refused(tracking):
    with pytest.raises(SystemExit, match="has no finished runs that trained a model"):
        report.main(["--experiment", "tests"])


def test_validation_curves_follow_the_first_network_of_a_run_that_averages_several(tracking):
    with mlflow.start_run(run_name="train v6") as run:
        for step, accuracy in ((1, 0.9), (2, 0.95)):
            mlflow.log_metric("member_1/val_accuracy", accuracy, step=step)
        mlflow.log_metric("val_accuracy", 0.96, step=2)  # the average's, once
    figure = reporting.validation_curves(mlflow.MlflowClient(), mlflow.search_runs(experiment_names=["tests"]))
    [line] = figure.axes[0].get_lines()
    assert line.get_label() == f"train v6 ({run.info.run_id[:8]}), its first network"
    assert list(line.get_ydata()) == pytest.approx([0.1, 0.05])
