"""Entry point `search`: an Optuna search over a version's layer widths, dropout and learning rate.

    mlflow run . -e search -P version=3 -P n_trials=20 -P epochs=3 --env-manager local
    mlflow run . -e search -P version=3 -P n_trials=20 -P n_jobs=2 --env-manager local
    PGPASSWORD=... mlflow run . -e search -P storage=postgresql://user@db/optuna -P study=wide --env-manager local

The search is this MLflow run; each trial is a nested run with its parameters,
per-epoch metrics, state and duration. At the end this run logs the best
configuration, the trials table and Optuna's plots, and (`train_best=true`)
trains the best configuration with the version's full epochs, registered as a new
version of `mnist`. Rerunning with the same `study` continues it; several
processes or machines sharing `storage` share its trials (see `pipeline.tuning`).

A storage URL never holds a password: `mlflow run` records and prints every `-P`
as typed. PostgreSQL reads it from `PGPASSWORD` or `~/.pgpass`; a URL with one is
refused before anything is opened.
"""

from __future__ import annotations

import argparse
import sys
import time

from pipeline import console
from pipeline.arguments import boolean, non_negative_int, option, positive_float, positive_int, version_number


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.search", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", type=version_number, default=3, help="which version's space (default 3)")
    parser.add_argument(
        *option("n-trials"),
        dest="n_trials",
        type=positive_int,
        default=20,
        help="trials the study holds in all; a rerun tops it up to this (default 20)",
    )
    parser.add_argument("--epochs", type=positive_int, default=3, help="epochs per trial (default 3)")
    parser.add_argument(
        "--timeout",
        type=lambda text: positive_float(text) if text else None,
        default=None,
        help="stop claiming new trials after this many seconds (default: no limit)",
    )
    parser.add_argument("--study", default="", help="study name (default mnist-v<version>)")
    parser.add_argument(
        "--storage",
        default="",
        help="an Optuna RDB URL (postgresql://...) or a journal file path (default optuna.journal)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        *option("n-jobs"),
        dest="n_jobs",
        type=positive_int,
        default=1,
        help="worker processes on this machine (default 1)",
    )
    parser.add_argument("--validation", type=positive_int, default=5000)
    parser.add_argument("--subset", type=non_negative_int, default=0)
    parser.add_argument(
        *option("train-best"),
        dest="train_best",
        type=boolean,
        default=True,
        help="train and register the best configuration at the end (default true)",
    )
    return console.add_verbosity(parser).parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    if password_in(args.storage):
        sys.exit(
            f"search: the storage URL {redacted(args.storage)} holds a password, and `mlflow run` records every "
            f"-P as typed: leave it out of the URL and give it in PGPASSWORD or ~/.pgpass (see the README); "
            f"if this ran through `mlflow run`, delete the run it recorded (mlflow runs delete, then mlflow gc)"
        )
    import mlflow

    from pipeline.tracking import tags
    from pipeline.tuning import study as studies
    from pipeline.tuning import summary, workers

    with mlflow.start_run(run_name=f"search v{args.version}") as run:
        plan = studies.Plan(
            version=args.version,
            study=args.study or f"mnist-v{args.version}",
            storage=args.storage or studies.DEFAULT_STORAGE,
            n_trials=args.n_trials,
            epochs=args.epochs,
            seed=args.seed,
            validation=args.validation,
            subset=args.subset,
            parent_run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
            tracking_uri=mlflow.get_tracking_uri(),
            deadline=time.time() + args.timeout if args.timeout else float("inf"),
        )
        tags.log_params({**vars(args), "study": plan.study, "storage": plan.storage})
        # `mlflow run` logged the defaults as typed (""); the tags say what was used.
        mlflow.set_tags({"optuna_study": plan.study, "optuna_storage": plan.storage, "version": str(args.version)})
        try:
            study = workers.search(plan, n_jobs=args.n_jobs)
            best = summary.summarize(study)
        except studies.SearchError as error:
            sys.exit(f"search: {error}")
        except KeyboardInterrupt:
            mlflow.end_run("KILLED")
            sys.exit(
                f"search: stopped; the trials in flight are marked FAIL and queued again; "
                f"rerun the same command to continue study {plan.study!r}"
            )
        if best is None:
            sys.exit("search: no trial completed; nothing to report or train")
        print(
            f"search: best trial {best['trial']}, val_accuracy {best['val_accuracy']:.4f}: "
            f"{ {k: v for k, v in best.items() if k not in ('version', 'trial', 'val_accuracy')} }"
        )
        if args.train_best:
            summary.train_best(best, run.info.run_id, args.seed, args.validation, args.subset)


def password_in(storage: str) -> bool:
    from urllib.parse import urlsplit

    return "://" in storage and urlsplit(storage).password is not None


def redacted(storage: str) -> str:
    """The storage URL without what follows the user name, fit to print."""
    scheme, _, rest = storage.partition("://")
    user, at, host = rest.rpartition("@")
    return f"{scheme}://{user.split(':')[0]}:***@{host}" if at else storage


if __name__ == "__main__":
    main()
