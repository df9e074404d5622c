"""Entry point `evaluate`: measure any logged or registered model on the test set, or on a folder of images.

    mlflow run . -e evaluate --env-manager local
    mlflow run . -e evaluate -P model_uri=models:/mnist/3 --env-manager local
    mlflow run . -e evaluate -P images=image-sets --env-manager local
    python -m pipeline.evaluate --model-uri runs:/<run id>/model

On the test set it logs the same test metrics and artifacts as `train`
(accuracy, loss, errors, confusion matrix, the most confident errors, every
prediction). With `--images` it scores the model's answers on image files
whose contents are known (`pipeline.analysis.image_folders`: digits read, numbers read,
non-digits rejected) and logs the figures and every answer.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import non_negative_int, option, probability
from pipeline.serving.reading import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    import mlflow


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        *option("model-uri"),
        dest="model_uri",
        default="models:/mnist/Production",
        help="models:/name/stage, models:/name@alias, models:/name/N or runs:/id/model",
    )
    parser.add_argument("--dataset", default="mnist", help="mnist (default) or fashion-mnist")
    parser.add_argument(
        "--subset", type=non_negative_int, default=0, help="evaluate on the first N test images only (default 0 = all)"
    )
    parser.add_argument(
        *option("images"),
        default="",
        help="a folder of image files (digits/<d>/, numbers/<n>/, not-digits/<kind>/) instead",
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        default=DEFAULT_THRESHOLD,
        help=f"with --images: the least confidence accepted (default {DEFAULT_THRESHOLD})",
    )
    return console.add_verbosity(parser).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.tracking import tags

    with mlflow.start_run(run_name="evaluate images" if args.images else "evaluate"):
        try:
            model = mlflow.pyfunc.load_model(args.model_uri)
        except (MlflowException, OSError) as error:
            sys.exit(f"evaluate: cannot evaluate {args.model_uri}: {error}")
        mlflow.set_tags(tags.environment_tags())
        if args.images:
            evaluate_images(model, args)
        else:
            evaluate_test_set(model, args)


def evaluate_test_set(model: mlflow.pyfunc.PyFuncModel, args: argparse.Namespace) -> None:
    from pipeline.analysis import evaluation
    from pipeline.data import datasets
    from pipeline.tracking import lineage, tags
    from pipeline.training.splits import scaled

    try:
        dataset = datasets.get(args.dataset)
        arrays = datasets.load(dataset)
    except datasets.DatasetError as error:
        sys.exit(f"evaluate: cannot evaluate {args.model_uri}: {error}")
    tags.log_params({"model_uri": args.model_uri, "dataset": dataset.name, "subset": args.subset})
    count = args.subset or len(arrays.test_labels)
    images = scaled(arrays.test_images[:count])
    lineage.log_part(dataset, "test", "testing", images, arrays.test_labels[:count], 0)
    result = evaluation.log_test_evaluation(
        model.unwrap_python_model().probabilities(images),
        images,
        arrays.test_labels[:count],
        dataset.classes,
        title=args.model_uri,
    )
    print(
        f"{args.model_uri}: test accuracy {result.accuracy:.2%}, {result.errors} errors "
        f"in {len(result.labels)} images, loss {result.loss:.4f}"
    )


def evaluate_images(model: mlflow.pyfunc.PyFuncModel, args: argparse.Namespace) -> None:
    import mlflow

    from pipeline.analysis import image_folders
    from pipeline.tracking import tags

    try:
        found = image_folders.items(args.images)
    except image_folders.FolderError as error:
        sys.exit(f"evaluate: {error}")
    tags.log_params({"model_uri": args.model_uri, "images": args.images, "threshold": args.threshold})
    table = image_folders.answers(model, found, args.threshold)
    figures = image_folders.summary(table)
    mlflow.log_metrics({f"images_{key}": value for key, value in figures.items()})
    mlflow.log_text(table.to_csv(index=False, float_format="%.4f"), "images/answers.csv")
    for key, value in figures.items():
        print(f"{key:45s} {value:.2%}" if isinstance(value, float) else f"{key:45s} {value}")


if __name__ == "__main__":
    main()
