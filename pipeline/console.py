"""How the entry points talk: progress and messages through `logging`, in one format, louder with -v, quieter with -q.

A command's result (the JSON of `predict --json`, the tables `train`, `bench`
and `report` print) goes to standard output with `print`; everything else —
progress, what was reused, what was skipped — is a log record of the
`pipeline` logger on standard error. The libraries' own records stay as they
are unless -v asks for them too.
"""

from __future__ import annotations

import argparse
import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"


def add_verbosity(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add -v (debug messages, and the libraries' own) and -q (warnings and errors only) to `parser`."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        dest="verbosity",
        const=1,
        default=0,
        help="also show debug messages, and the libraries' own",
    )
    loudness.add_argument(
        "-q", "--quiet", action="store_const", dest="verbosity", const=-1, help="show warnings and errors only"
    )
    return parser


def configure(verbosity: int = 0) -> None:
    """Send the `pipeline` logger's records to standard error in one format; `verbosity` is -1, 0 or 1 (-q, -, -v)."""
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    project = logging.getLogger("pipeline")
    project.handlers[:] = [handler]
    project.setLevel(level)
    project.propagate = False
    if verbosity > 0:
        logging.basicConfig(level=logging.INFO, format=FORMAT, datefmt=DATE_FORMAT)
