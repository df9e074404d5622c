import gzip

import numpy as np
import pytest

from pipeline.data.idx import IdxError, expect, idx_bytes, read_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_every_type(tmp_path, dtype):
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / "data-idx3"
    path.write_bytes(idx_bytes(array))
    read = read_idx(path)
    assert read.dtype == np.dtype(dtype) and read.shape == (2, 3, 4)
    np.testing.assert_array_equal(read, array)


def test_reads_gzip(tmp_path):
    labels = np.array([7, 2, 1, 0], np.uint8)
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


def test_header_layout_is_the_published_one():
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03"
    assert data[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    assert len(data) == 16 + 2 * 28 * 28


CORRUPTIONS = {
    "truncated payload": (lambda good: good[:-1], "truncated"),
    "trailing bytes": (lambda good: good + b"\x00", "trailing bytes"),
    "truncated header": (lambda good: good[:6], "truncated"),
    "tiny file": (lambda good: good[:2], "truncated"),
    "bad magic": (lambda good: b"\x01" + good[1:], "not an IDX file"),
    "unknown type": (lambda good: good[:2] + b"\x07" + good[3:], "unknown IDX type code 0x07"),
    "zero dimensions": (lambda good: good[:3] + b"\x00", "zero dimensions"),
    "corrupt gzip": (lambda good: gzip.compress(good)[:-12], "corrupt gzip"),
    "empty": (lambda good: b"", "truncated"),
}


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_is_one_clear_error_naming_the_file(tmp_path, kind):
    corrupt, message = CORRUPTIONS[kind]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(idx_bytes(np.ones((3, 28, 28), np.uint8))))
    with pytest.raises(IdxError) as raised:
        read_idx(path)
    text = str(raised.value)
    assert str(path) in text and message in text and "\n" not in text


def test_missing_file_is_an_idx_error(tmp_path):
    with pytest.raises(IdxError, match="cannot read"):
        read_idx(tmp_path / "absent")


def test_wrong_kind_of_file_is_refused(tmp_path):
    labels = np.zeros(10, np.uint8)
    with pytest.raises(IdxError, match=r"wrong kind of IDX file: uint8 \(10,\), expected uint8 \(N, 28, 28\)"):
        expect(labels, tmp_path / "x", np.uint8, (28, 28))
    with pytest.raises(IdxError, match="expected uint8"):
        expect(np.zeros((2, 28, 28), np.float32), tmp_path / "x", np.uint8, (28, 28))
    assert expect(labels, tmp_path / "x", np.uint8, ()) is labels
