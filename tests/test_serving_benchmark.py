"""`benchmarks/serving.py` runs end to end against a real `mlflow models serve`, briefly: its tables, and the
server refusing each request past a limit and answering the next. Its speeds are for BENCHMARKS.md, not asserted."""

from benchmarks import serving


def test_the_serving_benchmark_measures_every_payload_and_limit(model_path, capsys):
    serving.main([f"--model={model_path}", "--code", "checkout", "--workers", "1", "--seconds", "1", "--requests", "8"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| checkout | 1 |")]
    loads, refusals = rows[:6], rows[6:]
    assert [row[2] for row in loads] == [payload.name for payload in serving.payloads(0, count=1)]
    assert all(float(row[3].replace(",", "")) > 0 and row[7] == "0" for row in loads)  # answered, no errors
    assert len(refusals) == 3
    for row, limit in zip(refusals, ["limit of 256 per request", "limit of 32,000,000", "limit of 50,000,000"]):
        assert row[3] == "400" and limit in row[5] and row[6] == "200 |"
