"""How long version 6 takes to make what it trains on besides MNIST's digits, and a fingerprint of what it made.

    python -m benchmarks.training_data   # in each of two checkouts: the same data, or not, and how fast

Makes, in this process, with fixed seeds: digits drawn in pen strokes and
printed in typefaces (`pipeline.data.strokes`, `.typefaces`), non-digits
(`pipeline.data.negatives`), numbers composed as the sequence reader sees them
(`pipeline.data.numbers.lines`) and the labelled pieces cut from them for the
piece network (`.pieces`). Prints for each the time per item, the fastest of
`--repeats`, and the SHA-256 of what was made: two checkouts that print the same
fingerprints make the same training data, so the same seed trains the same
networks.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

import numpy as np

from pipeline.data import datasets, negatives, numbers, strokes, typefaces
from pipeline.training import pieces
from pipeline.training.splits import CLOTHING_FOR_TRAINING, split


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=600, help="digits, non-digits and numbers made (default: 600)")
    parser.add_argument("--repeats", type=int, default=3, help="times each is made, the fastest kept (default: 3)")
    return parser.parse_args(argv)


def fingerprint(made: tuple[np.ndarray, ...] | np.ndarray) -> str:
    arrays = made if isinstance(made, tuple) else (made,)
    return hashlib.sha256(b"".join(np.ascontiguousarray(array).tobytes() for array in arrays)).hexdigest()[:16]


def timed(make: Callable[[], tuple[np.ndarray, ...] | np.ndarray], repeats: int) -> tuple[float, str]:
    """The fastest of `repeats` makings in seconds, and the fingerprint of what was made (the same every time)."""
    seconds, prints = [], set()
    for _ in range(repeats):
        started = time.perf_counter()
        made = make()
        seconds.append(time.perf_counter() - started)
        prints.add(fingerprint(made))
    if len(prints) > 1:
        raise SystemExit(f"the same seed made different data: {sorted(prints)}")
    return min(seconds), prints.pop()


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    splits = split(datasets.load(datasets.MNIST), 5000)
    clothing = datasets.load(datasets.FASHION_MNIST).train_images[:CLOTHING_FOR_TRAINING]
    drawn, printed = strokes.sample(args.count, 5), typefaces.sample(args.count // 3, 5)
    sources = [(splits.train_images, splits.train_labels), drawn, printed]
    numbers_made = max(1, args.count // 8)  # a number has 2 to 8 digits and 37 candidate pieces on average
    makers = {
        "digits drawn in pen strokes": (args.count, lambda: strokes.sample(args.count, 5)),
        "digits printed in typefaces": (args.count // 3, lambda: typefaces.sample(args.count // 3, 5)),
        "non-digits": (args.count, lambda: negatives.sample(args.count, 5, clothing)),
        "numbers as the reader sees them": (
            args.count,
            lambda: numbers.lines_from(args.count, 5, sources, pieces.SHARES),
        ),
        "numbers cut into pieces": (numbers_made, lambda: numbers.pieces(numbers_made, 5, sources, pieces.SHARES)),
    }
    print(f"{'made':<34} {'items':>6} {'ms each':>8}  fingerprint")
    for name, (count, make) in makers.items():
        seconds, made = timed(make, args.repeats)
        print(f"{name:<34} {count:>6} {1000 * seconds / count:>8.2f}  {made}")


if __name__ == "__main__":
    main()
