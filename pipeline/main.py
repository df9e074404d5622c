"""Entry point `main` (what `mlflow run .` runs): prep, train versions 1 to 4 and 6, promote the best.

    mlflow run . --env-manager local
    mlflow run . -P versions=1,2 -P epochs=1 -P subset=5000 --env-manager local

Each step is an `mlflow.run` of its own entry point, so it becomes a run nested
under this one. A `prep` or `train` step that already finished with the same
parameters, from the same commit of a clean work tree, is reused instead of rerun
(`-P reuse=false` reruns everything); `promote` always runs.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import boolean, non_negative_int, positive_int

if TYPE_CHECKING:
    import mlflow

log = logging.getLogger("pipeline.main")

DEFAULT_VERSIONS = "1,2,3,4,6"
ENTRY_POINT_TAG = "mlflow.project.entryPoint"
COMMIT_TAG = "mlflow.source.git.commit"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.main", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--versions", default=DEFAULT_VERSIONS, help=f"comma-separated version numbers (default {DEFAULT_VERSIONS})"
    )
    parser.add_argument("--epochs", type=non_negative_int, default=0, help="0 = each version's own (default)")
    parser.add_argument("--subset", type=non_negative_int, default=0, help="first N images only; 0 = all (default)")
    parser.add_argument(
        "--validation", type=positive_int, default=5000, help="training images held out to validate on (default 5000)"
    )
    parser.add_argument("--reuse", type=boolean, default=True, help="reuse finished identical steps (default true)")
    args = console.add_verbosity(parser).parse_args(argv)
    from pipeline.training import versions

    try:
        args.versions = [versions.get(number.strip()).number for number in args.versions.split(",")]
    except ValueError as error:
        parser.error(f"argument --versions: {error}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow

    from pipeline.training import versions

    with mlflow.start_run() as parent:
        experiment = parent.info.experiment_id
        run_step("prep", {"dataset": "mnist"}, experiment, args.reuse)
        if any(versions.get(number).reject_class for number in args.versions):
            # Non-digits to learn "not a digit" from.
            run_step("prep", {"dataset": "fashion-mnist"}, experiment, args.reuse)
        for number in args.versions:
            parameters = {"version": number, "subset": args.subset, "validation": args.validation}
            if args.epochs:
                parameters["epochs"] = args.epochs
            run_step("train", parameters, experiment, args.reuse)
        run_step("promote", {}, experiment, reuse=False)
    print(
        "\nDone. With .venv activated (or through `make ui` and `make serve`):\n"
        "  compare the runs:            mlflow ui --port 5000, then open http://127.0.0.1:5000\n"
        "  serve the Production model:  mlflow models serve -m models:/mnist/Production --env-manager local --port 5001"
    )


def run_step(entry_point: str, parameters: dict, experiment_id: str, reuse: bool) -> mlflow.entities.Run:
    """Run `entry_point` as a nested MLflow project run, or reuse an identical finished one."""
    import mlflow
    from mlflow.exceptions import ExecutionException

    parameters = {key: str(value) for key, value in parameters.items()}
    if reuse:
        previous = finished_run(entry_point, parameters, experiment_id)
        if previous is not None:
            log.info("%s %s: reusing finished run %s", entry_point, parameters, previous.info.run_id)
            return previous
    log.info("%s %s: running", entry_point, parameters)
    try:
        submitted = mlflow.run(
            ".", entry_point, parameters=parameters, env_manager="local", experiment_id=experiment_id
        )
    except ExecutionException as error:
        sys.exit(f"main: step {entry_point} {parameters} failed ({error}); its output is above")
    return mlflow.get_run(submitted.run_id)


def finished_run(entry_point: str, parameters: dict, experiment_id: str) -> mlflow.entities.Run | None:
    """A finished run of `entry_point` with these parameters from this commit, if the work tree is clean."""
    import mlflow

    commit = clean_commit()
    if commit is None:
        return None
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{ENTRY_POINT_TAG}` = '{entry_point}' and attributes.status = 'FINISHED'",
        output_format="list",
    )
    for run in runs:
        same_params = all(run.data.params.get(key) == value for key, value in parameters.items())
        if same_params and run.data.tags.get(COMMIT_TAG) == commit:
            return run
    return None


def clean_commit() -> str | None:
    """HEAD's commit when the tracked files have no uncommitted changes, else None."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10
        )
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode or head.returncode or status.stdout.strip():
        return None
    return head.stdout.strip()


if __name__ == "__main__":
    main()
