"""Read the digit in image files with a registered model.

    python -m pipeline.predict digit.png photo.jpg
    python -m pipeline.predict scans/*.png --json
    python -m pipeline.predict digit.png --model models:/mnist/3 --show seen.png
    python -m pipeline.predict house-number.jpg --number

Each image (any format Pillow reads) goes to the model as the served model's
base64 payload does, so the answers are the server's (`pipeline.serving.reading`). One
line per image, or with `--json` a JSON array on stdout, one object per image:
`file`, `digit` (null when rejected), `confidence`, `probabilities` (ten),
`rejected` and `reason`. An image is rejected when it cannot hold a digit (no
ink, a texture, scattered marks), when the model calls it "not a digit", or
when its calibrated confidence is below `--threshold`. With `--number` the
image holds a whole number: each object also has `number` (the digits as a
string) and `digits` (each with `digit`, `confidence` and `box` = [x, y, width,
height] in the image's pixels, left to right); `digit` and `probabilities` are
null, `confidence` is the least confident digit's, and the number is rejected
if any digit is. A file that cannot be read gets a one-line error naming it on
stderr; the others are still read, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import console
from pipeline.arguments import option, probability
from pipeline.serving.reading import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    import mlflow


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument(
        "--model",
        default="models:/mnist/Production",
        help="models:/name/stage, models:/name@alias, models:/name/N or runs:/id/model "
        "(default models:/mnist/Production)",
    )
    parser.add_argument(
        "--threshold",
        type=probability,
        default=DEFAULT_THRESHOLD,
        help=f"reject answers less confident than this (default {DEFAULT_THRESHOLD})",
    )
    parser.add_argument("--number", action="store_true", help="each image holds a whole number: read every digit")
    parser.add_argument("--json", action="store_true", help="a JSON array on stdout instead of lines")
    parser.add_argument(
        *option("show"),
        metavar="PNG",
        default="",
        help="also write the 28x28 images the model saw, side by side, to this PNG",
    )
    return console.add_verbosity(parser).parse_args(argv)


def line(result: dict) -> str:
    if result["rejected"]:
        return f"{result['file']}: rejected ({result['reason']})"
    if "number" in result:
        return f"{result['file']}: {result['number']} (least sure digit {result['confidence']:.1%})"
    return f"{result['file']}: {result['digit']} ({result['confidence']:.1%})"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import base64

    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from pipeline.serving import images

    mode = "number" if args.number else "digit"
    failed, readable = False, {}  # readable: file -> its bytes
    for file in args.images:
        try:
            data = Path(file).read_bytes()
            images.read(data)
            readable[file] = data
        except (images.ImageError, OSError) as error:
            print(f"predict: {file}: {error}", file=sys.stderr)
            failed = True
    results = []
    if readable:
        try:
            model = mlflow.pyfunc.load_model(args.model)
        except (MlflowException, OSError) as error:
            sys.exit(f"predict: cannot load the model {args.model}: {error}")
        # The same call, and so the same answers, as the served model's base64 payload.
        # One file per call, so every call is within the served model's limits per request.
        for file, data in readable.items():
            frame = pd.DataFrame({"image": [base64.b64encode(data).decode()]})
            try:
                (answer,) = model.predict(frame, params={"mode": mode, "threshold": args.threshold})
            except MlflowException as error:
                print(f"predict: {file}: {error.message}", file=sys.stderr)
                failed = True
                continue
            results.append({"file": file, **answer})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(line(result))
    if args.show and results:
        show(model, readable, mode, args.threshold, args.show)
    sys.exit(1 if failed else 0)


def show(model: mlflow.pyfunc.PyFuncModel, readable: dict[str, bytes], mode: str, threshold: float, path: str) -> None:
    """The 28x28 inputs the answers were read from, each captioned with its digit and the file's name
    (none for a number the sequence reader read whole)."""
    from pipeline.analysis import figures
    from pipeline.serving import images, reading

    inputs, captions = [], []
    pictures = [images.read(data) for data in readable.values()]
    recognizer = model.unwrap_python_model()
    read = reading.readings(
        pictures,
        [mode] * len(pictures),
        recognizer.probabilities,
        threshold,
        recognizer.candidate_rows,
        recognizer.lines_of,
    )
    for file, (answer, seen) in zip(readable, read):
        for digit, said in zip(seen, answer.get("digits") or [answer]):
            inputs.append(digit.image)
            captions.append(f"{'?' if said['digit'] is None else said['digit']} {Path(file).name[-12:]}")
    if not inputs:
        return
    figure = figures.digit_grid(inputs, captions, columns=min(8, len(inputs)), title="what the model saw")
    figure.savefig(path, dpi=110)
    figures.plt.close(figure)


if __name__ == "__main__":
    main()
