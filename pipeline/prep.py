"""Entry point `prep`: fetch, verify and cache a dataset, and log it to MLflow.

    mlflow run . -e prep --env-manager local
    mlflow run . -e prep -P dataset=fashion-mnist --env-manager local
    python -m pipeline.prep --source-dir ~/Downloads/mnist

Sources are tried in order and each is reported in one line; see
`pipeline.data.sources`. The run logs the dataset as MLflow dataset inputs (name,
digest, shape, class counts) and a grid of sample images.
"""

from __future__ import annotations

import argparse
import sys

from pipeline import console
from pipeline.arguments import option
from pipeline.data import datasets

SAMPLES_PER_CLASS = 8


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.prep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(datasets.DATASETS))
    parser.add_argument(
        *option("source-dir"),
        dest="source_dir",
        default="",
        help="a folder holding the four IDX files (plain or .gz), tried first",
    )
    return console.add_verbosity(parser).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow

    from pipeline.analysis import figures
    from pipeline.data import sources
    from pipeline.tracking import lineage, tags

    dataset = datasets.get(args.dataset)
    with mlflow.start_run(run_name=f"prep {dataset.name}"):
        try:
            folder = sources.prepare(dataset, directory=args.source_dir or None)
            arrays = datasets.load(dataset)
        except datasets.DatasetError as error:
            sys.exit(f"prep: {error}")
        tags.log_params({"dataset": dataset.name, "source_dir": args.source_dir})
        mlflow.set_tags({"cache_dir": str(folder), "dataset_digest": datasets.digest(dataset)})
        lineage.log_dataset(dataset, arrays)
        picks = [
            index
            for label in range(len(dataset.classes))
            for index in (arrays.train_labels == label).nonzero()[0][:SAMPLES_PER_CLASS]
        ]
        figures.log(
            figures.digit_grid(
                arrays.train_images[picks],
                [dataset.classes[arrays.train_labels[i]] for i in picks],
                columns=SAMPLES_PER_CLASS,
                title=f"{dataset.name}: training samples",
            ),
            "figures/samples.png",
        )
    print(
        f"{dataset.name}: {len(arrays.train_labels)} training and {len(arrays.test_labels)} test images "
        f"verified in {folder}"
    )


if __name__ == "__main__":
    main()
