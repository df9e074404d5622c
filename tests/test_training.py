import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from pipeline.analysis.evaluation import Evaluation
from pipeline.data import numbers
from pipeline.data.datasets import Arrays
from pipeline.tracking.run import background_pool, made_in_background
from pipeline.training import pieces, policy, processor, sequence_reader
from pipeline.training.loop import fit, learning_rate, loss
from pipeline.training.settings import Settings, SettingsError, resolved_architecture
from pipeline.training.splits import additions, joined, split
from pipeline.training.versions import CLASSES


def small_arrays(n_train=100, n_test=20):
    images = np.arange(n_train * 784, dtype=np.int64).reshape(n_train, 28, 28) % 256
    return Arrays(
        images.astype(np.uint8),
        np.arange(n_train, dtype=np.uint8) % 10,
        images[:n_test].astype(np.uint8),
        np.arange(n_test, dtype=np.uint8) % 10,
    )


def test_validation_is_the_last_training_images_scaled():
    arrays = small_arrays()
    splits = split(arrays, validation=30)
    assert len(splits.train_images) == 70 and len(splits.validation_images) == 30
    np.testing.assert_array_equal(splits.validation_labels, arrays.train_labels[70:])
    assert splits.train_images.dtype == np.float32 and splits.train_images.max() <= 1.0
    np.testing.assert_allclose(splits.validation_images[0], arrays.train_images[70] / 255, rtol=1e-6)


def test_subset_keeps_the_first_images_of_both_sets():
    splits = split(small_arrays(), validation=10, subset=50)
    assert (len(splits.train_images), len(splits.validation_images), len(splits.test_images)) == (40, 10, 20)


def test_no_validation_trains_on_every_image():
    splits = split(small_arrays(), validation=0)
    assert len(splits.train_images) == 100
    assert splits.validation_images.shape == (0, 28, 28) and len(splits.validation_labels) == 0


@pytest.mark.parametrize("validation", [-1, 100, 1000])
def test_impossible_validation_split_is_refused(validation):
    with pytest.raises(ValueError, match="validation must be between 0 and 99"):
        split(small_arrays(), validation=validation)


def test_settings_take_the_versions_defaults_unless_overridden():
    settings = Settings.for_version(3, epochs=None, seed=4)
    assert (settings.epochs, settings.batch_size, settings.learning_rate, settings.seed) == (20, 128, 0.001, 4)


def test_unknown_layer_setting_is_refused():
    from pipeline.training import versions

    with pytest.raises(ValueError, match="version 1 has no layer setting filters; it has units"):
        resolved_architecture(versions.get(1), {"filters": 3})


def test_same_seed_same_metrics_other_seed_other_metrics(mnist):
    splits = split(mnist, validation=500, subset=2000)

    def history(seed):
        settings = Settings.for_version(2, epochs=2, seed=seed, subset=2000, validation=500)
        return fit(settings, splits, verbose=0)[1]

    first, again, other = history(0), history(0), history(1)
    for metric in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert first[metric] == again[metric], metric
    assert first["loss"] != other["loss"]
    assert len(first["epoch_seconds"]) == 2


def test_evaluation_metrics():
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.0, 0.0, 1.0]])
    labels = np.array([0, 1, 1, 2])
    evaluation = Evaluation(probabilities, labels)
    assert evaluation.accuracy == 0.75 and evaluation.errors == 1
    assert evaluation.loss == pytest.approx(-np.mean(np.log([0.9, 0.7, 0.3, 1.0 - 1e-12])), rel=1e-6)
    np.testing.assert_array_equal(evaluation.confusion(), [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert list(evaluation.worst_errors()) == [2]
    table = evaluation.predictions_table()
    assert list(table.columns) == ["index", "label", "predicted", "confidence", "p0", "p1", "p2"]


def test_constant_learning_rate_unless_a_schedule_is_set():
    settings = Settings.for_version(3)
    assert learning_rate(settings, steps_per_epoch=100) == 0.001


def test_warmup_then_cosine_decay_to_zero():
    settings = Settings.for_version(1, epochs=10, learning_rate=0.01, schedule="warmup_cosine", warmup=0.1)
    schedule = learning_rate(settings, steps_per_epoch=100)  # 1000 steps, 100 of warmup
    rate = [float(schedule(step)) for step in range(0, 1001, 50)]
    assert rate[0] == pytest.approx(0.001)  # a tenth of the peak
    assert rate[2] == pytest.approx(0.01)  # the peak, at the end of warmup
    assert all(a < b for a, b in zip(rate[:2], rate[1:3]))  # rising during warmup
    assert all(a > b for a, b in zip(rate[2:-1], rate[3:]))  # falling after it
    assert rate[-1] == pytest.approx(0.0, abs=1e-9)
    assert rate[11] == pytest.approx(0.005, rel=0.01)  # half way through the decay, half the peak


def test_cosine_without_warmup_starts_at_the_peak():
    settings = Settings.for_version(1, epochs=1, learning_rate=0.01, schedule="warmup_cosine")
    schedule = learning_rate(settings, steps_per_epoch=10)
    assert float(schedule(0)) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"schedule": "triangle"}, "schedule must be one of constant, warmup_cosine"),
        ({"precision": "float16"}, "precision must be one of float32, mixed_bfloat16"),
        ({"warmup": 1.0}, "warmup is a fraction"),
        ({"ema": 1.0}, "ema is a momentum"),
        ({"members": 0}, "members is a number of networks"),
        ({"coarse": 1.5}, "coarse is the share of the drawn and printed digits"),
    ],
)
def test_impossible_recipes_are_refused(overrides, message):
    with pytest.raises(SettingsError, match=message):
        Settings.for_version(1, **overrides)


def test_members_of_different_runs_never_share_a_seed():
    def seeds(settings):
        return [member.seed for member in settings.each_member()]

    assert seeds(Settings.for_version(6, seed=0)) == [0, 1]
    assert seeds(Settings.for_version(6, seed=1)) == [2, 3]
    assert seeds(Settings.for_version(6, seed=1, members=3)) == [3, 4, 5]
    assert seeds(Settings.for_version(3, seed=7)) == [7]
    assert Settings.for_version(6, seed=1).each_member()[1] == Settings.for_version(6, seed=3)


def test_label_smoothing_needs_one_hot_labels():
    with pytest.raises(SettingsError, match="label smoothing needs one-hot labels"):
        loss("sparse_categorical_crossentropy", 0.1)


def test_new_versions_carry_their_recipes_into_settings_and_params():
    settings = Settings.for_version(5)
    assert settings.schedule == "warmup_cosine" and settings.augmentation
    params = settings.params()
    assert params["augmentation"].startswith("rotation=") and params["precision"] in ("float32", "mixed_bfloat16")
    assert Settings.for_version(1).params()["augmentation"] == "none"
    assert Settings.for_version(1).params()["precision"] == "float32"  # the seed's versions train as it did


X86_WITHOUT = "fpu vme sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni"  # an Ice Lake's
CPUINFO = {
    "an x86 processor with AMX": f"processor\t: 0\nflags\t\t: {X86_WITHOUT} avx512_bf16 amx_bf16 amx_tile\n",
    "an x86 processor with AVX512_BF16 only": f"processor\t: 0\nflags\t\t: {X86_WITHOUT} avx512_bf16\n",
    "an x86 processor without bfloat16": f"processor\t: 0\nflags\t\t: {X86_WITHOUT}\n",
    "an ARM processor with BF16": "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n",
    "an ARM processor without": "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\n",
    "no flags at all": "processor\t: 0\n",
}


@pytest.mark.parametrize(
    ("machine", "precision"),
    [
        ("an x86 processor with AMX", "mixed_bfloat16"),
        ("an x86 processor with AVX512_BF16 only", "mixed_bfloat16"),
        ("an x86 processor without bfloat16", "float32"),
        ("an ARM processor with BF16", "mixed_bfloat16"),
        ("an ARM processor without", "float32"),
        ("no flags at all", "float32"),
    ],
)
def test_the_recipes_train_in_bfloat16_only_where_the_processor_computes_it(tmp_path, machine, precision):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO[machine] * 2)  # one block per core
    assert processor.fast_precision(processor.flags(cpuinfo)) == precision


def test_without_a_cpuinfo_the_recipes_train_in_float32(tmp_path):
    assert processor.flags(tmp_path / "missing") == set()
    assert processor.fast_precision(set()) == "float32"


def test_augmented_training_is_repeatable(mnist):
    splits = split(mnist, validation=200, subset=1200)

    def history(seed):
        settings = Settings.for_version(5, epochs=1, seed=seed, subset=1200, validation=200, batch_size=100)
        return fit(settings, splits, architecture={"filters1": 8, "filters2": 8, "filters3": 8}, verbose=0)[1]

    first, again, other = history(0), history(0), history(1)
    assert first["loss"] == again["loss"] and first["val_accuracy"] == again["val_accuracy"]
    assert first["loss"] != other["loss"]


def test_a_recipes_additions_are_its_non_digits_then_its_drawn_and_printed_digits(fashion):
    settings = Settings.for_version(6, seed=3)  # 15,000 non-digits and 11,000 written digits per 55,000
    images, labels = additions(settings, digits=550)
    assert images.shape == (260, 28, 28) and images.dtype == np.float32 and labels.dtype == np.uint8
    assert (labels[:150] == CLASSES).all() and (labels[150:] < CLASSES).all()
    again, again_labels = additions(settings, digits=550)
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)


def test_half_of_version_6s_drawn_and_printed_digits_are_scanned_coarsely_and_none_without():
    def written(coarse):
        settings = Settings.for_version(6, seed=3, negatives=0.0, coarse=coarse)
        return additions(settings, digits=1100)

    (scanned, labels), (sharp, sharp_labels) = written(None), written(0.0)
    assert np.array_equal(labels, sharp_labels)  # the same digits, some of them scanned
    changed = np.abs(scanned - sharp).max(axis=(1, 2)) > 0.05
    assert 0.4 < changed.mean() < 0.6
    np.testing.assert_array_equal(scanned[~changed], sharp[~changed])


def test_training_data_is_made_beside_a_training_at_the_lowest_priority():
    with background_pool() as pool:
        assert pool.submit(os.nice, 0).result() == 19  # os.nice(0): the process's niceness, unchanged


def test_each_network_gets_in_the_background_what_it_would_make_itself(mnist, fashion, monkeypatch):
    monkeypatch.setattr(pieces, "DRAWN", 40)  # drawn here, in the test's process, and handed to the pool
    monkeypatch.setattr(pieces, "PRINTED", 20)
    splits = split(mnist, validation=500, subset=2000)
    settings = Settings.for_version(6, seed=1, subset=2000, validation=500, pieces=0.01, sequence_reader=0.01)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        made = made_in_background(pool, settings, splits)
        added = [joined([part.result() for part in parts]) for parts in made.additions]
        made_pieces = made.pieces.result()
        made_lines = numbers.joined_lines([chunk.result() for chunk in made.lines])
    assert [len(parts) for parts in made.additions] == [3, 3]  # non-digits, drawn and printed digits, apart
    for (images, labels), member in zip(added, settings.each_member(), strict=True):
        own_images, own_labels = additions(member, len(splits.train_labels))
        assert np.array_equal(images, own_images) and np.array_equal(labels, own_labels)
    assert not np.array_equal(added[0][0], added[1][0])
    written = pieces.written_digits(settings.seed)
    own_pieces = pieces.training_pieces(splits, 0.01, settings.seed, written)
    assert all(map(np.array_equal, made_pieces, own_pieces))
    sources = sequence_reader.line_sources(splits, settings.seed)  # the reader's own, drawn again here
    own_lines = numbers.lines(15, settings.seed, sources, sequence_reader.SHARES)  # 0.01 of 1,500 digits
    assert all(map(np.array_equal, made_lines, own_lines))
    nothing = made_in_background(
        None, replace(settings, negatives=0.0, written=0.0, pieces=0.0, sequence_reader=0.0), splits
    )
    assert nothing == ([[], []], None, [])


def test_a_network_is_built_in_its_precision_and_what_is_built_after_in_float32():
    import keras

    def build(units):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])

    network = policy.built(build, "mixed_bfloat16", units=3)
    assert network.layers[0].dtype_policy.name == "mixed_bfloat16" and network.output_shape == (None, 3)
    assert build(3).layers[0].dtype_policy.name == "float32"

    def broken():
        raise RuntimeError("no network")

    with pytest.raises(RuntimeError, match="no network"):
        policy.built(broken, "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "float32"
