"""The page to draw on: a small web app that shows what the served model reads in people's writing.

- `app`: the FastAPI app (built by `create_app`, nothing at import time): the page, its assets, `/api/read`;
- `readers`: where the answers come from, a running `mlflow models serve` or a model loaded here;
- `static/`: the page itself, HTML, CSS and JavaScript, served by the app (no CDN: it works offline).

It imports `serving`, to show the 28x28 images the model saw.
"""
