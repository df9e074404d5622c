"""`benchmarks/training_data.py` and `benchmarks/precision.py` run briefly; their times are for BENCHMARKS.md."""

import re

from benchmarks import precision, training_data
from pipeline.training import processor


def test_the_training_data_benchmark_times_each_maker_and_fingerprints_what_it_made(mnist, fashion, capsys):
    training_data.main(["--count", "16", "--repeats", "2"])
    first = capsys.readouterr().out.splitlines()
    assert first[0].split() == ["made", "items", "ms", "each", "fingerprint"] and len(first) == 6
    for line in first[1:]:
        assert re.fullmatch(r"[a-z -]+ +\d+ +\d+\.\d\d  [0-9a-f]{16}", line), line
    training_data.main(["--count", "16", "--repeats", "1"])
    again = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in again] == [line.split()[-1] for line in first]  # the same seeds, the same data


def test_the_precision_benchmark_times_both_networks_in_both_precisions(mnist, capsys):
    precision.main(["--steps", "3", "--rounds", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("bfloat16", "the", "|"))]
    assert lines[1] == f"the recipes train in: {processor.fast_precision(processor.flags())}"
    assert lines[2:4] == ["| network | seconds per step: float32 | mixed bfloat16 |", "|---|---:|---:|"]
    for line, network in zip(lines[4:], ("classifier", "reader"), strict=True):
        assert re.fullmatch(rf"\| {network} \| \d+\.\d{{3}} \| \d+\.\d{{3}} \|", line), line
