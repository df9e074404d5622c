"""Score a served model on a folder of image files whose answers are known.

The folder holds up to three sets, each in subfolders named by what they hold:

    digits/<digit>/*        one digit per image: it must be read, and accepted
    numbers/<number>/*      a whole number per image: all of it read exactly
    not-digits/<kind>/*     anything else (letters, clothing, blank pages): it must be rejected

A folder may instead hold categories, each a subfolder with sets of its own
(`chalk/digits/<digit>/*`, `touching numbers/numbers/<number>/*`, ...): the
figures are then given for each category and for all of them together.

`benchmarks/image_sets.py` writes such folders; a folder of people's own scans
in the same layout works the same way. The images go through the model exactly
as `/invocations` receives them (base64 files), in the mode each set needs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

SETS = ("digits", "numbers", "not-digits")
BATCH = 64  # files per call to the model


class FolderError(ValueError):
    """A folder that is not an image set."""


@dataclass(frozen=True)
class Item:
    path: Path
    set: str  # one of SETS
    expected: str  # the digit, the number, or the kind of non-digit
    category: str = ""  # the subfolder the sets are in, or "" for sets at the top


def items(folder: str | Path) -> list[Item]:
    """Every file of the folder's sets (and its categories' sets), with what it holds; FolderError if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{folder} is not a folder")
    categories = [""] + sorted(path.name for path in folder.iterdir() if path.is_dir() and path.name not in SETS)
    found = [
        Item(path, name, path.parent.name, category)
        for category in categories
        for name in SETS
        if (folder / category / name).is_dir()
        for path in sorted((folder / category / name).glob("*/*"))
        if path.is_file()
    ]
    if not found:
        raise FolderError(
            f"{folder} has no image files in {', '.join(f'{name}/<label>/' for name in SETS)} nor in categories"
        )
    bad = [str(item.path) for item in found if item.set != "not-digits" and not item.expected.isdigit()]
    if bad:
        raise FolderError(f"digits and numbers must be in folders named by their digits: {bad[0]}")
    return found


def answers(model: mlflow.pyfunc.PyFuncModel, found: list[Item], threshold: float) -> pd.DataFrame:
    """One row per file: what the model answered and whether that is right."""
    rows = []
    for start in range(0, len(found), BATCH):
        batch = found[start : start + BATCH]
        frame = pd.DataFrame(
            {
                "image": [base64.b64encode(item.path.read_bytes()).decode() for item in batch],
                "mode": ["number" if item.set == "numbers" else "digit" for item in batch],
            }
        )
        for item, answer in zip(batch, model.predict(frame, params={"threshold": threshold})):
            said = answer["number"] if item.set == "numbers" else answer["digit"]
            best = answer["probabilities"] and int(np.argmax(answer["probabilities"]))
            rows.append(
                {
                    "file": str(item.path),
                    "category": item.category,
                    "set": item.set,
                    "expected": item.expected,
                    "answer": None if said is None else str(said),
                    "best_guess": None if best is None else str(best),
                    "confidence": answer["confidence"],
                    "rejected": answer["rejected"],
                    "reason": answer["reason"],
                }
            )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> dict:
    """The figures per set: read (accepted and right), accepted, rejected; per kind of non-digit too;
    and, where the files are in categories, the same for each category, its name first."""
    figures = figures_of(table)
    for category, rows in table[table["category"] != ""].groupby("category"):
        figures |= {f"{category.replace(' ', '_')}_{key}": value for key, value in figures_of(rows).items()}
    return figures


def figures_of(table: pd.DataFrame) -> dict:
    figures = {}
    for name, rows in table.groupby("set"):
        right = rows["answer"] == rows["expected"]
        key = name.replace("-", "_")
        figures[f"{key}_count"] = len(rows)
        if name == "not-digits":
            figures["not_digits_rejected"] = float(rows["rejected"].mean())
            for kind, group in rows.groupby("expected"):
                figures[f"not_digits_rejected_{kind.replace(' ', '_')}"] = float(group["rejected"].mean())
        else:
            figures[f"{key}_read"] = float(right.mean())
            figures[f"{key}_accepted"] = float((~rows["rejected"]).mean())
            if name == "digits":
                figures["digits_best_guess_right"] = float((rows["best_guess"] == rows["expected"]).mean())
    return figures
