"""Entry point `evaluate`: measure any logged or registered model on the test set.

    mlflow run . -e evaluate --env-manager local
    mlflow run . -e evaluate -P model_uri=models:/mnist/3 --env-manager local
    python -m pipeline.evaluate --model-uri runs:/<run id>/model

Logs the same test metrics and artifacts as `train` (accuracy, loss, errors,
confusion matrix, the most confident errors, every prediction).
"""

import argparse
import sys

from pipeline.arguments import non_negative_int, option


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument(*option("model-uri"), dest="model_uri", default="models:/mnist/Production",
                        help="models:/name/stage, models:/name@alias, models:/name/N or runs:/id/model")
    parser.add_argument("--dataset", default="mnist", help="mnist (default) or fashion-mnist")
    parser.add_argument("--subset", type=non_negative_int, default=0,
                        help="evaluate on the first N test images only (default 0 = all)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline import datasets, evaluation, tracking, training

    with mlflow.start_run(run_name="evaluate"):
        try:
            dataset = datasets.get(args.dataset)
            arrays = datasets.load(dataset)
            model = mlflow.pyfunc.load_model(args.model_uri)
        except (datasets.DatasetError, MlflowException, OSError) as error:
            sys.exit(f"evaluate: cannot evaluate {args.model_uri}: {error}")
        tracking.log_params({"model_uri": args.model_uri, "dataset": dataset.name, "subset": args.subset})
        mlflow.set_tags(tracking.environment_tags())
        tracking.log_dataset(dataset, arrays)
        count = args.subset or len(arrays.test_labels)
        images = training.scaled(arrays.test_images[:count])
        result = evaluation.log_test_evaluation(
            model.unwrap_python_model().probabilities(images), images, arrays.test_labels[:count], dataset.classes, title=args.model_uri
        )
    print(f"{args.model_uri}: test accuracy {result.accuracy:.2%}, {result.errors} errors "
          f"in {len(result.labels)} images, loss {result.loss:.4f}")


if __name__ == "__main__":
    main()
