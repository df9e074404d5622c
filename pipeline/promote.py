"""Entry point `promote`: put the best registered version of `mnist` in Production.

    mlflow run . -e promote --env-manager local
    mlflow run . -e promote -P model_version=4 --env-manager local

"Best" means the highest validation accuracy among versions validated on the
same images; see `pipeline.tracking.promotion` for the rules. The run logs the decision
(tags `decision`, `promoted_version`, `previous_version`, `reason`) and the table
of candidates it weighed.
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
        help="promote this registered version instead of the best (refused if worse)",
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
            found = promotion.candidates(client, args.registered_model)
            decision = promotion.decide(found, requested=args.model_version or None)
        except promotion.PromotionError as error:
            mlflow.set_tag("decision", "failed")
            sys.exit(f"promote: {error}")
        promotion.apply(client, args.registered_model, decision)
        mlflow.set_tags(
            {
                "decision": "promoted" if decision.promote else "kept",
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
