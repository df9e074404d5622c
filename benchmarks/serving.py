"""How fast `mlflow models serve` answers, within what memory, and how it refuses requests past its limits.

    python -m benchmarks.serving --model models:/mnist/Production
    python -m benchmarks.serving --model models:/mnist/Production --workers 1 2 --soak 10000
    python -m benchmarks.serving --code checkout --workers 1 --seconds 1 --soak 10000 --soak-payload number

Starts `mlflow models serve` on 127.0.0.1 (`pipeline.analysis.scoring_server`) and, from
this process, sends each payload from `--clients` concurrent clients (one
kept-alive connection each) until `--requests` are answered or `--seconds` pass,
whichever comes first; then it stops. The payloads: one MNIST array, one 28x28
PNG, one photo of a handwritten digit (400x300 JPEG), one 640x480 JPEG photo, one
640x480 photo of a six-digit number in number mode, 64 MNIST arrays in one
request, and 1 to 64 MNIST arrays in one request (every count, in turn). For
each: requests/s (and images/s), the median and 99th
percentile latency, errors, and the server's memory before and after. Then one
request past each limit (too many images, too many bytes, too many pixels, and
as many arrays as the bytes limit holds), with the time to its 4xx, whether the
next request is answered normally, and the server's memory after: sent to the
server, then (where nginx is installed) through `deploy/nginx.conf` in front of it.

The model is served twice side by side: with the serving code it was logged
with, and with this checkout's `pipeline/serving` in its place (the networks
are the same files), once per `--workers`. `--soak N` then sends N requests of
one payload (`--soak-payload`, single arrays by default) to each code in turn
with one worker, and prints the server's memory before, after each tenth of
them and at the end, to show whether it levels off.
Prints Markdown tables, for BENCHMARKS.md. The clients share the machine with
the server: on 2 cores, they take part of what it could use.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from benchmarks import reading_speed
from pipeline.analysis import reverse_proxy, scoring_server
from pipeline.data import datasets
from pipeline.page import readers

CODES = ("logged", "checkout")  # the serving code the model was logged with, and this checkout's
# each `Payload.key`, for --soak-payload
PAYLOADS = ("array", "png", "photo", "colour-photo", "number", "64-arrays", "1-64-arrays")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/mnist/Production", help="a model URI (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument(
        "--code", nargs="+", choices=CODES, default=list(CODES), help="serving code to measure (default: both)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=3000, help="most requests per payload (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=15, help="most seconds per payload (default: %(default)s)")
    parser.add_argument("--soak", type=int, default=0, help="requests sent at the end (default: none)")
    parser.add_argument(
        "--soak-payload", choices=PAYLOADS, default=PAYLOADS[0], help="what the soak sends (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Payload:
    key: str  # one of PAYLOADS
    name: str
    bodies: list[bytes]  # JSON request bodies, sent in turn
    images: float = 1  # per request, on average


def arrays(images: np.ndarray) -> bytes:
    return json.dumps({"inputs": (images / 255.0).round(4).tolist()}).encode()


def files(contents: list[bytes], mode: str = "digit") -> bytes:
    rows = [[base64.b64encode(data).decode(), mode] for data in contents]
    return json.dumps({"dataframe_split": {"columns": ["image", "mode"], "data": rows}}).encode()


def jpeg(gray: np.ndarray, colour: bool = False) -> bytes:
    image = Image.fromarray((np.clip(gray, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    (image.convert("RGB") if colour else image).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def png(digit: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, "PNG")
    return buffer.getvalue()


def photo(digit: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit (uint8, white on black) in dark ink, two thirds of the height, on unevenly lit paper."""
    width, height = size
    side = 2 * height // 3
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC), np.float32) / 255.0
    page = np.zeros((height, width), np.float32)
    top, left = rng.integers(0, height - side), rng.integers(0, width - side)
    page[top : top + side, left : left + side] = ink
    light = 0.95 - 0.25 * np.linspace(0, 1, width)[None, :] - rng.uniform(0, 0.1)
    return light * (1 - 0.85 * page) + rng.normal(0, 0.01, page.shape)


def payloads(seed: int, count: int = 40) -> list[Payload]:
    mnist = datasets.load(datasets.MNIST)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(len(mnist.test_labels), size=64) for _ in range(count)]
    sizes = range(1, 65)  # every count of images up to 64, one request each
    digits = [mnist.test_images[pick[0]] for pick in picks]
    return [
        Payload("array", "one MNIST array (1 x 28 x 28)", [arrays(digit[None]) for digit in digits]),
        Payload("png", "one 28x28 PNG", [files([png(digit)]) for digit in digits]),
        Payload(
            "photo", "one handwriting photo (400x300 JPEG)", [files([jpeg(photo(d, (400, 300), rng))]) for d in digits]
        ),
        Payload(
            "colour-photo",
            "one 640x480 colour JPEG",
            [files([jpeg(photo(d, (640, 480), rng), colour=True)]) for d in digits],
        ),
        Payload(
            "number",
            "a six-digit number, 640x480 JPEG",
            [
                files([reading_speed.photo(list(mnist.test_images[pick[:6]]), index % 2 == 1, rng)], "number")
                for index, pick in enumerate(picks)
            ],
        ),
        Payload("64-arrays", "64 MNIST arrays in one request", [arrays(mnist.test_images[pick]) for pick in picks], 64),
        Payload(
            "1-64-arrays",
            "1 to 64 MNIST arrays in one request",
            [arrays(mnist.test_images[rng.integers(len(mnist.test_labels), size=size)]) for size in sizes],
            float(np.mean(sizes)),  # 32.5
        ),
    ]


@dataclass(frozen=True)
class Load:
    seconds: float
    latencies: list[float]  # of the answered requests, in seconds
    errors: int  # answers other than 200, and failed connections


def send(url: str, body: bytes, connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    """POST one JSON body to /invocations: the status and the answer (status 0 if the connection failed)."""
    parts = urlsplit(url)
    connection = connection or http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except OSError as error:
        connection.close()
        return 0, str(error).encode()


def load(url: str, bodies: list[bytes], clients: int, requests: int, seconds: float) -> Load:
    """`clients` threads send `bodies` in turn until `requests` are sent or `seconds` pass."""
    parts = urlsplit(url)
    lock = threading.Lock()
    sent = [0]
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= requests:
                    break
                body = bodies[sent[0] % len(bodies)]
                sent[0] += 1
            start = time.perf_counter()
            status, _ = send(url, body, connection)
            took = time.perf_counter() - start
            with lock:
                if status == 200:
                    latencies.append(took)
                else:
                    errors[0] += 1
        connection.close()

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Load(time.perf_counter() - start, latencies, errors[0])


def past_the_limits(seed: int) -> list[tuple[str, bytes]]:
    """One request past each of the served model's limits; the last, arrays in as many bytes as the images'
    limit allows, shows what the scoring server spends parsing a request before the model can count it."""
    from pipeline.serving import images, model

    rng = np.random.default_rng(seed)
    too_many = arrays(rng.integers(0, 256, (model.MAX_IMAGES + 1, 28, 28)).astype(np.float64))
    heavy = model.MAX_IMAGE_BYTES // (len(too_many) // (model.MAX_IMAGES + 1))
    side = int(np.sqrt(images.MAX_PIXELS)) + 100
    buffer = io.BytesIO()
    Image.new("L", (side, side), 255).save(buffer, "PNG")  # small on disk, too many pixels
    return [
        (f"{model.MAX_IMAGES + 1} arrays", too_many),
        (f"{model.MAX_IMAGE_BYTES:,} bytes of images, and 4", files([b"\0" * (3 * model.MAX_IMAGE_BYTES // 4 + 3)])),
        (f"a {side} x {side} PNG", files([buffer.getvalue()])),
        (f"{heavy:,} arrays", arrays(rng.integers(0, 256, (heavy, 28, 28)).astype(np.float64))),
    ]


def with_serving_code(model: Path, code: str, folder: Path) -> Path:
    """A copy of the downloaded `model` carrying `code`: "logged" (its own) or "checkout" (this one's)."""
    from pipeline.tracking import logged_model

    copy = folder / code
    shutil.copytree(model, copy)
    if code == "checkout":
        shutil.rmtree(copy / "code" / "pipeline")
        logged_model.serving_code(copy / "code")
    return copy


def milliseconds(seconds: float) -> str:
    return f"{1000 * seconds:,.0f} ms" if seconds >= 0.01 else f"{1000 * seconds:.1f} ms"


def megabytes(count: int) -> str:
    return f"{count / 2**20:,.0f} MB"


def main(argv: list[str] | None = None) -> None:
    import mlflow

    args = parse(argv)
    prepared = payloads(args.seed)
    limits = past_the_limits(args.seed)
    print(f"`{args.model}`, {args.clients} clients, at most {args.requests:,} requests or {args.seconds:g} s each\n")
    print("| serving code | workers | payload | requests/s | images/s | p50 | p99 | errors | server memory |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    refusals = []
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = Path(mlflow.artifacts.download_artifacts(args.model, dst_path=str(Path(scratch) / "model")))
        for code in args.code:
            served = with_serving_code(downloaded, code, Path(scratch))
            for workers in args.workers:
                with scoring_server.running(str(served), workers) as server:
                    for payload in prepared:
                        print(f"| {code} | {workers} | {measured(server, payload, workers, args)} |", flush=True)
                    refusals += refused_both_ways(server, limits, prepared[0], f"{code} | {workers}")
        columns = "serving code | workers | through | request | body | status | answered in | message | next request"
        print(f"\n| {columns} | memory |")
        print("|---|---:|---|---|---:|---:|---:|---|---:|---:|")
        print("\n".join(refusals))
        if args.soak:
            (soaked,) = [payload for payload in prepared if payload.key == args.soak_payload]
            for code in args.code:
                soak(with_serving_code(downloaded, code, Path(scratch) / "soak"), code, soaked, args)


def measured(server: scoring_server.Server, payload: Payload, workers: int, args: argparse.Namespace) -> str:
    """One payload under load: the cells of its row."""
    for body in payload.bodies[: 2 * workers]:  # every worker builds what later calls reuse
        send(server.url, body)
    before = server.memory()
    result = load(server.url, payload.bodies, args.clients, args.requests, args.seconds)
    rate = len(result.latencies) / result.seconds
    p50, p99 = (np.percentile(result.latencies, q) if result.latencies else 0 for q in (50, 99))
    return (
        f"{payload.name} | {rate:,.0f} | {rate * payload.images:,.0f} | {milliseconds(p50)} | {milliseconds(p99)} "
        f"| {result.errors} | {megabytes(before)} → {megabytes(server.memory())}"
    )


def refused_both_ways(
    server: scoring_server.Server, limits: list[tuple[str, bytes]], normal: Payload, first_cells: str
) -> list[str]:
    """The rows of `refused`, sent to the server and, where nginx is installed, through `deploy/nginx.conf`."""
    rows = [f"| {first_cells} | direct | {row} |" for row in refused(server.url, server, limits, normal)]
    if reverse_proxy.nginx():
        with reverse_proxy.running(server.url) as proxy:
            rows += [f"| {first_cells} | nginx | {row} |" for row in refused(proxy, server, limits, normal)]
    return rows


def refused(url: str, server: scoring_server.Server, limits: list[tuple[str, bytes]], normal: Payload) -> list[str]:
    """One request past each limit to `url`, each followed by a normal one: the cells of their rows."""
    rows = []
    for name, body in limits:
        start = time.perf_counter()
        status, answer = send(url, body)
        took = time.perf_counter() - start
        next_status, _ = send(url, normal.bodies[0])
        reason = readers.reason_in(answer)[:90]
        rows.append(
            f"{name} | {len(body) / 2**20:,.1f} MB | {status} | {milliseconds(took)} | {reason} | {next_status} "
            f"| {megabytes(server.memory())}"
        )
    return rows


def soak(model: Path, code: str, payload: Payload, args: argparse.Namespace) -> None:
    """`args.soak` requests of `payload` to `model`, served with `code`, in ten rounds, the server's memory
    measured after each."""
    rounds = [args.soak // 10 + (index < args.soak % 10) for index in range(10)]
    latencies, errors, seconds = [], 0, 0.0
    with scoring_server.running(str(model), 1) as server:
        for body in payload.bodies[:2]:
            send(server.url, body)
        memory = [server.memory()]
        for count in rounds:
            result = load(server.url, payload.bodies, args.clients, count, seconds=3600)
            latencies += result.latencies
            errors += result.errors
            seconds += result.seconds
            memory.append(server.memory())
    print(
        f"\nSoak, {code} code: {len(latencies):,} requests of {payload.name} in {seconds:,.0f} s "
        f"from {args.clients} clients, "
        f"{errors} errors, p50 {milliseconds(statistics.median(latencies))}; server memory "
        f"{megabytes(memory[0])} → {megabytes(memory[-1])} ({(memory[-1] - memory[0]) / memory[0]:+.1%}); "
        f"after each tenth: {', '.join(megabytes(value) for value in memory[1:])}"
    )


if __name__ == "__main__":
    main()
