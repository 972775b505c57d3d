"""Fixtures for the Windows smoke test: ferryd.exe, built for
x86_64-pc-windows-gnu, run under Wine on loopback, against curl from Linux.

Run from the repository root (`cargo xtask test` builds ferryd.exe first):

    python3 -m pytest -q tests/windows

`FERRYD_EXE=/abs/path/to/ferryd.exe` picks another binary; `WINEPREFIX`
another Wine prefix (default `target/windows/wine-prefix`, made at the first
run with `wineboot --init`, which takes a while, and kept for the next). Wine
runs headless: no display is needed for a console program, `WINEDEBUG=-all`
keeps its log quiet, and Mono and Gecko are not installed (nothing here uses
.NET or HTML).

ferryd.exe serves a temporary directory, passed as a Windows path
(`Z:\\...`: Wine maps Z: to /, so the test reads the files it served from
Linux). At the end it must stop on Ctrl-C (SIGINT, which Wine turns into a
console CTRL_C_EVENT) with exit code 0, and no process of the prefix may be
left once `wineserver -k` has run.

Wine 8 (Debian 12) lacks bcryptprimitives.dll, whose ProcessPrng Rust's std
calls on Windows 10 and later: the prefix gets a stand-in built from
`bcryptprimitives.c` (a Wine that has the DLL keeps its own).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import (  # noqa: E402  (tests/harness.py)
    Served, free_port, stop_process, suite, wait_until)

unavailable, need_tool = suite("Windows smoke test")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

USER = "smoke"
PASSWORD = "wine:secret"   # a ':' inside, as --user allows
SERVER_IP = "127.0.0.1"
BOOT_TIMEOUT = 240      # seconds for `wineboot --init` of a new prefix
BOOT_ATTEMPTS = 3       # boots of a new prefix before the test fails
READY_TIMEOUT = 60      # seconds for ferryd.exe to print "listening on"
COMMAND_TIMEOUT = 60    # seconds for one curl run
STOP_TIMEOUT = 20       # seconds for ferryd.exe to exit after Ctrl-C
KILL_TIMEOUT = 20       # seconds for `wineserver -k` to leave no process
FATAL_MARKERS = ("panicked", "ferryd: ")
MINGW_GCC = "x86_64-w64-mingw32-gcc"


def exe_path() -> Path:
    given = os.environ.get("FERRYD_EXE")
    path = Path(given) if given else (
        REPO / "target" / "windows" / "x86_64-pc-windows-gnu" / "release" / "ferryd.exe")
    if not path.is_file():
        pytest.fail(f"ferryd.exe not found at {path}: `cargo xtask test` builds it "
                    f"(or set FERRYD_EXE)", pytrace=False)
    return path.resolve()


def prefix_path() -> Path:
    given = os.environ.get("WINEPREFIX")
    return Path(given).resolve() if given else REPO / "target" / "windows" / "wine-prefix"


def wine_env(prefix: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "WINEPREFIX": str(prefix),
        "WINEDEBUG": "-all",
        # No Mono, no Gecko: their installers would ask (and download).
        "WINEDLLOVERRIDES": "mscoree,mshtml=",
        "RUST_BACKTRACE": "1",
    })
    # A console program needs no display; none is wanted either.
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def windows_path(path: Path) -> str:
    """`path` as Wine's Windows programs see it (Z: is /)."""
    return "Z:" + str(path).replace("/", "\\")


def prefix_processes(prefix: Path) -> list[str]:
    """The processes (pid and command line) running in Wine prefix `prefix`."""
    wanted = f"WINEPREFIX={prefix}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if wanted in environ and cmdline:
            found.append(f"{entry.name}: {cmdline.decode(errors='replace').strip()}")
    return found


def wineserver_kill(prefix: Path) -> list[str]:
    """Ends every process of `prefix`; what is still running after that."""
    subprocess.run(["wineserver", "-k"], env=wine_env(prefix), capture_output=True,
                   timeout=KILL_TIMEOUT)
    wait_until(lambda: not prefix_processes(prefix), KILL_TIMEOUT)
    return prefix_processes(prefix)


def boot(prefix: Path) -> str | None:
    """Makes Wine prefix `prefix` with `wineboot --init`: None once its
    registry is written, else what went wrong (the prefix is then removed)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    try:
        res = subprocess.run(["wine", "wineboot", "--init"], env=wine_env(prefix),
                             capture_output=True, text=True, timeout=BOOT_TIMEOUT)
        # wineboot returns before its helpers (services, device drivers) are
        # done, and the registry is written when they are: wait for them.
        subprocess.run(["wineserver", "-w"], env=wine_env(prefix), timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        failure = f"wineboot --init took over {BOOT_TIMEOUT} s"
    else:
        if res.returncode == 0 and (prefix / "system.reg").is_file():
            return None
        failure = f"wineboot --init failed ({res.returncode}):\n{res.stderr[-3000:]}"
    wineserver_kill(prefix)
    shutil.rmtree(prefix, ignore_errors=True)
    return failure


@pytest.fixture(scope="session")
def prefix() -> Path:
    """A booted Wine prefix, made now if there is none yet.

    Wine 8's `wineboot --init` now and then exits with 1 on a loaded machine
    (CI saw it once, after the same messages a good boot prints; it has not
    been seen here): a failed boot is reported and tried again from nothing,
    up to BOOT_ATTEMPTS times, and the test fails if none succeeds."""
    for tool in ("wine", "wineserver", "curl"):
        need_tool(tool)
    prefix = prefix_path()
    if not (prefix / "system.reg").is_file():
        failures = []
        started = time.monotonic()
        while len(failures) < BOOT_ATTEMPTS and (failure := boot(prefix)) is not None:
            failures.append(failure)
            print(f"\nboot {len(failures)} of {BOOT_ATTEMPTS} failed: {failure}")
        if len(failures) == BOOT_ATTEMPTS:
            pytest.fail("\n\n".join(failures), pytrace=False)
        print(f"\nmade Wine prefix {prefix} in {time.monotonic() - started:.1f} s")
    add_process_prng(prefix)
    return prefix


def add_process_prng(prefix: Path):
    """Puts bcryptprimitives.c, built with mingw-w64, into the prefix when
    its Wine has no bcryptprimitives.dll (Wine 8: see that file)."""
    dll = prefix / "drive_c" / "windows" / "system32" / "bcryptprimitives.dll"
    if dll.is_file():
        return
    need_tool(MINGW_GCC)
    res = subprocess.run([MINGW_GCC, "-O2", "-shared", "-s", "-o", str(dll),
                          str(HERE / "bcryptprimitives.c"), "-lbcrypt"],
                         capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if res.returncode != 0:
        pytest.fail(f"cannot build bcryptprimitives.dll:\n{res.stderr[-3000:]}", pytrace=False)
    print(f"\nthis Wine has no bcryptprimitives.dll: put a stand-in into {dll}")


@dataclass
class Server(Served):
    """ferryd.exe running under Wine and the directory it serves."""

    root: Path
    proc: subprocess.Popen
    log_path: Path
    port: int
    prefix: Path
    server_ip: str = SERVER_IP
    ns: str | None = None

    name = "ferryd.exe"
    user = USER
    password = PASSWORD
    command_timeout = COMMAND_TIMEOUT

    def curl(self, path: str, *args: str) -> subprocess.CompletedProcess:
        """curl on `ftp://user:password@server/path` with `args`."""
        url = f"ftp://{self.server_ip}:{self.port}/{path}"
        return self.exec(["curl", "--silent", "--show-error", "--fail",
                          "--max-time", str(COMMAND_TIMEOUT),
                          "--user", f"{self.user}:{self.password}", *args, url])


def stop(proc: subprocess.Popen) -> int | None:
    """Ctrl-C, as Wine delivers it; the exit code, or None if it hung."""
    return stop_process(proc, signal.SIGINT, STOP_TIMEOUT)


def start(prefix: Path, base: Path, storage: list[str]) -> Server:
    """ferryd.exe serving `storage` (its --root or --fs options) with the
    test's user on a free loopback port, once it listens; its log and the
    working directory are in `base`."""
    base.mkdir(parents=True, exist_ok=True)
    log_path = base / "ferryd.log"
    port = free_port(SERVER_IP)
    cmd = ["wine", str(exe_path()), *storage,
           "--listen", f"{SERVER_IP}:{port}", "--user", f"{USER}:{PASSWORD}",
           "--tls-self-signed"]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=wine_env(prefix), cwd=base)
    server = Server(base / "root", proc, log_path, port, prefix)
    ready = wait_until(lambda: f"listening on ftp://{SERVER_IP}:{port}" in server.log()
                       or not server.alive(), READY_TIMEOUT)
    if not ready or not server.alive():
        stop(proc)
        pytest.fail(f"ferryd.exe did not start:\n{server.log()}", pytrace=False)
    print(f"\nferryd.exe listening after {time.monotonic() - started:.1f} s")
    return server


def finish(server: Server):
    """Stops `server` with Ctrl-C; fails unless it exited 0 after logging a
    clean stop, without a panic or an error."""
    code = stop(server.proc)
    log = server.log()
    if code != 0:
        pytest.fail(f"ferryd.exe exited with {code} after Ctrl-C:\n{log[-3000:]}",
                    pytrace=False)
    if "stopped" not in log:
        pytest.fail(f"ferryd.exe did not log its clean stop:\n{log[-3000:]}", pytrace=False)
    for marker in FATAL_MARKERS:
        if marker in log:
            pytest.fail(f"ferryd.exe logged {marker!r}:\n{log[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def served(prefix: Path, tmp_path_factory) -> Server:
    """ferryd.exe serving a directory it creates, shared by the tests;
    stopped with Ctrl-C at the end, which must end it cleanly and leave no
    Wine process behind."""
    base = tmp_path_factory.mktemp("windows")
    server = start(prefix, base, ["--root", windows_path(base / "root")])
    try:
        yield server
        finish(server)
    finally:
        stop(server.proc)
        left = wineserver_kill(prefix)
    if left:
        pytest.fail("Wine processes left after wineserver -k:\n" + "\n".join(left),
                    pytrace=False)


@pytest.fixture
def ferryd(served: Server) -> Server:
    """The running server, checked to be alive before and after a test."""
    yield from served.checked()
