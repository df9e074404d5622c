"""Read and write the IDX format that MNIST and Fashion-MNIST are published in.

An IDX file is two zero bytes, a type code, the number of dimensions, one
big-endian uint32 per dimension, then the values row-major. Files may be
gzip-compressed; the reader detects that from gzip's own magic bytes.
Every malformed file raises `IdxError` with one line naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

# Type code -> big-endian dtype, as the IDX format defines them.
DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}


class IdxError(ValueError):
    """A file that is not a well-formed IDX file."""


def read_idx(path: str | Path) -> np.ndarray:
    """Return the array stored in the IDX file at `path` (plain or gzipped)."""
    path = Path(path)
    return parse_idx(_read_bytes(path), path)


def parse_idx(data: bytes, path: object) -> np.ndarray:
    """Return the array that the uncompressed IDX bytes `data` hold; `path` names them in errors."""
    if len(data) < 4:
        raise IdxError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    if data[0:2] != b"\x00\x00":
        raise IdxError(f"{path}: not an IDX file: bad magic {data[0:4].hex()}")
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        raise IdxError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise IdxError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated: header needs {header} bytes, file has {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "trailing bytes"
        raise IdxError(
            f"{path}: {problem}: shape {shape} of {dtype.name} needs {expected} bytes of data, found {found}"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def expect(array: np.ndarray, path: object, dtype: object, shape: tuple) -> np.ndarray:
    """Check that `array` read from `path` has the dtype and trailing shape a dataset needs."""
    if array.dtype != np.dtype(dtype) or array.shape[1:] != tuple(shape):
        raise IdxError(
            f"{path}: wrong kind of IDX file: {array.dtype.name} {array.shape}, "
            f"expected {np.dtype(dtype).name} (N{''.join(f', {d}' for d in shape)})"
        )
    return array


def idx_bytes(array: np.ndarray) -> bytes:
    """Return `array` encoded as an uncompressed IDX file."""
    array = np.asarray(array)
    code = CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(DTYPES[code]).tobytes()


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise IdxError(f"{path}: cannot read: {error.strerror or error}") from None
    return gunzipped(raw, path)


def gunzipped(raw: bytes, path: object) -> bytes:
    """Return `raw` decompressed if it is gzip data, else unchanged; `path` names it in errors."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise IdxError(f"{path}: corrupt gzip data: {error}") from None
