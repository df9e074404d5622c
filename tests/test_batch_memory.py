"""`benchmarks/batch_memory.py` runs on a logged model, briefly; its memory figures are for BENCHMARKS.md."""

from benchmarks import batch_memory


def test_the_batch_memory_benchmark_calls_the_networks_both_ways(model_path, capsys):
    batch_memory.main([f"--model={model_path}", "--sizes", "12"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("batches of 1 to 12 images") and lines[1].startswith("loaded: ")
    assert lines[2].startswith("called as served: ")
    assert lines[3].startswith("then each network in TensorFlow on every batch size: ") and lines[3].endswith(" MB")
