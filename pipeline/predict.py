"""Read the digit in image files with a registered model.

    python -m pipeline.predict digit.png photo.jpg
    python -m pipeline.predict scans/*.png --json
    python -m pipeline.predict digit.png --model models:/mnist/3 --show seen.png

Each image (any format Pillow reads) is turned into the MNIST format
(`pipeline.images`) and classified. One line per image, or with `--json` a JSON
array on stdout, one object per image: `file`, `digit` (null when rejected),
`confidence`, `probabilities` (ten), `rejected` and `reason`. An image is
rejected when it cannot hold a digit (no ink, a texture, scattered marks) or
when the model's confidence is below `--threshold`. A file that cannot be read
gets a one-line error naming it on stderr; the others are still read, and the
exit status is 1.
"""

import argparse
import json
import sys

from pipeline.arguments import option

DEFAULT_THRESHOLD = 0.5


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--model", default="models:/mnist/Production",
                        help="models:/name/stage, models:/name@alias, models:/name/N or runs:/id/model "
                             "(default models:/mnist/Production)")
    parser.add_argument("--threshold", type=probability, default=DEFAULT_THRESHOLD,
                        help=f"reject answers less confident than this (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--json", action="store_true", help="a JSON array on stdout instead of lines")
    parser.add_argument(*option("show"), metavar="PNG", default="",
                        help="also write the 28x28 images the model saw, side by side, to this PNG")
    return parser.parse_args(argv)


def probability(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def answer(file, probabilities, threshold, reason=None):
    """The JSON object for one image; `reason` set means it was refused before the model saw it."""
    if reason is None and float(probabilities.max()) < threshold:
        reason = f"confidence {float(probabilities.max()):.0%} is below the threshold {threshold:.0%}"
    return {
        "file": file,
        "digit": None if reason else int(probabilities.argmax()),
        "confidence": None if probabilities is None else float(probabilities.max()),
        "probabilities": None if probabilities is None else [float(p) for p in probabilities],
        "rejected": reason is not None,
        "reason": reason,
    }


def line(result):
    if result["rejected"]:
        return f"{result['file']}: rejected ({result['reason']})"
    return f"{result['file']}: {result['digit']} ({result['confidence']:.1%})"


def main(argv=None):
    args = parse(argv)
    import mlflow
    import numpy as np
    from mlflow.exceptions import MlflowException

    from pipeline import images

    failed, refused, prepared = False, {}, {}
    for file in args.images:
        try:
            prepared[file] = images.to_mnist(images.read(file)).image
        except images.NotADigit as error:
            refused[file] = str(error)
        except (images.ImageError, OSError) as error:
            print(f"predict: {file}: {error}", file=sys.stderr)
            failed = True
    if prepared:
        try:
            model = mlflow.pyfunc.load_model(args.model)
        except (MlflowException, OSError) as error:
            sys.exit(f"predict: cannot load the model {args.model}: {error}")
        probabilities = dict(zip(prepared, np.asarray(model.predict(np.stack(list(prepared.values()))))))
    results = [
        answer(file, probabilities[file], args.threshold) if file in prepared
        else answer(file, None, args.threshold, refused[file])
        for file in args.images if file in prepared or file in refused
    ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            print(line(result))
    if args.show and prepared:
        show(prepared, results, args.show)
    sys.exit(1 if failed else 0)


def show(prepared, results, path):
    from pipeline import figures

    answers = {result["file"]: result for result in results}
    captions = [f"{'?' if answers[file]['digit'] is None else answers[file]['digit']} {file[-14:]}"
                for file in prepared]
    figure = figures.digit_grid(list(prepared.values()), captions, columns=min(8, len(prepared)),
                                title="what the model saw")
    figure.savefig(path, dpi=110)
    figures.plt.close(figure)


if __name__ == "__main__":
    main()
