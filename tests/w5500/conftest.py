"""Fixtures for the W5500 test: host-w5500 (Ferry's engine on the W5500
adapter, over a W5500 emulated on host sockets) on loopback, and the
firmware test's client helpers run directly on this machine.

Run from the repository root:

    cargo build --release -p host-tap --bin host-w5500
    python3 -m pytest -q tests/w5500

`HOST_W5500=/abs/path/to/host-w5500` picks another binary. No root and no
namespace are needed: the emulated chip's sockets are 127.0.0.1 sockets on a
free control port and a random passive range. host-w5500 is stopped at the
end in every outcome, and must exit 0 after SIGTERM.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import (  # noqa: E402,F401  (tests/harness.py)
    Served, free_port, in_ci, stop_process, suite, wait_until)

unavailable, need_tool = suite("W5500 test")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

USER = "ferry"
PASSWORD = "w5500-secret"
SERVER_IP = "127.0.0.1"
READY_TIMEOUT = 15      # seconds for host-w5500 to print "listening on"
COMMAND_TIMEOUT = 120   # seconds for one client command
STOP_TIMEOUT = 10       # seconds for host-w5500 to exit after SIGTERM
FATAL_MARKERS = ("panicked", "host-w5500: ")


def binary_path() -> Path:
    given = os.environ.get("HOST_W5500")
    path = Path(given) if given else REPO / "target" / "release" / "host-w5500"
    if not path.is_file():
        pytest.fail(f"host-w5500 not found at {path}: `cargo build --release -p host-tap "
                    f"--bin host-w5500` (cargo xtask test builds it)", pytrace=False)
    return path


@dataclass
class Server(Served):
    """The running host-w5500 and the directory it serves."""

    work: Path
    root: Path
    proc: subprocess.Popen
    log_path: Path
    port: int
    server_ip: str = SERVER_IP
    ns: str | None = None

    name = "host-w5500"
    user = USER
    password = PASSWORD
    command_timeout = COMMAND_TIMEOUT


def stop(proc: subprocess.Popen) -> int | None:
    return stop_process(proc, signal.SIGTERM, STOP_TIMEOUT)


def passive_range_start() -> int:
    """The first of 8 passive ports, below the system's ephemeral range:
    a port there may be held by any client connection of the machine (or
    sit in TIME_WAIT after one, which the emulated chip's listener cannot
    bind over), and CI's earlier steps leave thousands of those."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = max(low - 8, 10008)
    return random.randrange(10000, top)


@pytest.fixture(scope="session")
def booted(tmp_path_factory) -> Server:
    """host-w5500 serving an empty directory, shared by all the tests."""
    binary = binary_path()
    base = tmp_path_factory.mktemp("w5500")
    root = base / "root"
    work = base / "work"
    root.mkdir()
    work.mkdir()
    log_path = base / "host-w5500.log"
    port = free_port(SERVER_IP)
    first = passive_range_start()
    cmd = [str(binary), "--ip", SERVER_IP, "--port", str(port), "--root", str(root),
           "--user", f"{USER}:{PASSWORD}", "--passive-ports", f"{first}-{first + 7}"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    server = Server(work, root, proc, log_path, port)
    code = None
    try:
        ready = wait_until(lambda: f"listening on ftp://{SERVER_IP}:{port}" in server.log()
                           or not server.alive(), READY_TIMEOUT)
        if not ready or not server.alive():
            pytest.fail(f"host-w5500 did not start:\n{server.log()}", pytrace=False)
        yield server
    finally:
        code = stop(proc)
    log = server.log()
    if code != 0:
        pytest.fail(f"host-w5500 exited with {code} after SIGTERM:\n{log[-3000:]}", pytrace=False)
    for marker in FATAL_MARKERS:
        if marker in log:
            pytest.fail(f"host-w5500 logged {marker!r}:\n{log[-4000:]}", pytrace=False)


@pytest.fixture
def fw(booted: Server) -> Server:
    """The running server, checked to be alive before and after a test."""
    yield from booted.checked()
