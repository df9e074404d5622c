"""How fast version 6's networks train here in float32 and in mixed bfloat16: the recipes' choice of precision.

    python -m benchmarks.precision
    python -m benchmarks.precision --steps 20 --rounds 1

Times training steps of version 6's classifier (its recipe through `fit`, as
`train` trains it, on MNIST's digits alone: the second of two epochs of
`--steps` batches of 128, validation included) and of its sequence reader
(batches of 64 random lines of 128 columns, after a first call that builds and
traces the step) in each precision, the two alternating for `--rounds`. Prints
the processor's bfloat16 flags, the precision the recipes choose for it
(`pipeline.training.processor`) and the median seconds per step of each
network in each precision.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np

from pipeline.data import datasets
from pipeline.serving import sequence
from pipeline.training import policy, processor, sequence_reader
from pipeline.training.loop import fit
from pipeline.training.settings import PRECISIONS, Settings
from pipeline.training.splits import split

BATCH = 128  # version 6's
VALIDATION = 500  # digits validated at each epoch's end, as `fit` does


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="training steps timed per network (default: 100)")
    parser.add_argument("--rounds", type=int, default=3, help="times each precision is timed, in turn (default: 3)")
    return parser.parse_args(argv)


def classifier_step(precision: str, steps: int, arrays: datasets.Arrays) -> float:
    """Seconds per step of the second of two epochs of `steps` steps, trained as `train` trains (`fit`)."""
    subset = BATCH * steps + VALIDATION
    settings = Settings.for_version(
        6, epochs=2, subset=subset, validation=VALIDATION, members=1, negatives=0.0, written=0.0, precision=precision
    )
    _, history = fit(settings, split(arrays, VALIDATION, subset), verbose=0)
    return history["epoch_seconds"][1] / steps


def reader_step(precision: str, steps: int) -> float:
    rng = np.random.default_rng(0)
    lines = rng.random((64 * (steps + 1), sequence.HEIGHT, 128)).astype(np.float32)
    packed = sequence_reader.targets(rng.integers(0, 10, (len(lines), sequence.MAX_DIGITS)), np.full(len(lines), 5))
    network = policy.built(sequence_reader.build, precision)
    network.compile(keras.optimizers.Adam(1e-3), sequence_reader.ctc_loss)
    network.fit(lines[:64], packed[:64], batch_size=64, epochs=1, verbose=0)  # built and traced
    started = time.perf_counter()
    network.fit(lines[64:], packed[64:], batch_size=64, epochs=1, verbose=0, shuffle=False)
    return (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    flags = processor.flags()
    print(f"bfloat16 instructions: {', '.join(sorted(flags & processor.NATIVE_BFLOAT16)) or 'none'}")
    print(f"the recipes train in: {processor.fast_precision(flags)}")
    arrays = datasets.load(datasets.MNIST)
    seconds = {(network, precision): [] for network in ("classifier", "reader") for precision in PRECISIONS}
    for _ in range(args.rounds):
        for precision in PRECISIONS:
            seconds["classifier", precision].append(classifier_step(precision, args.steps, arrays))
            seconds["reader", precision].append(reader_step(precision, args.steps))
    print("| network | seconds per step: float32 | mixed bfloat16 |")
    print("|---|---:|---:|")
    for network in ("classifier", "reader"):
        medians = [statistics.median(seconds[network, precision]) for precision in PRECISIONS]
        print(f"| {network} | {medians[0]:.3f} | {medians[1]:.3f} |")


if __name__ == "__main__":
    main()
