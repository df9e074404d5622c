"""How long the served model takes to read one photo of a number: 640x480, six digits, in one request.

    python -m benchmarks.reading_speed --model models:/mnist/Production
    python -m benchmarks.reading_speed --model runs:/<run id>/model --repeats 50

The photos are MNIST test digits written side by side, spaced or touching, dark
on unevenly lit paper, saved as JPEG: what a phone sends. Each is read through
the model's `predict`, as `mlflow models serve` calls it (base64 in, answer
out), one photo per call, after one call to warm up. Prints the median and the
90th percentile in milliseconds, and where the time goes: decoding, the
preprocessing and the candidate digits, the networks on them, and (for a model
that carries one) the line and the sequence reader.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import time

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.data import datasets

SIZE = (640, 480)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reading_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/mnist/Production", help="a model URI (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=30, help="photos read, each timed (default: %(default)s)")
    parser.add_argument("--digits", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def photo(digits: list[np.ndarray], touching: bool, rng: np.random.Generator) -> bytes:
    """MNIST digits (uint8, white on black) in a row on a 640x480 JPEG of unevenly lit paper."""
    pieces = []
    for digit in digits:
        columns = np.flatnonzero(digit.max(axis=0))
        pieces += [digit[:, columns.min() : columns.max() + 1] / 255.0, np.zeros((28, 0 if touching else 4))]
    strip = np.concatenate(pieces, axis=1)
    scale = (SIZE[0] - 80) / strip.shape[1]
    ink = np.asarray(
        Image.fromarray((strip * 255).astype(np.uint8)).resize(
            (round(strip.shape[1] * scale), round(28 * scale)), Image.Resampling.BICUBIC
        ),
        np.float32,
    )
    page = np.zeros(SIZE[::-1], np.float32)
    top = (SIZE[1] - ink.shape[0]) // 2
    page[top : top + ink.shape[0], 40 : 40 + ink.shape[1]] = ink / 255.0
    light = 0.95 - 0.25 * np.linspace(0, 1, SIZE[0])[None, :] - rng.uniform(0, 0.1)
    gray = light * (1 - 0.85 * page) + rng.normal(0, 0.01, page.shape)
    buffer = io.BytesIO()
    Image.fromarray((np.clip(gray, 0, 1) * 255).astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    import mlflow

    from pipeline.serving import images, segmentation, sequence

    args = parse(argv)
    mnist = datasets.load(datasets.MNIST)
    rng = np.random.default_rng(args.seed)
    photos = [
        photo(list(mnist.test_images[rng.integers(len(mnist.test_labels), size=args.digits)]), index % 2 == 1, rng)
        for index in range(args.repeats + 1)
    ]
    model = mlflow.pyfunc.load_model(args.model)
    recognizer = model.unwrap_python_model()

    def request(data: bytes) -> pd.DataFrame:
        return pd.DataFrame({"image": [base64.b64encode(data).decode()], "mode": ["number"]})

    model.predict(request(photos[0]))  # the first call builds what later ones reuse
    whole, decode, prepare, network, whole_line = [], [], [], [], []
    for data in photos[1:]:
        start = time.perf_counter()
        model.predict(request(data))
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        picture = images.read(data)
        decode.append(time.perf_counter() - start)
        start = time.perf_counter()
        number = segmentation.number_ink(picture.gray, picture.scale)
        found = segmentation.candidates_in(number)
        prepare.append(time.perf_counter() - start)
        start = time.perf_counter()
        candidates = np.stack([piece.digit.image for piece in found.pieces])
        recognizer.candidate_rows(candidates)
        network.append(time.perf_counter() - start)
        if recognizer.lines_of:
            start = time.perf_counter()
            recognizer.lines_of(sequence.line_from(number).image[None])
            whole_line.append(time.perf_counter() - start)

    def milliseconds(times: list[float]) -> str:
        return f"{1000 * statistics.median(times):.0f} ms (90th percentile {1000 * np.percentile(times, 90):.0f} ms)"

    print(f"{args.model}: one 640x480 JPEG of a {args.digits}-digit number, {args.repeats} photos, half touching")
    print(f"  read through predict     {milliseconds(whole)}")
    print(f"  of which decoding        {milliseconds(decode)}")
    print(f"  preparing the candidates {milliseconds(prepare)}")
    print(f"  the networks on them     {milliseconds(network)}")
    if whole_line:
        print(f"  the line and its reader  {milliseconds(whole_line)}")


if __name__ == "__main__":
    main()
