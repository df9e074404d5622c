"""`benchmarks/serving.py` runs end to end against a real `mlflow models serve`, briefly: its tables, the
server refusing each request past a limit and answering the next, and a short soak. Its speeds are for
BENCHMARKS.md, not asserted."""

from benchmarks import serving
from pipeline.analysis import reverse_proxy


def test_the_serving_benchmark_measures_every_payload_and_limit(model_path, capsys):
    serving.main(
        [f"--model={model_path}", "--code", "checkout", "--workers", "1", "--seconds", "1", "--requests", "8"]
        + ["--soak", "12", "--soak-payload", "png"]
    )
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split(" | ") for line in lines if line.startswith("| checkout | 1 |")]
    loads, refusals = rows[: len(serving.PAYLOADS)], rows[len(serving.PAYLOADS) :]
    payloads = serving.payloads(0, count=1)
    assert [row[2] for row in loads] == [payload.name for payload in payloads]
    assert [payload.key for payload in payloads] == list(serving.PAYLOADS)  # each one --soak-payload can choose
    assert all(float(row[3].replace(",", "")) > 0 and row[7] == "0" for row in loads)  # answered, no errors
    limits = ["limit of 256 per request", "limit of 32,000,000", "limit of 50,000,000", "limit of 256 per request"]
    # Through nginx too, where it is installed: there the body past the bytes limit is refused by nginx, 413.
    ways = ["direct", "nginx"] if reverse_proxy.nginx() else ["direct"]
    assert [row[2] for row in refusals] == [way for way in ways for _ in limits]
    for row, limit in zip(refusals, limits * 2):
        status = "413" if row[2] == "nginx" and "32,000,000" in limit else "400"
        assert row[5] == status and limit in row[7] and row[8] == "200" and row[9].endswith(" MB |")
    (soak,) = [line for line in lines if line.startswith("Soak")]
    assert soak.startswith("Soak, checkout code: 12 requests of one 28x28 PNG in ") and ", 0 errors," in soak
    assert len(soak.split("after each tenth: ")[1].split(", ")) == 10
