"""Fixtures for Ferry's end-to-end tests.

Run from the repository root:

    cargo build --release -p ferryd
    python3 -m pytest -q tests/integration

`FERRYD=/abs/path/to/ferryd` picks another binary. Each test gets its own
ferryd on free loopback ports with user test/secret, serving fresh storage
of each backend in `FERRY_BACKENDS` (`dir,littlefs,fat,sdfat`, the default:
a temporary directory, a littlefs image, a FAT image, a FAT image through
embedded-sdmmc; see ferry_store.py).
Tests reach the files through the `store` fixture, never by path. A test
about something only some backends have declares it with
`@pytest.mark.needs("capability")` (fields of `ferry_store.Caps`) and runs
on those only; the summary lists what was left out where.

The process is always terminated (then killed) at teardown, and a test fails
if ferryd died or panicked while it ran.
"""
from __future__ import annotations

import importlib.util
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
    tool,
)
from ferry_store import CAPS, Caps, DirStore, make_store, selected_backends  # noqa: E402

TEST_DEADLINE = 120  # seconds: a hung test fails instead of hanging the suite

# Tests left out on some backends: {(backends, capabilities): [test names]}.
_LEFT_OUT = {}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs(*capabilities): run only on the backends that have all these "
                   "capabilities (fields of ferry_store.Caps, e.g. host_dir)")


def pytest_generate_tests(metafunc):
    """Every test that reaches a server or its storage runs once per backend
    that has what its `needs` marker names."""
    if "backend" not in metafunc.fixturenames:
        return
    needs = [c for m in metafunc.definition.iter_markers("needs") for c in m.args]
    for c in needs:
        if c not in Caps.__dataclass_fields__:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown capability {c!r}")
    chosen = selected_backends()
    run = [b for b in chosen if all(getattr(CAPS[b], c) for c in needs)]
    left = tuple(b for b in chosen if b not in run)
    if left:
        _LEFT_OUT.setdefault((left, tuple(needs)), []).append(metafunc.definition.name)
    metafunc.parametrize("backend", run, indirect=True)


def pytest_terminal_summary(terminalreporter):
    if not _LEFT_OUT:
        return
    terminalreporter.section("tests left out on some backends (by design)")
    for (left, needs), names in sorted(_LEFT_OUT.items()):
        terminalreporter.write_line(
            f"not on {', '.join(left)} (needs {', '.join(needs)}): {len(names)}: "
            f"{', '.join(sorted(names))}")


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
def backend(request) -> str:
    """The backend this run of the test serves: dir, littlefs, fat or sdfat."""
    return request.param


@pytest.fixture
def store(backend, tmp_path):
    """What ferryd serves (fresh per test), and the test's way to it."""
    if backend in ("fat", "sdfat"):
        tool("mdir")  # skips (fails in CI) without mtools
    if backend == "littlefs":
        if importlib.util.find_spec("littlefs") is None:
            msg = ("the Python package littlefs-python is missing (run `cargo xtask setup`, "
                   "or pip install -r tests/integration/requirements.txt)")
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(msg)
            pytest.skip(msg)
    return make_store(backend, tmp_path)


@pytest.fixture
def root(store) -> Path:
    """The served host directory, for tests marked `needs("host_dir")`."""
    if not isinstance(store, DirStore):
        pytest.fail("this test uses the host directory: mark it @pytest.mark.needs(\"host_dir\")")
    return store.root


@pytest.fixture
def start_server(ferryd_bin, store, tmp_path, request):
    """Factory: start_server(args=[...], ipv6=False, users=..., config=fn).
    Every server it starts is stopped at teardown."""
    servers = []
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)

    def start(args=(), **kw):
        s = Ferryd(ferryd_bin, store, work)
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
    if servers and not problems and hasattr(store, "check"):
        # With every ferryd stopped, another implementation reads it all.
        try:
            store.check()
        except Exception as e:  # noqa: BLE001 - any failure of the foreign reader
            problems.append(f"the image does not read back whole: {e!r}")
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
