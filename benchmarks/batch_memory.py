"""How much memory a served model keeps for the batch sizes its networks have run on.

    python -m benchmarks.batch_memory --model models:/mnist/Production --sizes 199

Loads the model in this process and calls its classifiers and piece network on
one batch of random images of every size from 1 to `--sizes`: first as the
served model calls them (compiled for TensorFlow Lite as one network, `judges`,
which keeps the memory of its largest batch, at most
`pipeline.serving.model.LITE_BATCH` images), then each Keras network in
TensorFlow (`predict_on_batch`), which keeps some for every shape. Prints the
process's resident memory before and after each.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from pipeline.analysis import scoring_server


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/mnist/Production", help="a model URI (default: %(default)s)")
    parser.add_argument("--sizes", type=int, default=199, help="batch sizes 1 to this (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def megabytes() -> str:
    return f"{scoring_server.resident_bytes(os.getpid()) / 2**20:,.0f} MB"


def main(argv: list[str] | None = None) -> None:
    import mlflow

    from pipeline.serving import model

    args = parse(argv)
    recognizer = mlflow.pyfunc.load_model(args.model).unwrap_python_model()
    networks = [*recognizer.networks, *([recognizer.pieces] if recognizer.pieces is not None else [])]
    rng = np.random.default_rng(args.seed)
    batches = [rng.random((size, 28, 28), dtype=np.float32) for size in range(1, args.sizes + 1)]
    print(f"`{args.model}`: {len(networks)} networks, batches of 1 to {args.sizes} images")
    print(f"loaded: {megabytes()}")
    served = recognizer.judges if recognizer.pieces is not None else recognizer.classifiers
    for batch in batches:
        model.probabilities_of(served, batch)
    print(f"called as served: {megabytes()}")
    for batch in batches:
        for network in networks:
            network.predict_on_batch(batch)
    print(f"then each network in TensorFlow on every batch size: {megabytes()}")


if __name__ == "__main__":
    main()
