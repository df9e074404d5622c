"""nginx with the project's `deploy/nginx.conf` in front of a running server, started and stopped:
for the tests and the serving benchmark.

    with scoring_server.running(model) as server, reverse_proxy.running(server.url) as url:
        ...  # url: http://127.0.0.1:<a free port>, passing requests on to server.url

The configuration is the file users include, its two addresses changed to
free ones; nginx runs in the foreground with every file it writes in a
temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.analysis.scoring_server import HOST, ServerError, free_port, wait_for

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
LISTEN, UPSTREAM = "127.0.0.1:8080", "127.0.0.1:5001"  # the addresses as the file has them
START_TIMEOUT = 30  # seconds


def nginx() -> str | None:
    """The nginx executable (Debian puts it in /usr/sbin, which may not be on PATH), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


@contextmanager
def running(upstream: str) -> Iterator[str]:
    """nginx on a free port of 127.0.0.1, passing requests on to `upstream` (http://host:port), until left."""
    executable = nginx()
    if executable is None:
        raise ServerError("nginx is not installed (Debian: apt-get install nginx-light)")
    url = f"http://{HOST}:{free_port()}"
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site.conf"
        site.write_text(
            CONFIG.read_text().replace(LISTEN, urlsplit(url).netloc).replace(UPSTREAM, urlsplit(upstream).netloc)
        )
        main = Path(folder) / "nginx.conf"
        main.write_text(main_config(Path(folder), site))
        log = Path(folder) / "error.log"
        process = subprocess.Popen(
            [executable, "-p", folder, "-c", str(main), "-e", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def output() -> str:
            return log.read_text(errors="replace") if log.exists() else ""

        try:
            wait_for(f"{url}/ping", process, output, "nginx", START_TIMEOUT)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def main_config(folder: Path, site: Path) -> str:
    """A whole nginx configuration around `site` that writes only under `folder`."""
    temporary = "\n".join(
        f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"};
events {{}}
http {{
    access_log off;
{temporary}
    include {site};
}}
"""
