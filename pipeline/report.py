"""Entry point `report`: compare every model trained in an experiment, in Markdown and HTML.

    mlflow run . -e report --env-manager local
    mlflow run . -e report -P experiment=mnist -P output_dir=docs/report --env-manager local
    python -m pipeline.report --experiment Default

Writes `report.md` (with its figures beside it, under `figures/`) and
`report.html` (figures embedded: one file to open or send) into the output
folder, and logs all of them as artifacts of a `report` run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline import console
from pipeline.arguments import option


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--experiment", default="", help="the experiment's name (default: the current one, else Default)"
    )
    parser.add_argument(
        *option("output-dir"),
        dest="output_dir",
        default="report",
        help="where to write report.md, report.html and figures/ (default ./report)",
    )
    return console.add_verbosity(parser).parse_args(argv)


def current_experiment() -> str:
    import mlflow

    experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if experiment_id:
        return mlflow.get_experiment(experiment_id).name
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or "Default"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow

    from pipeline.analysis import reporting
    from pipeline.data import datasets
    from pipeline.data.atomic import write_atomically
    from pipeline.training.splits import scaled

    experiment = args.experiment or current_experiment()
    arrays = datasets.load(datasets.get("mnist"))
    try:
        report = reporting.build(experiment, scaled(arrays.test_images))
    except reporting.ReportError as error:
        sys.exit(f"report: {error}")
    output = Path(args.output_dir)
    (output / "figures").mkdir(parents=True, exist_ok=True)
    for name, data in report.figures.items():
        write_atomically(output / "figures" / name, data)
    write_atomically(output / "report.md", reporting.markdown(report, experiment).encode())
    write_atomically(output / "report.html", reporting.html_document(report, experiment).encode())
    with mlflow.start_run(run_name="report"):
        mlflow.set_tag("reported_experiment", experiment)  # the parameter may be "" (the current one)
        mlflow.log_artifacts(str(output), "report")
    print(reporting.formatted(report.table).to_string(index=False))
    print(f"report: {output / 'report.md'} and {output / 'report.html'}")


if __name__ == "__main__":
    main()
