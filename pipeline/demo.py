"""A page to draw digits and numbers on, or drop photos onto, and see what the model reads.

    python -m pipeline.demo                                   # asks mlflow models serve at 127.0.0.1:5001
    python -m pipeline.demo --serving-url http://10.0.0.5:5001
    python -m pipeline.demo --model models:/mnist/Production  # loads the model itself (make demo)

Then open http://127.0.0.1:8000. By default the page asks a running `mlflow
models serve` (`make serve`), so it shows exactly what the served model answers.
"""

from __future__ import annotations

import argparse
import sys

from pipeline import console

DEFAULT_SERVING_URL = "http://127.0.0.1:5001"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.demo", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--serving-url", default=DEFAULT_SERVING_URL, help="a running mlflow models serve (default: %(default)s)"
    )
    source.add_argument("--model", help="load this model URI here instead, e.g. models:/mnist/Production")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    console.add_verbosity(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    console.configure(args.verbosity)
    import uvicorn
    from mlflow.exceptions import MlflowException

    from pipeline.page import app, readers

    try:
        reader = readers.LoadedModel(args.model) if args.model else readers.ServedModel(args.serving_url)
    except (MlflowException, OSError) as error:
        sys.exit(f"demo: cannot load the model {args.model}: {str(error).splitlines()[0]}")
    print(f"demo: the page reads with {reader.source}; open http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app.create_app(reader), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
