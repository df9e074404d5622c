"""Entry point `promote`: put the best registered digit reader of `mnist` in Production, or the one chosen.

    mlflow run . -e promote --env-manager local
    mlflow run . -e promote -P model_version=7 --env-manager local

`model_version` is the registry's number (`models:/mnist/7`), not the project's
version (1-6) that was trained; each registered version's description and its
`project_version` tag say which that was. "Best" means the highest validation
accuracy among the versions that can say "not a digit", validated on the same
images; a version chosen by hand is promoted whatever its accuracy, if it can
serve people's images at all. See `pipeline.tracking.promotion` for the rules.
The run logs the decision (tags `decision`, `chosen_by`, `promoted_version`,
`previous_version`, `reason`, and `repaired` when stage and alias disagreed) and
the table of candidates it weighed.
"""

from __future__ import annotations

import argparse
import sys

from pipeline import console
from pipeline.arguments import option, positive_int


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.promote", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        *option("model-version"),
        dest="model_version",
        default="",
        help="the registry's number of a version to promote by hand instead of the best",
    )
    parser.add_argument(*option("registered-model"), dest="registered_model", default="mnist")
    args = console.add_verbosity(parser).parse_args(argv)
    if args.model_version:
        try:
            args.model_version = positive_int(args.model_version)
        except argparse.ArgumentTypeError as error:
            parser.error(f"argument --model-version: {error}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import mlflow
    import pandas as pd

    from pipeline.tracking import promotion, tags

    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="promote"):
        tags.log_params({"registered_model": args.registered_model, "model_version": args.model_version})
        try:
            repaired = promotion.reconcile(client, args.registered_model)
            if repaired:
                mlflow.set_tag("repaired", repaired)
                print(f"promote: repaired: {repaired}")
            found = promotion.candidates(client, args.registered_model)
            decision = promotion.decide(found, args.model_version or None, args.registered_model)
        except promotion.PromotionError as error:
            mlflow.set_tag("decision", "failed")
            sys.exit(f"promote: {error}")
        promotion.apply(client, args.registered_model, decision)
        mlflow.set_tags(
            {
                "decision": "promoted" if decision.promote else "kept",
                "chosen_by": "hand" if args.model_version else "validation accuracy",
                "promoted_version": decision.promote.version if decision.promote else "",
                "previous_version": decision.current.version if decision.current else "",
                "reason": decision.reason,
            }
        )
        table = pd.DataFrame([vars(candidate) for candidate in found])
        table["compared"] = table["version"].isin([candidate.version for candidate in decision.compared])
        mlflow.log_table(table, "promotion/candidates.json")
        mlflow.log_text(table.to_csv(index=False), "promotion/candidates.csv")
    print(f"promote: {decision.reason}")


if __name__ == "__main__":
    main()
