"""What a training loses when training data is composed beside it, and what is composed meanwhile, by priority.

    python -m benchmarks.background
    python -m benchmarks.background --steps 100 --rounds 1

Trains a classifier of version 6 (its recipe through `fit`, as `train` trains
it, on MNIST's digits alone: three epochs of `--steps` batches of 128) alone,
then beside one process composing the sequence reader's lines (`numbers.lines_from`,
as `train` composes them) at niceness 0, the training's own priority, and at
19, the lowest, which `pipeline.tracking.run` gives the processes that make
training data beside a training. Prints, per condition, the median seconds of
the epochs after the first over the rounds, and how many lines were composed
while the network trained.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from pipeline.data import datasets, numbers
from pipeline.training import sequence_reader
from pipeline.training.loop import fit
from pipeline.training.settings import Settings
from pipeline.training.splits import split

BATCH = 128  # version 6's
VALIDATION = 500  # digits validated at each epoch's end, as `fit` does
CONDITIONS = ("alone", "niceness 0", "niceness 19")
LINES_PER_CALL = 50


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.background", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=190, help="training steps per epoch (default: 190)")
    parser.add_argument("--rounds", type=int, default=2, help="times each condition is timed, in turn (default: 2)")
    return parser.parse_args(argv)


def compose(niceness: int, ready: Event, stop: Event, made: Synchronized) -> None:
    """Compose lines as the sequence reader's training does, at `niceness`, counting them in `made`, from `ready`
    until `stop`."""
    os.nice(niceness)
    splits = split(datasets.load(datasets.MNIST), VALIDATION)
    sources = sequence_reader.line_sources(splits, seed=0)
    ready.set()
    seed = 0
    while not stop.is_set():
        numbers.lines_from(LINES_PER_CALL, seed, sources, sequence_reader.SHARES)
        seed += 1
        with made.get_lock():
            made.value += LINES_PER_CALL


def trained_beside(condition: str, steps: int, arrays: datasets.Arrays) -> tuple[list[float], int]:
    """Epoch seconds of the classifier trained in `condition`, and the lines composed meanwhile."""
    subset = BATCH * steps + VALIDATION
    settings = Settings.for_version(
        6, epochs=3, subset=subset, validation=VALIDATION, members=1, negatives=0.0, written=0.0
    )
    spawn = multiprocessing.get_context("spawn")
    ready, stop, made = spawn.Event(), spawn.Event(), spawn.Value("i", 0)
    composer = None
    if condition != "alone":
        composer = spawn.Process(target=compose, args=(int(condition.split()[-1]), ready, stop, made), daemon=True)
        composer.start()
        ready.wait()  # its imports and sources are not the training's cost
    try:
        _, history = fit(settings, split(arrays, VALIDATION, subset), verbose=0)
    finally:
        stop.set()
        if composer:
            composer.join()
    return history["epoch_seconds"], made.value


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    arrays = datasets.load(datasets.MNIST)
    epochs = {condition: [] for condition in CONDITIONS}
    lines = {condition: [] for condition in CONDITIONS}
    for _ in range(args.rounds):
        for condition in CONDITIONS:
            seconds, made = trained_beside(condition, args.steps, arrays)
            epochs[condition] += seconds[1:]
            lines[condition].append(made / sum(seconds))
    print(f"| {args.steps} steps of 128 digits an epoch | epoch, seconds | lines composed meanwhile, per second |")
    print("|---|---:|---:|")
    for condition in CONDITIONS:
        epoch, composed = statistics.median(epochs[condition]), statistics.median(lines[condition])
        print(f"| {condition} | {epoch:.1f} | {composed:.0f} |")


if __name__ == "__main__":
    main()
