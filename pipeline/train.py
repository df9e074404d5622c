"""Entry point `train`: train one version on the prepared dataset and record it all in MLflow.

    mlflow run . -e train -P version=2 --env-manager local
    mlflow run . -e train -P version=3 -P epochs=5 -P seed=1 --env-manager local
    python -m pipeline.train --version 1 --subset 2000 --epochs 1

Logs parameters, per-epoch metrics (step = epoch), test metrics, figures, the
model summary and the model itself, registered as a new version of `mnist` (of
`fashion-mnist` for a clothing model). At the end it prints the seed's published
figures beside this run's.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import (
    boolean,
    non_negative_float,
    non_negative_int,
    option,
    positive_float,
    positive_int,
    version_number,
)
from pipeline.training import versions

if TYPE_CHECKING:
    from pipeline.tracking.run import Outcome


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version",
        type=version_number,
        required=True,
        help=f"which network: {', '.join(f'{n} = {v.name}' for n, v in versions.VERSIONS.items())}",
    )
    parser.add_argument("--epochs", type=positive_int, help="default: the version's")
    parser.add_argument(*option("batch-size"), dest="batch_size", type=positive_int, help="default: the version's")
    parser.add_argument(
        *option("learning-rate"),
        dest="learning_rate",
        type=positive_float,
        help="Adam's learning rate; default: the version's",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="same seed, same metrics (default 0)")
    parser.add_argument(
        "--validation",
        type=non_negative_int,
        default=5000,
        help="training images held out, from the end, to validate on (default 5000); 0 = train "
        "on all of them, once the recipe is chosen: no validation metrics, no calibration, "
        "and `promote` will not choose the model",
    )
    parser.add_argument(
        "--subset",
        type=non_negative_int,
        default=0,
        help="use only the first N training and N test images, for quick checks (default 0 = all)",
    )
    parser.add_argument("--dataset", default="mnist", help="mnist (default) or fashion-mnist")
    parser.add_argument(
        *option("params-from"),
        dest="params_from",
        default="",
        help="the run id of a search: train its best configuration (layers, learning rate, batch size)",
    )
    parser.add_argument(
        *option("sequence-reader"),
        dest="sequence_reader",
        type=non_negative_float,
        help="train a sequence reader, which reads numbers whole, on this many composed numbers per training "
        "digit besides; 0 = none (default: the version's own, 80,000 in all for version 6, none for the others)",
    )
    parser.add_argument(
        "--members",
        type=positive_int,
        help="networks to train, each with its own seed, and average into the served model "
        "(default: the version's own, 2 for version 6, 1 for the others)",
    )
    parser.add_argument(
        "--register", type=boolean, default=True, help="register the model as a new version of `mnist` (default true)"
    )
    return console.add_verbosity(parser).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow

    from pipeline.data.datasets import DatasetError
    from pipeline.tracking.run import train_tracked
    from pipeline.training.settings import Settings, SettingsError

    architecture, searched = {}, {}
    if args.params_from:
        from pipeline.tuning import summary
        from pipeline.tuning.study import SearchError

        try:
            best = summary.best_params(args.params_from)
        except SearchError as error:
            sys.exit(f"train: {error}")
        if best["version"] != args.version:
            sys.exit(f"train: search {args.params_from} searched version {best['version']}, not {args.version}")
        architecture, searched = summary.split_params(best)
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate}
    overrides = {**searched, **{key: value for key, value in given.items() if value is not None}}
    settings = Settings.for_version(
        args.version,
        **overrides,
        seed=args.seed,
        validation=args.validation,
        subset=args.subset,
        sequence_reader=args.sequence_reader,  # None: the version's own
        members=args.members,
    )
    with mlflow.start_run(run_name=f"train v{settings.version}"):
        try:
            outcome = train_tracked(
                settings, dataset_name=args.dataset, architecture=architecture, register=args.register
            )
        except (DatasetError, SettingsError) as error:
            sys.exit(f"train: {error}")
    print(comparison(versions.get(settings.version), outcome))
    if outcome.model_version is not None:
        print(
            f"registered as models:/{args.dataset}/{outcome.model_version} (the registry's number); "
            f"`mlflow run . -e promote` puts the best in Production"
        )


def comparison(version: versions.Version, outcome: Outcome) -> str:
    """The seed's published figures beside this run's, as a small text table."""
    seed = version.published
    test_images = len(outcome.evaluation.labels)
    rows = [
        ("train accuracy", seed and f"{seed.train_accuracy:.2%}", f"{outcome.history['accuracy'][-1]:.2%}"),
        ("test accuracy", seed and f"{seed.test_accuracy:.2%}", f"{outcome.evaluation.accuracy:.2%}"),
        (
            "test errors",
            seed and f"{round((1 - seed.test_accuracy) * 10000)} of 10000",
            f"{outcome.evaluation.errors} of {test_images}",
        ),
        ("training time", seed and f"{seed.train_seconds:.1f} s", f"{outcome.train_seconds:.1f} s"),
    ]
    lines = [f"{f'version {version.number} ({version.name})':<24}{'seed (2018 report)':>20}{'this run':>16}"]
    lines += [f"{label:<24}{theirs or '-':>20}{ours:>16}" for label, theirs, ours in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
