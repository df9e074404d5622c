"""Networks built in a precision: Keras takes a layer's dtype policy from a process-wide setting when the
layer is built, so it is set for the build alone and put back at once, and nothing built after inherits it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def built(build: Callable[..., keras.Model], precision: str, **arguments: object) -> keras.Model:
    """`build(**arguments)` with its layers in `precision` ("float32", "mixed_bfloat16")."""
    import keras

    keras.mixed_precision.set_global_policy(precision)
    try:
        return build(**arguments)
    finally:
        keras.mixed_precision.set_global_policy("float32")
