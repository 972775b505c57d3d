"""Fixtures for Ferry's end-to-end tests.

Run from the repository root:

    cargo build --release -p ferryd
    python3 -m pytest -q tests/integration

`FERRYD=/abs/path/to/ferryd` picks another binary. Each test gets its own
ferryd on free loopback ports with a temporary root and user test/secret;
the process is always terminated (then killed) at teardown, and a test fails
if ferryd died or panicked while it ran.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ferry_helpers import (  # noqa: E402
    Ferryd,
    ServerStartError,
    ferryd_path,
    has_ipv6_loopback,
)

TEST_DEADLINE = 120  # seconds: a hung test fails instead of hanging the suite


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A per-test watchdog (SIGALRM), so a hang shows where it hung."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"test ran longer than {TEST_DEADLINE}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_DEADLINE)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def ferryd_bin() -> Path:
    p = ferryd_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"ferryd binary not found at {p}: run `cargo build --release -p ferryd` "
                    f"or set FERRYD=/abs/path/to/ferryd")
    return p


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def start_server(ferryd_bin, root, tmp_path, request):
    """Factory: start_server(args=[...], ipv6=False, users=..., config=fn).
    Every server it starts is stopped at teardown."""
    servers = []
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    def start(args=(), **kw):
        s = Ferryd(ferryd_bin, root, work)
        servers.append(s)
        if kw.pop("ipv6", False):
            if not has_ipv6_loopback():
                pytest.skip("this machine has no ::1")
            kw["ipv6"] = True
        try:
            return s.start(args=args, **kw)
        except ServerStartError as e:
            pytest.fail(str(e))

    yield start

    problems = []
    for s in servers:
        if s.proc is None:
            continue
        died = s.proc.poll()
        s.stop()
        log = s.stderr()
        expected_exit = getattr(s, "expected_exit", False)
        if died is not None and not expected_exit:
            problems.append(f"ferryd exited by itself during the test (code {died})")
        if "panicked" in log:
            problems.append("ferryd panicked")
        failed = getattr(request.node, "rep_call", None)
        if problems or (failed is not None and failed.failed):
            print(f"---- ferryd stderr ({s.err_path}) last 6000 chars ----")
            print(log[-6000:])
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def server(start_server):
    """ferryd with user test/secret on 127.0.0.1 only."""
    return start_server()


@pytest.fixture
def server46(start_server):
    """ferryd listening on 127.0.0.1 and [::1]."""
    return start_server(ipv6=True)


@pytest.fixture
def ftp(server):
    """A logged-in ftplib client (passive, binary after the first transfer)."""
    f = server.connect()
    yield f
    try:
        f.close()
    except Exception:
        pass
