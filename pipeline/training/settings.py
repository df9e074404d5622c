"""What decides what a training run computes: a version's defaults, the recipe, and the overrides."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, replace

from pipeline.training import versions
from pipeline.training.augmentation import Augmentation

SCHEDULES = ("constant", "warmup_cosine")
PRECISIONS = ("float32", "mixed_bfloat16")


class SettingsError(ValueError):
    """Settings that cannot work: a validation split larger than the data, an unknown layer setting."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides what a training run computes."""

    version: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    # Networks trained and averaged into the served model. Member k (from 0) trains with seed seed * members + k:
    # a single member with `seed` itself, and runs with different seeds share no member.
    members: int = 1
    validation: int = 5000  # images held out from the end of the training set; 0 = none, train on all
    subset: int = 0  # use only the first N training and N test images; 0 = all
    # The recipe: what versions 1-3 leave at these defaults, versions 4 and 5 set.
    schedule: str = "constant"  # or "warmup_cosine": linear from a tenth of learning_rate up to it, cosine down to 0
    warmup: float = 0.0  # the fraction of all steps spent warming up
    label_smoothing: float = 0.0
    ema: float = 0.0  # momentum of an exponential moving average of the weights, used at the end; 0 = off
    augmentation: Augmentation = Augmentation()
    precision: str = "float32"  # or "mixed_bfloat16": bfloat16 compute, float32 weights
    steps_per_execution: int = 1  # training steps per call into TensorFlow
    jit_compile: bool = False  # compile the training step with XLA
    negatives: float = 0.0  # non-digits added per training digit, for versions with a "not a digit" class
    written: float = 0.0  # digits drawn in pen strokes or printed (pipeline.data.strokes, .typefaces) per MNIST digit
    coarse: float = 0.0  # the share of those digits scanned coarsely (pipeline.data.scans)
    pieces: float = 0.0  # numbers composed per MNIST digit to train the piece network on (pipeline.training.pieces)
    sequence_reader: float = 0.0  # numbers composed per MNIST digit to train a sequence reader on (.sequence_reader)

    def __post_init__(self) -> None:
        if self.members < 1:
            raise SettingsError(f"members is a number of networks to train and average, >= 1, got {self.members}")
        if self.schedule not in SCHEDULES:
            raise SettingsError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 0 <= self.ema < 1:
            raise SettingsError(f"ema is a momentum in [0, 1), got {self.ema}")
        if not 0 <= self.warmup < 1:
            raise SettingsError(f"warmup is a fraction of the training steps in [0, 1), got {self.warmup}")
        if self.negatives < 0:
            raise SettingsError(f"negatives is a number of non-digits per training digit, >= 0, got {self.negatives}")
        if self.written < 0:
            raise SettingsError(
                f"written is a number of drawn and printed digits per MNIST digit, >= 0, got {self.written}"
            )
        if not 0 <= self.coarse <= 1:
            raise SettingsError(
                f"coarse is the share of the drawn and printed digits scanned coarsely, got {self.coarse}"
            )
        if self.pieces < 0:
            raise SettingsError(f"pieces is a number of composed numbers per training digit, >= 0, got {self.pieces}")
        if self.sequence_reader < 0:
            raise SettingsError(
                f"sequence_reader is a number of composed numbers per training digit, >= 0, got {self.sequence_reader}"
            )
        if self.negatives and not versions.get(self.version).reject_class:
            raise SettingsError(f'version {self.version} has no "not a digit" class to train on negatives')

    @classmethod
    def for_version(cls, number: int, **overrides: object) -> Settings:
        """The version's defaults, with every override that is not None applied."""
        version = versions.get(number)
        settings = cls(version.number, version.epochs, version.batch_size, version.learning_rate, **version.recipe)
        return replace(settings, **{key: value for key, value in overrides.items() if value is not None})

    def each_member(self) -> list[Settings]:
        """What each member trains with: these settings, with the member's seed."""
        return [replace(self, seed=self.seed * self.members + member) for member in range(self.members)]

    def params(self) -> dict:
        return {**asdict(self), "augmentation": str(self.augmentation)}


def resolved_architecture(version: versions.Version, overrides: dict | None = None) -> dict:
    """The builder's keyword arguments: its defaults with `overrides` applied (unknown names refused)."""
    defaults = {name: parameter.default for name, parameter in inspect.signature(version.build).parameters.items()}
    unknown = set(overrides or {}) - set(defaults)
    if unknown:
        raise SettingsError(
            f"version {version.number} has no layer setting {', '.join(sorted(unknown))}; it has {', '.join(defaults)}"
        )
    return {**defaults, **(overrides or {})}
