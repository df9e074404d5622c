"""Entry point `bench`: wall-clock training time until a version first reaches a test accuracy.

    mlflow run . -e bench -P version=4 -P target=0.9915 -P seeds=5 --env-manager local
    mlflow run . -e bench -P peers=true -P seeds=1 --env-manager local
    python -m pipeline.bench --version 4 --seeds 5

Trains the version once per seed (0, 1, ...) and prints, for each, the training
seconds until the test accuracy measured at an epoch's end first reached the
target (the clock stops while measuring; the measurement never steers training),
then the median, min and max over seeds and how many reached it. Each seed is a
nested MLflow run with its per-epoch metrics; the parent run gets the summary, the
JSON document `bench/results.json` and the table `bench/results.md`. The last
line printed is that JSON document on one line, for scripts.

`--peers` runs, in the same process on the same machine, what users would pick
instead beside our own: the seed's version 3 as the seed trained it, keras.io's
convnet example (version 0) and versions 4 and 5.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import accuracy, boolean, non_negative_int, option, positive_int, version_number
from pipeline.training import versions

if TYPE_CHECKING:
    from pipeline.analysis import benchmarking

PEERS = (3, 0, 4, 5)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version",
        type=version_number,
        default=4,
        help=f"which network (default 4): {', '.join(f'{n} = {v.name}' for n, v in versions.VERSIONS.items())}",
    )
    parser.add_argument("--target", type=accuracy, default=0.9915, help="test accuracy to reach (default 0.9915)")
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds 0..N-1, one training each (default 5)")
    parser.add_argument("--epochs", type=non_negative_int, default=0, help="default 0: the version's own")
    parser.add_argument(
        "--peers",
        type=boolean,
        default=False,
        help=f"bench versions {', '.join(map(str, PEERS))} side by side instead of --version",
    )
    parser.add_argument("--validation", type=positive_int, default=5000, help="held-out training images (default 5000)")
    parser.add_argument("--subset", type=non_negative_int, default=0, help="first N images only (default 0 = all)")
    parser.add_argument(*option("markdown"), default="", help="also write the table to this file")
    return console.add_verbosity(parser).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow

    from pipeline.analysis import benchmarking
    from pipeline.analysis.machine import machine
    from pipeline.data import datasets
    from pipeline.tracking import tags
    from pipeline.training.settings import Settings, SettingsError
    from pipeline.training.splits import split

    try:
        arrays = datasets.load(datasets.get("mnist"))
        splits = split(arrays, args.validation, args.subset)
    except (datasets.DatasetError, SettingsError) as error:
        sys.exit(f"bench: {error}")
    numbers = PEERS if args.peers else (args.version,)
    host = machine()
    results, summaries = [], []
    with mlflow.start_run(run_name="bench peers" if args.peers else f"bench v{args.version}"):
        tags.log_params(
            {
                "version": ",".join(map(str, numbers)),
                "target": args.target,
                "seeds": args.seeds,
                "epochs": args.epochs,
                "validation": args.validation,
                "subset": args.subset,
            }
        )
        mlflow.set_tags(tags.environment_tags())
        for number in numbers:
            version_results = []
            for seed in range(args.seeds):
                settings = Settings.for_version(
                    number,
                    seed=seed,
                    epochs=args.epochs or None,
                    validation=args.validation,
                    subset=args.subset,
                )
                with mlflow.start_run(run_name=f"bench v{number} seed {seed}", nested=True):
                    tags.log_params(settings.params())
                    result = benchmarking.time_to_target(settings, splits, args.target)
                    mlflow.log_metrics(
                        {"seconds_to_target": result.seconds_to_target, "train_seconds": result.train_seconds}
                        if result.reached
                        else {"train_seconds": result.train_seconds}
                    )
                print(line(result), flush=True)
                version_results.append(result)
            summaries.append(benchmarking.summary(version_results))
            results += version_results
        document = benchmarking.log(results, summaries, host)
    table = benchmarking.markdown(summaries, host)
    print(table)
    if args.markdown:
        from pipeline.data.atomic import write_atomically

        write_atomically(Path(args.markdown), table.encode())
    print(json.dumps(document))


def line(result: benchmarking.SeedResult) -> str:
    reached = (
        f"reached {result.target:.2%} after {result.seconds_to_target:.1f} s (epoch {result.epochs_to_target})"
        if result.reached
        else f"never reached {result.target:.2%}"
    )
    return (
        f"{result.label} seed {result.seed}: {reached}; final {result.final_accuracy:.2%} "
        f"after {result.train_seconds:.1f} s ({result.seconds_per_epoch:.1f} s per epoch)"
    )


if __name__ == "__main__":
    main()
