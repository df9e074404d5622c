"""Where the page's answers come from: a running `mlflow models serve`, or a model loaded in this process.

Both take an image file's bytes and a mode ("digit" or "number") and return the
served model's answer for it (`pipeline.serving.reading`), or raise
`ModelUnavailable` (nothing answers, or it failed) or `ImageRefused` (the model
answered 4xx: the message is its reason).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

TIMEOUT = 60  # seconds to wait for the model server's answer


class ModelUnavailable(RuntimeError):
    """No model answers, or it failed; the message says which and what to do."""


class ImageRefused(ValueError):
    """The model refused the request (4xx); the message is its reason."""


def payload(data: bytes, mode: str) -> dict:
    return {
        "dataframe_split": {"columns": ["image"], "data": [[base64.b64encode(data).decode()]]},
        "params": {"mode": mode},
    }


class ServedModel:
    """Asks a running `mlflow models serve` at `url`, so the page shows exactly what it answers."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.source = self.url

    def read(self, data: bytes, mode: str) -> dict:
        request = urllib.request.Request(
            f"{self.url}/invocations",
            data=json.dumps(payload(data, mode)).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read())["predictions"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelUnavailable(f"{self.url} answered, but not as mlflow models serve does") from None
        except urllib.error.HTTPError as error:
            message = reason_in(error.read())
            if 400 <= error.code < 500:
                raise ImageRefused(message) from None
            raise ModelUnavailable(f"the model server at {self.url} failed ({error.code}): {message}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ModelUnavailable(
                f"no model answers at {self.url} ({getattr(error, 'reason', error)}): "
                "start one with `make serve`, or give the page --serving-url or --model"
            ) from None


def reason_in(body: bytes) -> str:
    """The model's own words in an MLflow error answer (MLflow puts the data it was given before them)."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    return message.rsplit("Error: ", 1)[-1].strip()[:500]


class LoadedModel:
    """A model loaded in this process from an MLflow model URI."""

    def __init__(self, uri: str) -> None:
        import mlflow

        self.source = uri
        self.model = mlflow.pyfunc.load_model(uri)

    def read(self, data: bytes, mode: str) -> dict:
        import pandas as pd
        from mlflow.exceptions import MlflowException

        frame = pd.DataFrame({"image": [base64.b64encode(data).decode()]})
        try:
            return self.model.predict(frame, params={"mode": mode})[0]
        except MlflowException as error:
            if 400 <= error.get_http_status_code() < 500:
                raise ImageRefused(error.message) from None
            raise ModelUnavailable(f"the model failed: {error.message}") from None
