"""The machine a figure was measured on: processor, cores, TensorFlow's threads and versions."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The processor and thread count the numbers were measured with."""
    import keras
    import tensorflow as tf

    return {
        "processor": cpu_name(),
        "cores": os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
