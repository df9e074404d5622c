"""The page's web app: `/` the page, `/static/*` its assets, `POST /api/read` what the model reads in an image.

    app = create_app(readers.ServedModel("http://127.0.0.1:5001"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

`POST /api/read?mode=digit|number` takes an image file as the request body (a
drawing from the canvas, a photo) and answers

    {"answer": <the served model's answer>, "seen": [28x28 PNGs as data URLs], "size": [width, height]}

`seen` holds what the model saw: the one digit, or each digit of the number,
prepared by the same `pipeline.serving` code the model carries. Every error is
JSON with an `error` in words: 413 for a file over `MAX_UPLOAD` bytes, 400 for
an empty body, a file that is not an image or a wrong mode, 422 for an image the
model refused, 503 when no model answers.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.concurrency import run_in_threadpool

from pipeline.page import readers
from pipeline.serving import images, reading, segmentation

STATIC = Path(__file__).with_name("static")
MAX_UPLOAD = 10_000_000  # bytes of one image file


class TooLarge(ValueError):
    pass


def create_app(reader: readers.ServedModel | readers.LoadedModel) -> FastAPI:
    app = FastAPI(title="Digit reader", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/model")
    async def model() -> dict:
        return {"source": reader.source, "max_upload": MAX_UPLOAD}

    @app.post("/api/read")
    async def read(request: Request, mode: str = "digit") -> JSONResponse:
        if mode not in reading.MODES:
            return failure(400, f"mode must be one of {', '.join(reading.MODES)}, not {mode!r}")
        try:
            data = await body_within(request, MAX_UPLOAD)
        except TooLarge:
            return failure(413, f"the file is larger than {MAX_UPLOAD / 1e6:g} MB: send a smaller photo")
        if not data:
            return failure(400, "no image was sent")
        try:
            picture = await run_in_threadpool(images.read, data)
        except images.ImageError as error:
            return failure(400, f"cannot read this file: {error}")
        try:
            answer = await run_in_threadpool(reader.read, data, mode)
        except readers.ImageRefused as error:
            return failure(422, f"the model refused the image: {error}")
        except readers.ModelUnavailable as error:
            return failure(503, str(error))
        seen = await run_in_threadpool(what_the_model_saw, picture, mode, answer)
        size = [round(side / picture.scale) for side in picture.gray.shape[::-1]]
        return JSONResponse({"answer": answer, "seen": seen, "size": size})

    return app


def failure(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def body_within(request: Request, limit: int) -> bytes:
    """The request's body, or TooLarge as soon as it is known to hold more than `limit` bytes."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def what_the_model_saw(picture: images.Picture, mode: str, answer: dict) -> list[str]:
    """The 28x28 inputs behind `answer`, as PNG data URLs: none for an image refused before the model saw it.

    A number's digits are found among its candidates (`pipeline.serving.segmentation`)
    by their boxes, which are the same when the model carries this code.
    """
    try:
        if mode == "digit":
            return [data_url(images.to_mnist(picture.gray, picture.scale).image)]
        pieces = {piece.digit.box: piece.digit for piece in segmentation.candidates(picture.gray, picture.scale).pieces}
    except images.NotADigit:
        return []
    boxes = [tuple(digit["box"]) for digit in answer.get("digits") or []]
    return [data_url(pieces[box].image) for box in boxes if box in pieces]


def data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
