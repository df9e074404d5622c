"""The real-data check: version 1, as the seed trained it, on all of MNIST (about 30 s on 2 cores)."""

from conftest import mlflow_run


def test_version_1_on_full_mnist_reaches_the_seeds_accuracy(tracking, mnist):
    run = mlflow_run("train", version=1)
    assert run.data.params["epochs"] == "15"
    assert run.data.metrics["test_accuracy"] >= 0.975
    assert run.data.metrics["val_accuracy"] >= 0.97
