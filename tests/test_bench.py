"""`bench`: time to a test accuracy, per seed, summarized, in MLflow and as JSON."""

import json
import math

import mlflow
import pytest

from pipeline import bench
from pipeline.analysis import benchmarking


def result(seconds, accuracies=(0.9, 0.99)):
    reached = math.isfinite(seconds)
    return benchmarking.SeedResult(
        label="v",
        seed=0,
        target=0.99,
        seconds_to_target=seconds,
        epochs_to_target=2 if reached else 0,
        test_accuracies=accuracies,
        val_accuracy=0.98,
        train_seconds=10.0,
        train_images=1000,
        parameters=5,
    )


def test_summary_counts_an_unreached_target_as_slowest():
    summary = benchmarking.summary([result(3.0), result(5.0), result(math.inf, (0.9, 0.95))])
    assert summary["median_seconds_to_target"] == 5.0
    assert (summary["min_seconds_to_target"], summary["max_seconds_to_target"]) == (3.0, None)
    assert summary["seeds_reached"] == 2 and summary["mean_final_accuracy"] == pytest.approx((0.99 * 2 + 0.95) / 3)
    assert benchmarking.summary([result(math.inf), result(math.inf)])["median_seconds_to_target"] is None
    assert result(4.0).images_per_second == 200.0 and result(4.0).seconds_per_epoch == 5.0


def test_bench_on_a_tiny_run(tracking, mnist, capsys, tmp_path):
    table = tmp_path / "bench.md"
    bench.main(
        [
            "--version",
            "1",
            "--seeds",
            "2",
            "--epochs",
            "2",
            "--subset",
            "600",
            "--validation",
            "100",
            "--target",
            "0.5",
            "--markdown",
            str(table),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    document = json.loads(lines[-1])
    assert len(document["runs"]) == 2 and [run["seed"] for run in document["runs"]] == [0, 1]
    for run in document["runs"]:
        assert run["reached"] and run["epochs_to_target"] in (1, 2)
        assert 0 < run["seconds_to_target"] <= run["train_seconds"]
        assert len(run["test_accuracies"]) == 2 and run["final_accuracy"] == run["test_accuracies"][-1]
        assert run["test_accuracies"][run["epochs_to_target"] - 1] >= 0.5
        assert 0 < run["val_accuracy"] <= 1
    summary = document["summaries"][0]
    times = sorted(run["seconds_to_target"] for run in document["runs"])
    assert summary["median_seconds_to_target"] == pytest.approx(sum(times) / 2)
    assert summary["seeds_reached"] == 2 and document["machine"]["cores"] >= 1
    assert "| version 1 (mlp) |" in table.read_text()
    assert any(line.startswith("version 1 (mlp) seed 1: reached 50.00% after") for line in lines)

    client = mlflow.MlflowClient()
    parent = [run for run in mlflow.search_runs(output_format="list") if run.info.run_name == "bench v1"][0]
    assert parent.data.metrics["median_seconds_to_target"] == pytest.approx(summary["median_seconds_to_target"])
    assert parent.data.metrics["seeds_reached"] == 2
    assert "bench/results.json" in [item.path for item in client.list_artifacts(parent.info.run_id, "bench")]
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )
    assert len(children) == 2
    assert all(len(client.get_metric_history(child.info.run_id, "test_accuracy")) == 2 for child in children)


def test_an_unreachable_target_is_reported_not_hidden(tracking, mnist, capsys):
    bench.main(
        ["--version", "1", "--seeds", "1", "--epochs", "1", "--subset", "300", "--validation", "100", "--target", "1.0"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    document = json.loads(lines[-1])
    assert document["summaries"][0]["median_seconds_to_target"] is None
    assert document["runs"][0]["seconds_to_target"] is None and not document["runs"][0]["reached"]
    assert any("never reached 100.00%" in line for line in lines)
    assert any("| never | 0 of 1 |" in line for line in lines)
