"""`benchmarks/training_data.py` runs briefly; its times per item are for BENCHMARKS.md."""

import re

from benchmarks import training_data


def test_the_training_data_benchmark_times_each_maker_and_fingerprints_what_it_made(mnist, fashion, capsys):
    training_data.main(["--count", "16", "--repeats", "2"])
    first = capsys.readouterr().out.splitlines()
    assert first[0].split() == ["made", "items", "ms", "each", "fingerprint"] and len(first) == 6
    for line in first[1:]:
        assert re.fullmatch(r"[a-z -]+ +\d+ +\d+\.\d\d  [0-9a-f]{16}", line), line
    training_data.main(["--count", "16", "--repeats", "1"])
    again = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in again] == [line.split()[-1] for line in first]  # the same seeds, the same data
