"""Entry point `ensemble`: one model that averages the probabilities of several trained runs.

    mlflow run . -e ensemble -P runs=<run id>,<run id>,<run id> --env-manager local
    python -m pipeline.ensemble --runs <run id>,<run id>

With `-P tta=true` each image is also classified moved one pixel left, right, up
and down, and all those probabilities are averaged.

The members are the models that `train` logged in those runs. They must have been
validated on the same images (the same `validation_set` tag), so that the
ensemble's validation accuracy, which `promote` compares, is measured on images
none of them trained on (final fits, trained with `validation=0`, leave none: an
ensemble of them has no validation accuracy, and `promote` does not choose it).
Logs the ensemble's validation and test figures, each member's test accuracy
beside it, and the ensemble itself as a DigitRecognizer registered as a new
version of `mnist`: `promote` and `mlflow models serve` treat it like any other
version. It reads numbers with the piece network of the first member that has
one (param `pieces_from`), and with the sequence reader of the first member
that has one (param `sequence_reader_from`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import boolean

if TYPE_CHECKING:
    import mlflow


class EnsembleError(ValueError):
    """Runs that cannot form an ensemble."""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.ensemble", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=run_ids, required=True, help="comma-separated ids of two or more train runs")
    parser.add_argument(
        "--tta",
        type=boolean,
        default=False,
        help="also average over the images moved one pixel each way (5x the compute)",
    )
    parser.add_argument(
        "--register",
        type=boolean,
        default=True,
        help="register the ensemble as a new version of `mnist` (default true)",
    )
    return console.add_verbosity(parser).parse_args(argv)


def run_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"expected two or more different run ids separated by commas, got {text!r}")
    return ids


def members(client: mlflow.MlflowClient, ids: list[str]) -> list[mlflow.entities.Run]:
    """The runs, checked: finished train runs with a model, all validated on the same images."""
    runs = []
    for run_id in ids:
        try:
            runs.append(client.get_run(run_id))
        except Exception as error:  # MLflow raises its own exception types for a missing or malformed id
            raise EnsembleError(f"run {run_id}: {error}") from None
    for run in runs:
        if "validation_set" not in run.data.tags or "test_accuracy" not in run.data.metrics:
            raise EnsembleError(f"run {run.info.run_id} is not a finished train run")
    validation_sets = {run.data.tags["validation_set"] for run in runs}
    if len(validation_sets) > 1:
        raise EnsembleError("the runs were validated on different images: " + "; ".join(sorted(validation_sets)))
    return runs


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.analysis import evaluation
    from pipeline.data import datasets
    from pipeline.serving.calibration import scaled
    from pipeline.serving.model import average_probabilities
    from pipeline.tracking import logged_model, tags
    from pipeline.training.loop import predict
    from pipeline.training.splits import split

    client = mlflow.MlflowClient()
    try:
        runs = members(client, args.runs)
        loaded = [mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model") for run in runs]
    except (EnsembleError, MlflowException, OSError) as error:
        sys.exit(f"ensemble: {error}")
    params = runs[0].data.params
    dataset = datasets.get(params.get("dataset", "mnist"))
    arrays = datasets.load(dataset)
    splits = split(arrays, int(params["validation"]), int(params["subset"]))
    recognizers = [model.unwrap_python_model() for model in loaded]
    networks = [network for recognizer in recognizers for network in recognizer.networks]
    # Numbers' candidate digits are judged by the piece network of the first member that has one.
    pieces_from, piece_network = next(
        ((run.info.run_id, model.pieces) for run, model in zip(runs, recognizers) if model.pieces is not None),
        (None, None),
    )
    reader_from, reader_network = next(
        (
            (run.info.run_id, model.sequence_reader)
            for run, model in zip(runs, recognizers)
            if model.sequence_reader is not None
        ),
        (None, None),
    )
    if len({network.output_shape[-1] for network in networks}) > 1:
        sys.exit('ensemble: the members answer different classes (some have a "not a digit" class)')

    with mlflow.start_run(run_name=f"ensemble of {len(runs)}"):
        tags.log_params(
            {
                "runs": ",".join(args.runs),
                "members": len(networks),
                "tta": args.tta,
                "dataset": dataset.name,
                "validation": params["validation"],
                "subset": params["subset"],
                "parameters": sum(network.count_params() for network in networks),
                "pieces_from": pieces_from or "none",
                "sequence_reader_from": reader_from or "none",
            }
        )
        versions = sorted({run.data.tags.get("version", "?") for run in runs})
        name = f"ensemble of {len(runs)} (versions {', '.join(versions)})"
        mlflow.set_tags(
            {
                **tags.environment_tags(),
                "version": "ensemble",
                "version_name": name,
                "reject_class": str(networks[0].output_shape[-1] > len(dataset.classes)).lower(),
                "validation_set": runs[0].data.tags["validation_set"],
            }
        )
        validation = None
        if splits.validated:
            validation = evaluation.Evaluation(
                average_probabilities(networks, splits.validation_images, args.tta),
                splits.validation_labels,
            )
            mlflow.log_metric("val_accuracy", validation.accuracy)
        member_accuracies = []
        for number, network in enumerate(networks):
            predicted = predict(network, splits.test_images).argmax(axis=1)
            member_accuracies.append(float((predicted == splits.test_labels).mean()))
            mlflow.log_metric("member_test_accuracy", member_accuracies[-1], step=number + 1)
        mlflow.log_table(
            {"member": list(range(1, len(networks) + 1)), "test_accuracy": member_accuracies}, "ensemble/members.json"
        )
        # Calibrated first, so that the test figures are those of the model as served.
        temperature = logged_model.calibrate(validation)
        result = evaluation.log_test_evaluation(
            scaled(average_probabilities(networks, splits.test_images, args.tta), temperature),
            splits.test_images,
            splits.test_labels,
            dataset.classes,
            title=f"ensemble of {len(runs)}",
        )
        info = logged_model.log_model(
            networks,
            splits.test_images[:3],
            temperature,
            dataset.name if args.register else None,
            tta=args.tta,
            pieces=piece_network,
            sequence_reader=reader_network,
        )
        model_version = None
        if args.register:
            model_version = logged_model.describe_version(
                dataset.name, info, "ensemble", name, {"runs": ",".join(args.runs)}
            )
    for number, accuracy in enumerate(member_accuracies):
        print(f"member {number + 1}: test accuracy {accuracy:.2%}")
    validated = f"validation accuracy {validation.accuracy:.2%}, " if validation is not None else ""
    print(f"ensemble of {len(networks)}: {validated}test accuracy {result.accuracy:.2%} ({result.errors} errors)")
    if model_version is not None:
        print(f"registered as models:/{dataset.name}/{model_version} (the registry's number)")


if __name__ == "__main__":
    main()
