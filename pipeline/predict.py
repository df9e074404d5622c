"""Read the digit in image files with a registered model.

    python -m pipeline.predict digit.png photo.jpg
    python -m pipeline.predict scans/*.png --json
    python -m pipeline.predict digit.png --model models:/mnist/3 --show seen.png
    python -m pipeline.predict house-number.jpg --number

Each image (any format Pillow reads) is turned into the MNIST format
(`pipeline.images`) and classified. One line per image, or with `--json` a JSON
array on stdout, one object per image: `file`, `digit` (null when rejected),
`confidence`, `probabilities` (ten), `rejected` and `reason`. An image is
rejected when it cannot hold a digit (no ink, a texture, scattered marks) or
when the model's confidence is below `--threshold`. With `--number` the image
holds a whole number: each object also has `number` (the digits as a string)
and `digits` (each with `digit`, `confidence` and `box` = [x, y, width, height]
in the image's pixels, left to right); `digit` and `probabilities` are null,
`confidence` is the least confident digit's, and the number is rejected if any
digit is. A file that cannot be read
gets a one-line error naming it on stderr; the others are still read, and the
exit status is 1.
"""

import argparse
import json
import sys
from pathlib import Path

from pipeline.arguments import option, probability

DEFAULT_THRESHOLD = 0.5


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--model", default="models:/mnist/Production",
                        help="models:/name/stage, models:/name@alias, models:/name/N or runs:/id/model "
                             "(default models:/mnist/Production)")
    parser.add_argument("--threshold", type=probability, default=DEFAULT_THRESHOLD,
                        help=f"reject answers less confident than this (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--number", action="store_true", help="each image holds a whole number: read every digit")
    parser.add_argument("--json", action="store_true", help="a JSON array on stdout instead of lines")
    parser.add_argument(*option("show"), metavar="PNG", default="",
                        help="also write the 28x28 images the model saw, side by side, to this PNG")
    return parser.parse_args(argv)


def answer(file, probabilities, threshold):
    """The JSON object for an image holding one digit."""
    confidence = float(probabilities.max())
    reason = f"confidence {confidence:.0%} is below the threshold {threshold:.0%}" if confidence < threshold else None
    return {
        "file": file,
        "digit": None if reason else int(probabilities.argmax()),
        "confidence": confidence,
        "probabilities": [float(p) for p in probabilities],
        "rejected": reason is not None,
        "reason": reason,
    }


def number_answer(file, probabilities, digits, threshold):
    """The JSON object for an image holding a whole number: one row of `probabilities` per found digit."""
    read = [
        {"digit": int(row.argmax()), "confidence": float(row.max()), "box": list(digit.box)}
        for row, digit in zip(probabilities, digits)
    ]
    unsure = [number for number, digit in enumerate(read) if digit["confidence"] < threshold]
    reason = None
    if unsure:
        first = read[unsure[0]]
        reason = (f"digit {unsure[0] + 1} of {len(read)}: confidence {first['confidence']:.0%} "
                  f"is below the threshold {threshold:.0%}")
    return {
        "file": file, "digit": None, "confidence": min(digit["confidence"] for digit in read),
        "probabilities": None, "rejected": reason is not None, "reason": reason,
        "number": None if reason else "".join(str(digit["digit"]) for digit in read), "digits": read,
    }


def refusal(file, reason, number):
    """The JSON object for an image that was refused before the model saw it."""
    result = {"file": file, "digit": None, "confidence": None, "probabilities": None, "rejected": True,
              "reason": reason}
    return {**result, "number": None, "digits": []} if number else result


def line(result):
    if result["rejected"]:
        return f"{result['file']}: rejected ({result['reason']})"
    if "number" in result:
        return f"{result['file']}: {result['number']} (least sure digit {result['confidence']:.1%})"
    return f"{result['file']}: {result['digit']} ({result['confidence']:.1%})"


def main(argv=None):
    args = parse(argv)
    import mlflow
    import numpy as np
    from mlflow.exceptions import MlflowException

    from pipeline import images

    failed, refused, prepared = False, {}, {}  # prepared: file -> the Digits found in it
    for file in args.images:
        try:
            gray = images.read(file)
            prepared[file] = images.digits_in(gray) if args.number else [images.to_mnist(gray)]
        except images.NotADigit as error:
            refused[file] = str(error)
        except (images.ImageError, OSError) as error:
            print(f"predict: {file}: {error}", file=sys.stderr)
            failed = True
    probabilities = {}
    if prepared:
        try:
            model = mlflow.pyfunc.load_model(args.model)
        except (MlflowException, OSError) as error:
            sys.exit(f"predict: cannot load the model {args.model}: {error}")
        rows = np.asarray(model.predict(np.stack([digit.image for found in prepared.values() for digit in found])))
        start = 0
        for file, found in prepared.items():
            probabilities[file], start = rows[start:start + len(found)], start + len(found)
    results = []
    for file in args.images:
        if file in refused:
            results.append(refusal(file, refused[file], args.number))
        elif file in prepared and args.number:
            results.append(number_answer(file, probabilities[file], prepared[file], args.threshold))
        elif file in prepared:
            results.append(answer(file, probabilities[file][0], args.threshold))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(line(result))
    if args.show and prepared:
        show(prepared, results, args.show)
    sys.exit(1 if failed else 0)


def show(prepared, results, path):
    """The 28x28 inputs, each captioned with the answer and the file's name."""
    from pipeline import figures

    answers = {result["file"]: result for result in results}
    inputs, captions = [], []
    for file, found in prepared.items():
        read = answers[file].get("digits") or [answers[file]]
        for digit, result in zip(found, read):
            inputs.append(digit.image)
            captions.append(f"{'?' if result['digit'] is None else result['digit']} {Path(file).name[-12:]}")
    figure = figures.digit_grid(inputs, captions, columns=min(8, len(inputs)), title="what the model saw")
    figure.savefig(path, dpi=110)
    figures.plt.close(figure)


if __name__ == "__main__":
    main()
