"""The page to draw on: its routes and errors through FastAPI's test client, and the page itself in a real
Chromium, drawing with the mouse and a finger, against a real `mlflow models serve`."""

import base64
import http.server
import io
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_images import encoded, on_paper
from test_segmentation import written_number

from pipeline.analysis import scoring_server
from pipeline.page import app, readers
from pipeline.training.splits import scaled


class StandIn:
    """A reader that answers a fixed digit, or refuses every image."""

    source = "a stand-in"

    def __init__(self, refuse=False):
        self.refuse = refuse

    def read(self, data, mode):
        if self.refuse:
            raise readers.ImageRefused("row 0: 9000 x 9000 pixels is more than the limit")
        probabilities = [0.01] * 10
        probabilities[3] = 0.91
        return {"digit": 3, "confidence": 0.91, "probabilities": probabilities, "rejected": False, "reason": None}


def digit_file(mnist, index=0, format="PNG"):
    return encoded(on_paper(scaled(mnist.test_images[index : index + 1])[0]), format)


def test_the_page_and_its_assets_are_served():
    client = TestClient(app.create_app(StandIn()))
    page = client.get("/")
    assert page.status_code == 200 and 'id="answer"' in page.text and "/static/page.js" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("http://127.0.0.1", "")  # nothing from elsewhere
    for asset, kind in [("/static/page.js", "javascript"), ("/static/page.css", "text/css")]:
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert client.get("/api/model").json() == {"source": "a stand-in", "max_upload": app.MAX_UPLOAD}
    assert client.get("/static/missing.js").status_code == 404


def test_a_digit_is_read_with_what_the_model_saw(mnist):
    client = TestClient(app.create_app(StandIn()))
    response = client.post("/api/read?mode=digit", content=digit_file(mnist))
    assert response.status_code == 200
    result = response.json()
    assert result["answer"]["digit"] == 3 and result["size"] == [400, 300]
    (seen,) = result["seen"]
    assert seen.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(seen.split(",", 1)[1])))
    assert image.size == (28, 28)


def test_a_number_read_by_a_loaded_model_shows_each_digit_it_saw(mnist, model_path):
    client = TestClient(app.create_app(readers.LoadedModel(model_path)))
    paper, _ = written_number(mnist, [0, 1, 2], 8)
    response = client.post("/api/read?mode=number", content=encoded(paper, "PNG"))
    assert response.status_code == 200
    result = response.json()
    assert len(result["answer"]["digits"]) == len(result["seen"]) >= 1
    assert result["answer"]["number"] == "".join(str(label) for label in mnist.test_labels[:3])


@pytest.mark.parametrize(
    "reader, body, query, status, words",
    [
        (StandIn(), b"", "", 400, "no image was sent"),
        (StandIn(), b"this is text", "", 400, "cannot read this file: not an image"),
        (StandIn(), b"\0" * (app.MAX_UPLOAD + 1), "", 413, "larger than 10 MB"),
        (StandIn(), None, "?mode=words", 400, "mode must be one of digit, number"),
        (StandIn(refuse=True), None, "", 422, "the model refused the image: row 0: 9000 x 9000"),
        (readers.ServedModel(f"http://127.0.0.1:{scoring_server.free_port()}"), None, "", 503, "no model answers"),
    ],
)
def test_every_error_is_said_in_words(mnist, reader, body, query, status, words):
    client = TestClient(app.create_app(reader))
    response = client.post(f"/api/read{query}", content=digit_file(mnist) if body is None else body)
    assert response.status_code == status and words in response.json()["error"]


@pytest.fixture
def not_a_model_server():
    """A server on 127.0.0.1 that answers every POST with 200 and a greeting."""

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_server_that_is_not_a_model_is_said_so(mnist, not_a_model_server):
    client = TestClient(app.create_app(readers.ServedModel(not_a_model_server)))
    response = client.post("/api/read", content=digit_file(mnist))
    assert response.status_code == 503 and "not as mlflow models serve does" in response.json()["error"]


def test_a_model_that_cannot_be_loaded_is_one_line(tracking):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.demo", "--model", "models:/nothing/1", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("demo: cannot load the model models:/nothing/1: ")
    assert "Traceback" not in result.stderr


# --- the page in a real browser ---------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium here: apt-get install chromium")
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS", "test-artifacts/screenshots"))


def started_demo(*arguments):
    """`python -m pipeline.demo` on a free port of 127.0.0.1, once it answers; returns the process and its URL."""
    port = scoring_server.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.demo", "--port", str(port), *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the demo stopped"
        try:
            with urllib.request.urlopen(f"{url}/api/model", timeout=5):
                return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError("the demo did not answer in 120 s")


@pytest.fixture(scope="module")
def demo(model_path):
    """The demo asking a real `mlflow models serve` of `model_path`, as `make serve` and the default would."""
    with scoring_server.running(model_path) as server:
        process, url = started_demo("--serving-url", server.url)
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium here: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, demo):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(demo)
    yield page
    context.close()


# Digits as strokes, in fractions of the area they are written in: lists of (x, y) points.
ONE = [[(0.5, 0.15), (0.5, 0.85)]]
SEVEN = [[(0.25, 0.2), (0.75, 0.2)], [(0.75, 0.2), (0.45, 0.85)]]
ZERO = [[(0.5 + 0.2 * math.sin(t), 0.5 - 0.32 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 40)]]


def points(stroke, box, steps=6):
    """The stroke's points in page pixels, in `box` (x, y, width, height), with points between them."""
    x, y, width, height = box
    on_page = [(x + u * width, y + v * height) for u, v in stroke]
    between = [
        (a[0] + (b[0] - a[0]) * k / steps, a[1] + (b[1] - a[1]) * k / steps)
        for a, b in zip(on_page, on_page[1:])
        for k in range(steps)
    ]
    return between + on_page[-1:]


def draw_with_mouse(page, strokes, part=(0, 0, 1, 1)):
    """Draw `strokes` with the mouse in `part` (fractions) of the canvas."""
    area = page.locator("#canvas").bounding_box()
    box = (
        area["x"] + part[0] * area["width"],
        area["y"] + part[1] * area["height"],
        part[2] * area["width"],
        part[3] * area["height"],
    )
    for stroke in strokes:
        path = points(stroke, box)
        page.mouse.move(*path[0])
        page.mouse.down()
        for point in path[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def draw_with_finger(page, strokes):
    """Draw `strokes` with touch events, as a phone's screen sends them."""
    area = page.locator("#canvas").bounding_box()
    box = (area["x"], area["y"], area["width"], area["height"])
    session = page.context.new_cdp_session(page)
    for stroke in strokes:
        path = points(stroke, box)
        session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [touch(path[0])]})
        for point in path[1:]:
            session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [touch(point)]})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def touch(point):
    return {"x": point[0], "y": point[1], "radiusX": 4, "radiusY": 4, "force": 1}


def ink(page):
    """How many of the canvas's pixels are dark."""
    return page.evaluate(
        """() => { const c = document.getElementById('canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }"""
    )


def answer_is(page, text):
    from playwright.sync_api import expect

    expect(page.locator("#answer")).to_have_text(text, timeout=30_000)


@needs_chromium
@pytest.mark.parametrize("strokes, digit", [(ONE, "1"), (SEVEN, "7"), (ZERO, "0")])
def test_a_digit_drawn_with_the_mouse_is_read(page, strokes, digit):
    draw_with_mouse(page, strokes)
    answer_is(page, digit)
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.top .digit").inner_text() == digit
    widths = [page.locator("#bars .fill").nth(k).bounding_box()["width"] for k in range(10)]
    bar = page.locator("#bars .bar").first.bounding_box()["width"]
    assert widths[int(digit)] == max(widths) > bar / 2  # drawn to scale: the answer's is over half the bar
    assert not page.locator("#hint").is_visible()
    assert page.locator("#announce").inner_text().startswith(f"The model reads {digit}.")
    preview = page.locator("#seen img")
    assert preview.count() == 1
    assert page.evaluate("() => document.querySelector('#seen img').naturalWidth") == 28
    if digit == "7":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "desktop.png"))


@needs_chromium
def test_undo_takes_back_the_last_stroke_and_escape_clears(page):
    draw_with_mouse(page, SEVEN)
    answer_is(page, "7")
    whole = ink(page)
    page.get_by_role("button", name="Undo").click()
    assert 0 < ink(page) < whole
    page.keyboard.press("Control+z")
    assert ink(page) == 0
    answer_is(page, "nothing yet")
    draw_with_mouse(page, ONE)
    answer_is(page, "1")
    page.keyboard.press("Escape")
    answer_is(page, "nothing yet")
    assert ink(page) == 0 and page.locator("#bars li").count() == 0 and page.locator("#seen img").count() == 0


@needs_chromium
def test_a_digit_drawn_with_a_finger_on_a_phone_is_read(browser, demo):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(demo)
    try:
        draw_with_finger(page, ONE)
        answer_is(page, "1")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    finally:
        context.close()


@needs_chromium
def test_a_number_of_three_digits_is_read_with_a_box_for_each(page):
    page.get_by_label("A whole number").check()
    for index, strokes in enumerate([ONE, SEVEN, ZERO]):
        draw_with_mouse(page, strokes, (0.08 + 0.3 * index, 0.1, 0.24, 0.8))
    answer_is(page, "170")
    assert page.locator("#boxes .box").count() == 3 and page.locator("#seen img").count() == 3
    lefts = [page.locator("#boxes .box").nth(k).bounding_box()["x"] for k in range(3)]
    assert lefts == sorted(lefts)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "number.png"))


@needs_chromium
def test_a_photo_is_read_when_dropped_and_when_picked(page, mnist, tmp_path):
    data = digit_file(mnist, 0, "JPEG")  # MNIST's first test digit, a 7, on paper
    page.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'seven.jpg', {type: 'image/jpeg'}));
            const surface = document.getElementById('surface');
            surface.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        base64.b64encode(data).decode(),
    )
    answer_is(page, "7")
    page.keyboard.press("Escape")
    answer_is(page, "nothing yet")
    (tmp_path / "two.png").write_bytes(digit_file(mnist, 1, "PNG"))  # the second, a 2
    page.set_input_files("#file", str(tmp_path / "two.png"))
    answer_is(page, "2")


@needs_chromium
def test_a_scribble_is_refused_with_the_reason(page):
    rng = np.random.default_rng(0)
    dots = [[(float(x), float(y))] * 2 for x, y in rng.uniform(0.1, 0.9, (24, 2))]
    draw_with_mouse(page, dots)
    answer_is(page, "not a digit")
    assert "The model's reason:" in page.locator("#status").inner_text()


@needs_chromium
def test_errors_are_shown_in_words(browser, tmp_path):
    process, url = started_demo("--serving-url", f"http://127.0.0.1:{scoring_server.free_port()}")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url)
        draw_with_mouse(page, ONE)
        from playwright.sync_api import expect

        expect(page.locator("#error")).to_contain_text("no model answers", timeout=30_000)
        (tmp_path / "huge.png").write_bytes(b"\0" * (app.MAX_UPLOAD + 1))
        page.set_input_files("#file", str(tmp_path / "huge.png"))
        expect(page.locator("#error")).to_contain_text("larger than 10 MB", timeout=30_000)
    finally:
        context.close()
        process.terminate()
        process.wait(timeout=30)
