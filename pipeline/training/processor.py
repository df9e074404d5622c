"""What this machine's processor computes natively, for the recipes' choice of precision.

bfloat16 halves the bytes a network's activations take, and where the CPU has
bfloat16 instructions (AVX512_BF16, AMX on x86; BF16 on ARM) oneDNN computes
in it directly: on a 2-core Intel Xeon with AMX an epoch of version 4 took 28 %
less time than in float32, a step of the sequence reader 30 % less. Where it
has none, every bfloat16 value is converted on the way in and out: on a 2-core
Intel Xeon without them a step of version 6's classifier took 1.6 times as long
as in float32 (BENCHMARKS.md, `benchmarks/precision.py`). So the recipes compute
in bfloat16 only where the processor does.
"""

from __future__ import annotations

from pathlib import Path

NATIVE_BFLOAT16 = {"avx512_bf16", "amx_bf16", "bf16"}  # /proc/cpuinfo's names: x86 (flags), ARM (Features)


def flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The processor's feature flags as Linux lists them; none elsewhere, or where they cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, values = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(values.split())
    return set()


def fast_precision(features: set[str]) -> str:
    """The Keras dtype policy that trains fastest on a processor with these `features`."""
    return "mixed_bfloat16" if features & NATIVE_BFLOAT16 else "float32"
