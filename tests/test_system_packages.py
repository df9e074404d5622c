"""scripts/system-packages: installs what it can, and otherwise says in one line what to install."""

import os
import shutil
import subprocess

import pytest
from conftest import REPO

SCRIPT = REPO / "scripts" / "system-packages"


@pytest.fixture
def machine(tmp_path):
    """A PATH of stand-ins: `dpkg-query` reporting the packages in `installed`, `id -u`, and apt-get if asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "grep", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "apt.log"

    def make(installed=(), uid=0, apt=None, sudo=False):
        write(
            bin_dir / "dpkg-query",
            f'for p in {" ".join(installed)}; do [ "$3" = "$p" ] && echo "install ok installed"; done; exit 0',
        )
        write(bin_dir / "id", f"echo {uid}")
        if apt is not None:
            write(bin_dir / "apt-get", f'echo "$@" >> {log}; exit {0 if apt == "works" else 100}')
        if sudo:
            write(bin_dir / "sudo", '[ "$1" = -n ] && shift; [ "$1" = true ] && exit 0; exec "$@"')

        def run(*packages):
            result = subprocess.run(
                ["sh", SCRIPT, *packages], env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30
            )
            return result, log.read_text().splitlines() if log.exists() else []

        return run

    return make


def write(path, body):
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_nothing_missing_is_silent(machine):
    (result, apt) = machine(installed=("graphviz",), apt="works")("graphviz")
    assert (result.returncode, result.stdout, apt) == (0, "", [])


def test_root_installs_only_what_is_missing(machine):
    (result, apt) = machine(installed=("graphviz",), apt="works")("graphviz", "dataset-fashion-mnist")
    assert result.returncode == 0 and result.stdout == "setup: installing Debian packages: dataset-fashion-mnist\n"
    assert apt == ["update -qq", "install -y -qq dataset-fashion-mnist"]


def test_sudo_without_a_password_is_used(machine):
    (result, apt) = machine(uid=1000, apt="works", sudo=True)("graphviz")
    assert result.returncode == 0 and apt == ["update -qq", "install -y -qq graphviz"]


def test_without_root_or_sudo_it_says_what_to_install_and_goes_on(machine):
    (result, apt) = machine(uid=1000, apt="works")("graphviz", "dataset-fashion-mnist")
    assert result.returncode == 0 and apt == []
    assert result.stdout.splitlines() == [
        "setup: cannot install Debian packages here (not root, no sudo without a password); "
        "run: sudo apt-get install graphviz dataset-fashion-mnist"
    ]


def test_a_failed_install_is_one_line_and_not_an_error(machine):
    (result, _) = machine(apt="fails")("graphviz")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == (
        "setup: apt-get could not install graphviz (offline?); run: sudo apt-get install graphviz"
    )


def test_not_debian_is_one_line(machine):
    (result, _) = machine()("graphviz")
    assert result.returncode == 0 and result.stdout.startswith("setup: not a Debian system; install")


def test_make_setup_and_make_test_use_it():
    makefile = (REPO / "Makefile").read_text()
    assert "scripts/system-packages $(SYSTEM_PACKAGES)" in makefile
    assert "scripts/system-packages $(TEST_SYSTEM_PACKAGES)" in makefile
    assert os.access(SCRIPT, os.X_OK)
