"""Which training techniques pay for themselves on this machine: version 4 with one thing changed at a time.

    python benchmarks/ablation.py --seeds 3
    python benchmarks/ablation.py --seeds 3 --intra-op-threads 1 --only "version 4 as it is"

Each row is version 4's recipe with one setting (or its layer widths) changed, trained once per seed
through the same `pipeline.training.loop.fit` as every run, timed like `bench` (the
clock stops while the test set is measured at each epoch's end). Prints a
Markdown table for BENCHMARKS.md. Nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

from pipeline.training import versions

# label: (settings changed, layer widths changed)
VARIANTS = {
    "version 4 as it is": ({}, None),
    "float32 instead of mixed bfloat16": ({"precision": "float32"}, None),
    "1 step per call instead of 50": ({"steps_per_execution": 1}, None),
    "XLA (jit_compile)": ({"jit_compile": True}, None),
    "no label smoothing": ({"label_smoothing": 0.0}, None),
    "weights averaged (EMA, momentum 0.99)": ({"ema": 0.99}, None),
    "constant learning rate 0.001 (the seed's)": ({"schedule": "constant", "learning_rate": 0.001}, None),
    "batch normalization after each convolution": ({}, {"batch_norm": True}),
    "augmented (version 5's variations)": ({"augmentation": versions.get(5).recipe["augmentation"]}, None),
    "1 epoch instead of 2": ({"epochs": 1}, None),
    "3 epochs instead of 2": ({"epochs": 3}, None),
    "half the filters and units": ({}, {"filters1": 8, "filters2": 16, "filters3": 32, "units": 64}),
    "twice the filters and units": ({}, {"filters1": 32, "filters2": 64, "filters3": 128, "units": 256}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--target", type=float, default=0.9915)
    parser.add_argument("--intra-op-threads", type=int, default=0, help="0 = TensorFlow's default (one per core)")
    parser.add_argument("--only", action="append", choices=list(VARIANTS), help="run just this variant (repeatable)")
    args = parser.parse_args()

    import tensorflow as tf

    from pipeline.analysis import benchmarking
    from pipeline.analysis.machine import machine
    from pipeline.data import datasets
    from pipeline.training.settings import Settings
    from pipeline.training.splits import split

    if args.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    host = machine()
    splits = split(datasets.load(datasets.MNIST), validation=5000)
    print(f"{host['processor']}, {host['cores']} cores, {host['intra_op_threads']} intra-op threads")
    print(
        f"| version 4 with | parameters | median time to {args.target:.2%} | reached | validation accuracy "
        "| final test accuracy | seconds per epoch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label in args.only or VARIANTS:
        change, architecture = VARIANTS[label]
        results = [
            benchmarking.time_to_target(
                replace(Settings.for_version(4, seed=seed), **change),
                splits,
                args.target,
                label=label,
                architecture=architecture,
            )
            for seed in range(args.seeds)
        ]
        summary = benchmarking.summary(results)
        median = summary["median_seconds_to_target"]
        print(
            f"| {label} | {summary['parameters']:,} | {'never' if median is None else f'{median:.1f} s'} "
            f"| {summary['seeds_reached']} of {len(results)} | {summary['mean_val_accuracy']:.2%} "
            f"| {summary['mean_final_accuracy']:.2%} "
            f"| {statistics.mean(result.seconds_per_epoch for result in results):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
