"""A comparison of the trained models in an experiment, as Markdown and as one self-contained HTML file.

Reads the runs with `mlflow.search_runs` into pandas: every finished run that
trained (or assembled) a model and measured it on the test set. The report has a
table of the models, the seed's published figures beside its three versions,
the validation curves of every run on shared axes, every run's confusion matrix
and the test digits that most models get wrong.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd

from pipeline.analysis import figures
from pipeline.analysis.figures import plt
from pipeline.training import versions

TABLE_COLUMNS = {
    "run": "run",
    "version": "version",
    "name": "name",
    "seed": "seed",
    "parameters": "parameters",
    "epochs": "epochs",
    "train_seconds": "training time (s)",
    "val_accuracy": "validation accuracy",
    "test_accuracy": "test accuracy",
    "test_errors": "test errors",
    "seed_test_accuracy": "seed's test accuracy",
    "seed_train_seconds": "seed's training time (s)",
}
HARDEST_SHOWN = 24


class ReportError(ValueError):
    """Nothing to report on, and why."""


@dataclass
class Report:
    table: pd.DataFrame  # one row per model, the columns of TABLE_COLUMNS
    figures: dict  # file name -> PNG bytes


def model_runs(experiment: str) -> pd.DataFrame:
    """The experiment's finished runs that measured a model on the test set, oldest first."""
    found = mlflow.search_runs(experiment_names=[experiment], filter_string="attributes.status = 'FINISHED'")
    if found.empty or "metrics.test_accuracy" not in found or "tags.version" not in found:
        raise ReportError(f"experiment {experiment!r} has no finished runs that trained a model")
    found = found[found["metrics.test_accuracy"].notna() & found["tags.version"].notna()]
    if found.empty:
        raise ReportError(f"experiment {experiment!r} has no finished runs that trained a model")
    return found.sort_values("start_time").reset_index(drop=True)


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it trained, its cost and its accuracy, the seed's figures beside its versions."""

    def column(name: str, kind: str = "metrics") -> pd.Series:
        key = f"{kind}.{name}"
        return runs[key] if key in runs else pd.Series([None] * len(runs), index=runs.index)

    rows = pd.DataFrame(
        {
            "run": column("mlflow.runName", "tags"),
            "version": column("version", "tags"),
            # `mlflow run` logs -P tta=true as typed; the module logs True.
            "name": column("version_name", "tags").where(
                column("tta", "params").astype(str).str.lower() != "true",
                column("version_name", "tags") + ", test-time shifts",
            ),
            "seed": column("seed", "params"),
            "parameters": pd.to_numeric(column("parameters", "params"), errors="coerce"),
            "epochs": pd.to_numeric(column("epochs", "params"), errors="coerce"),
            "train_seconds": column("train_seconds"),
            "val_accuracy": column("val_accuracy"),
            "test_accuracy": column("test_accuracy"),
            "test_errors": column("test_errors"),
        }
    )
    published = {str(number): version.published for number, version in versions.VERSIONS.items() if version.published}
    rows["seed_test_accuracy"] = [published[v].test_accuracy if v in published else None for v in rows["version"]]
    rows["seed_train_seconds"] = [published[v].train_seconds if v in published else None for v in rows["version"]]
    rows.index = runs["run_id"].str[:8]
    return rows


def validation_curves(client: mlflow.MlflowClient, runs: pd.DataFrame) -> plt.Figure:
    """Validation error per epoch of every run, on shared (logarithmic) axes."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for _, run in runs.iterrows():
        label = f"{run['tags.mlflow.runName']} ({run['run_id'][:8]})"
        history = client.get_metric_history(run["run_id"], "val_accuracy")
        if len(history) < 2:  # a run that averages several networks logs their epochs as member_<k>/...
            history = client.get_metric_history(run["run_id"], "member_1/val_accuracy")
            label += ", its first network"
        if len(history) < 2:
            continue
        steps = [point.step for point in history]
        errors = [max(1 - point.value, 1e-4) for point in history]
        axes.plot(steps, errors, marker=".", label=label)
    axes.set_yscale("log")
    percent = plt.FuncFormatter(lambda value, _: f"{value:.1%}")
    axes.yaxis.set_major_formatter(percent)
    axes.yaxis.set_minor_formatter(percent)
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation error (log scale)")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    axes.set_title("validation error per epoch")
    figure.tight_layout()
    return figure


def confusion_matrices(matrices: list[np.ndarray], titles: list[str]) -> plt.Figure:
    """Every run's test confusion matrix, errors only (the diagonal blanked), side by side."""
    columns = min(4, len(matrices))
    rows = math.ceil(len(matrices) / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    for axes in grid.flat[len(matrices) :]:
        axes.axis("off")
    for axes, matrix, title in zip(grid.flat, matrices, titles):
        errors = matrix.astype(float).copy()
        np.fill_diagonal(errors, np.nan)
        axes.imshow(errors, cmap="Reds", vmin=0)
        darkest = np.nanmax(errors) if np.isfinite(errors).any() else 0
        for (row, column), count in np.ndenumerate(matrix):
            if row != column and count:
                axes.text(
                    column,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if count > darkest / 2 else "black",
                )
        axes.set_xticks(range(matrix.shape[1]))
        axes.set_yticks(range(matrix.shape[0]))
        axes.tick_params(labelsize=6)
        axes.set_title(f"{title}: {int(np.nansum(errors))} errors", fontsize=8)
        axes.set_xlabel("predicted", fontsize=7)
        axes.set_ylabel("true", fontsize=7)
    figure.tight_layout()
    return figure


def hardest_digits(predictions: list[pd.DataFrame], test_images: np.ndarray) -> plt.Figure:
    """The test digits that the most runs misclassify, with how many did and what they said."""
    wrong = np.array([table["predicted"].to_numpy() != table["label"].to_numpy() for table in predictions])
    counts = wrong.sum(axis=0)
    hardest = [index for index in np.argsort(-counts, kind="stable")[:HARDEST_SHOWN] if counts[index]]
    labels, indices = predictions[0]["label"].to_numpy(), predictions[0]["index"].to_numpy()
    captions = []
    for row in hardest:
        said = pd.Series([table["predicted"].iat[row] for table in predictions]).value_counts().index[0]
        captions.append(f"#{indices[row]} {labels[row]}→{said}\n{counts[row]} of {len(predictions)} wrong")
    return figures.digit_grid(
        test_images[indices[hardest]],
        captions,
        columns=8,
        title="test digits most models get wrong: #index, true label→most common answer",
    )


def build(experiment: str, test_images: np.ndarray) -> Report:
    """Read the experiment's runs and draw the report's figures."""
    client = mlflow.MlflowClient()
    runs = model_runs(experiment)
    predictions, matrices = [], []
    for run_id in runs["run_id"]:
        predictions.append(read_csv(run_id, "evaluation/test_predictions.csv"))
        matrices.append(read_csv(run_id, "evaluation/confusion_matrix.csv", index_col=0).to_numpy())
    titles = [f"{name} ({run_id[:8]})" for name, run_id in zip(runs["tags.mlflow.runName"], runs["run_id"])]
    drawn = {
        "validation_curves.png": validation_curves(client, runs),
        "confusion_matrices.png": confusion_matrices(matrices, titles),
    }
    # Runs measured on different test images (a subset) have no digits in common to compare.
    if all(table["index"].equals(predictions[0]["index"]) for table in predictions):
        drawn["hardest_digits.png"] = hardest_digits(predictions, test_images)
    return Report(table(runs), {name: png(figure) for name, figure in drawn.items()})


def read_csv(run_id: str, artifact_path: str, **options: object) -> pd.DataFrame:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path)
    return pd.read_csv(local, **options)


def png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def formatted(rows: pd.DataFrame) -> pd.DataFrame:
    """The table as people read it: percentages, whole seconds, blanks for what does not apply."""
    shown = rows.copy()
    for name in ("val_accuracy", "test_accuracy", "seed_test_accuracy"):
        shown[name] = shown[name].map(lambda value: "" if pd.isna(value) else f"{value:.2%}")
    for name in ("parameters", "epochs", "test_errors", "train_seconds", "seed_train_seconds"):
        shown[name] = shown[name].map(lambda value: "" if pd.isna(value) else f"{value:,.0f}")
    return shown.rename(columns=TABLE_COLUMNS).fillna("")


def markdown(report: Report, experiment: str) -> str:
    shown = formatted(report.table)
    lines = [f"# Models in experiment `{experiment}`", "", dataframe_markdown(shown), ""]
    lines += [f"![{name}](figures/{name})\n" for name in report.figures]
    return "\n".join(lines)


def dataframe_markdown(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def html_document(report: Report, experiment: str) -> str:
    """One HTML file with the figures embedded, readable offline and attachable anywhere."""
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        f"</figure>"
        for name, data in report.figures.items()
    )
    title = html.escape(f"Models in experiment {experiment}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}img{max-width:100%}</style></head>"
        f"<body><h1>{title}</h1>{formatted(report.table).to_html(index=False)}{images}</body></html>"
    )
