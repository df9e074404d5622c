"""Entry point `main` (what `make run` runs): prep, train versions 1 to 4 and 6, promote the best.

    mlflow run . --env-manager local --experiment-name mnist
    mlflow run . -P versions=1,2 -P epochs=1 -P subset=5000 --env-manager local

Each step is an `mlflow.run` of its own entry point, so it becomes a run nested
under this one. The versions that can say "not a digit" (6) are trained first and
promoted at once, so that a Production model for people's images is ready to
serve early; the others follow, then `promote` runs again. Without Fashion-MNIST
(its offline source is Debian's `dataset-fashion-mnist`) version 6 is skipped,
said in one line, and the rest runs.

A `prep` or `train` step that already finished with the same parameters — every
one the step resolved, not only those typed — on the same data, from the same
commit of a clean work tree, is reused instead of rerun (`-P reuse=false` reruns
everything); `promote` always runs.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import time
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import boolean, non_negative_int, positive_int

if TYPE_CHECKING:
    import mlflow

log = logging.getLogger("pipeline.main")

DEFAULT_VERSIONS = "1,2,3,4,6"
ENTRY_POINT_TAG = "mlflow.project.entryPoint"
COMMIT_TAG = "mlflow.source.git.commit"

# Minutes each step of `make run` took from a fresh clone on a 2-core AMD EPYC virtual machine
# (2026-12-03, the main job 33 minutes), rounded up, everything a step does besides training included;
# version 6, two classifiers with its piece network and sequence reader, from `make run` of 4b10572 on
# a 2-core Intel Xeon (2026-12-05, 24.8 minutes, its batch normalization trained in the fused kernel);
# versions 0 and 5, which it does not train, from BENCHMARKS.md's runs (5's with that kernel, on the
# Xeon). The machines' speed varies by up to a third from hour to hour. Both machines compute in bfloat16,
# which versions 4-6 train in where the processor has it (`training.processor`).
STEP_MINUTES = {"prep": 0.5, "promote": 0.5, 0: 3.0, 1: 1.0, 2: 2.0, 3: 13.0, 4: 1.0, 5: 7.0, 6: 25.0}
# Where it has not, they train in float32: minutes from `make run` of cb98ab7 on a 2-core Intel Xeon without
# bfloat16 instructions (2026-12-06; version 6 52.8 minutes, versions 1 and 2 51 and 150 s) and of 30b0129
# there (version 3 1,032 s, 4 44 s); version 5's from the seconds per step of version 6's classifiers there
# (the same network). That Xeon is also slower at what trains in float32 everywhere (versions 1-3).
FLOAT32_STEP_MINUTES = {**STEP_MINUTES, 2: 3.0, 3: 18.0, 5: 19.0, 6: 53.0}


class StepFailed(RuntimeError):
    """A nested step exited with an error; its own output says why."""


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

    from pipeline.tracking import tags
    from pipeline.training import versions

    readers = [number for number in args.versions if versions.get(number).reject_class]
    others = [number for number in args.versions if number not in readers]
    precision = versions.FAST_CPU["precision"]  # what versions 4-6 train in on this processor
    print(estimate(readers, others, full=not (args.epochs or args.subset), precision=precision))
    started = time.monotonic()
    with mlflow.start_run(run_name="main") as parent:
        experiment = parent.info.experiment_id
        tags.mark_model_training(experiment)
        try:
            run_step("prep", {"dataset": "mnist", "source_dir": ""}, experiment, args.reuse)
            if readers:
                try:  # non-digits to learn "not a digit" from
                    run_step("prep", {"dataset": "fashion-mnist", "source_dir": ""}, experiment, args.reuse)
                except StepFailed:
                    log.warning(
                        'skipping version %s: it learns "not a digit" from Fashion-MNIST, which could not be '
                        "fetched (install Debian's dataset-fashion-mnist, or see the README's Data)",
                        ", ".join(map(str, readers)),
                    )
                    readers = []
            for number in readers:
                run_step("train", train_parameters(number, args), experiment, args.reuse)
            serving = bool(readers) and promoted(experiment)
            if serving:
                print(ready(started, others))
            for number in others:
                run_step("train", train_parameters(number, args), experiment, args.reuse)
            if others:
                serving = promoted(experiment) or serving
        except StepFailed as error:
            raise SystemExit(f"main: {error}; its output is above") from None
    minutes = (time.monotonic() - started) / 60
    serve = (
        "mlflow models serve -m models:/mnist/Production --env-manager local --port 5001 --workers 2"
        if serving
        else 'none: no model that can say "not a digit" was trained (see above)'
    )
    print(
        f"\nDone in {minutes:.0f} minutes. With .venv activated (or through `make ui` and `make serve`):\n"
        f"  compare the runs:            mlflow ui --port 5000, then open {ui_url(experiment)}\n"
        f"  serve the Production model:  {serve}"
        + ("\n  draw digits for it to read:  make demo, then open http://127.0.0.1:8000" if serving else "")
    )


def ui_url(experiment_id: str) -> str:
    """The experiment's page in `mlflow ui` on port 5000, in its model training view (MLflow 3 opens on GenAI)."""
    return f"http://127.0.0.1:5000/#/experiments/{experiment_id}?workflowType=machine_learning"


def estimate(readers: list[int], others: list[int], full: bool, precision: str = "mixed_bfloat16") -> str:
    """How long the main job will take on a 2-core CPU that trains versions 4-6 in `precision`, and where
    the time goes."""
    if not full:
        return "main: a quick run (epochs or subset given): a few minutes"
    minutes = FLOAT32_STEP_MINUTES if precision == "float32" else STEP_MINUTES
    steps = [("prep MNIST", minutes["prep"])]
    if readers:
        steps.append(("prep Fashion-MNIST", minutes["prep"]))
    steps += [(f"version {number}", minutes[number]) for number in readers + others]
    steps.append(("promote", minutes["promote"] * (1 + bool(readers and others))))
    total = sum(step for _, step in steps)
    where = ", ".join(f"{name} {step:g}" for name, step in steps)
    first = ""
    if readers:
        ready_after = sum(minutes[key] for key in ["prep", "prep", *readers, "promote"])
        first = f"; a Production model that reads people's images is ready after about {ready_after:.0f}"
    cores = "2 cores without bfloat16 instructions, training in float32" if precision == "float32" else "2 cores"
    return f"main: about {total:.0f} minutes on {cores} ({where}){first}"


def ready(started: float, others: list[int]) -> str:
    import mlflow

    from pipeline.tracking.promotion import ALIAS, DIGITS

    serving = mlflow.MlflowClient().get_model_version_by_alias(DIGITS, ALIAS)
    rest = f"; versions {', '.join(map(str, others))} train next" if others else ""
    return (
        f"\nmain: ready to serve after {(time.monotonic() - started) / 60:.0f} minutes: models:/mnist/Production "
        f"is registry version {serving.version} ({serving.description or 'no description'}).\n"
        f"  In another terminal: make serve, or make demo for a page to draw on{rest}."
    )


def promoted(experiment_id: str) -> bool:
    """Run `promote`; False (its reason on the console) when nothing could be promoted."""
    try:
        run_step("promote", {}, experiment_id, reuse=False)
    except StepFailed:
        log.warning("no model was promoted; the reason is above")
        return False
    return True


def train_parameters(number: int, args: argparse.Namespace) -> dict:
    """Every parameter of a `train` step as the main job runs it: a reused run must match them all."""
    parameters = {
        "version": number,
        "seed": 0,
        "validation": args.validation,
        "subset": args.subset,
        "dataset": "mnist",
        "params_from": "",
        "register": "true",
    }
    if args.epochs:
        parameters["epochs"] = args.epochs
    return parameters


def run_step(entry_point: str, parameters: dict, experiment_id: str, reuse: bool) -> mlflow.entities.Run:
    """Run `entry_point` as a nested MLflow project run, or reuse an identical finished one."""
    import mlflow
    from mlflow.exceptions import ExecutionException

    parameters = {key: str(value) for key, value in parameters.items()}
    if reuse:
        params, tags = resolved(entry_point, parameters)
        previous = finished_run(entry_point, params, tags, experiment_id)
        if previous is not None:
            log.info("%s %s: reusing finished run %s", entry_point, parameters, previous.info.run_id)
            return previous
    log.info("%s %s: running", entry_point, parameters)
    try:
        submitted = mlflow.run(
            ".", entry_point, parameters=parameters, env_manager="local", experiment_id=experiment_id
        )
    except ExecutionException as error:
        raise StepFailed(f"step {entry_point} {parameters} failed ({error})") from None
    return mlflow.get_run(submitted.run_id)


def resolved(entry_point: str, parameters: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The params and tags a finished `prep` or `train` run must have had to be reused in its place.

    For `train`: every setting the version resolves (epochs, learning rate, schedule,
    augmentation, layers...), not only the parameters typed, and the digest of the
    data it trained and validated on; for `prep`, the dataset's digest.
    """
    import shlex

    from pipeline.data import datasets

    typed = {key: shlex.quote(value) for key, value in parameters.items()}  # `mlflow run` logs them shell-quoted
    if entry_point == "prep":
        return typed, {"dataset_digest": datasets.digest(datasets.get(parameters["dataset"]))}
    from pipeline.tracking import lineage
    from pipeline.training import versions
    from pipeline.training.settings import Settings, resolved_architecture

    number = int(parameters["version"])
    settings = Settings.for_version(
        number,
        epochs=int(parameters["epochs"]) if "epochs" in parameters else None,
        seed=int(parameters["seed"]),
        validation=int(parameters["validation"]),
        subset=int(parameters["subset"]),
    )
    layers = resolved_architecture(versions.get(number))
    params = {key: str(value) for key, value in {**settings.params(), **layers}.items()}
    dataset = datasets.get(parameters["dataset"])
    tags = {"validation_set": lineage.validation_set(dataset, settings.subset, settings.validation)}
    return {**params, **typed}, tags


def finished_run(
    entry_point: str, params: dict[str, str], tags: dict[str, str], experiment_id: str
) -> mlflow.entities.Run | None:
    """A finished run of `entry_point` with exactly these params and tags, from this commit of a clean tree."""
    import mlflow

    commit = clean_commit()
    if commit is None:
        return None
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{ENTRY_POINT_TAG}` = '{entry_point}' and attributes.status = 'FINISHED'",
        output_format="list",
    )
    wanted_tags = {**tags, COMMIT_TAG: commit}
    for run in runs:
        if matches(run.data.params, params) and matches(run.data.tags, wanted_tags):
            return run
    return None


def matches(recorded: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(recorded.get(key) == value for key, value in wanted.items())


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
