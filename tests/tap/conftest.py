"""Fixtures for the host-tap test: a network namespace of its own with a TAP
device, host-tap (Ferry on smoltcp) attached to it, and a way to run client
commands inside that namespace.

Run from the repository root, as root:

    cargo build --release -p host-tap
    python3 -m pytest -q tests/tap -s

`HOST_TAP=/abs/path/to/host-tap` picks another binary. Without root,
/dev/net/tun or `ip netns`, the tests are skipped with the reason, except
when CI=true, where they fail: CI must never pass by running less.

Layout: namespace `ferrytap-<pid>-<hex>` holds `lo` and TAP device `ftap0`;
the kernel side of the TAP is 10.X.Y.1/24 and host-tap answers on
10.X.Y.2. Nothing is routed out of the namespace. The namespace (and with
it the TAP device) and host-tap are removed at teardown, also when a test
or the setup fails.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import in_ci, suite, wait_until  # noqa: E402,F401  (tests/harness.py)

unavailable, need_tool = suite("host-tap test")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLIENT = HERE / "tap_client.py"

USER = "ferry"
PASSWORD = "tap-secret"
TAP = "ftap0"
READY_TIMEOUT = 15      # seconds for host-tap to print "listening on"
COMMAND_TIMEOUT = 120   # seconds for one client command
STOP_TIMEOUT = 10       # seconds for host-tap to exit after SIGTERM


def host_tap_path() -> Path:
    env = os.environ.get("HOST_TAP")
    if env:
        return Path(env).resolve()
    return REPO / "target" / "release" / "host-tap"


def run(cmd: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


@dataclass
class TapNet:
    """The namespace, its addresses and the running host-tap."""

    ns: str
    kernel_ip: str
    server_ip: str
    port: int
    root: Path | None  # the served directory (None for an image)
    work: Path
    proc: subprocess.Popen
    err_path: Path

    def exec(self, cmd: list[str], timeout: float = COMMAND_TIMEOUT, check: bool = True):
        """Runs `cmd` inside the namespace."""
        return run(["ip", "netns", "exec", self.ns, *cmd], timeout=timeout, check=check)

    def client(self, action: str, *args: str, timeout: float = COMMAND_TIMEOUT) -> dict:
        """Runs a tap_client.py action inside the namespace; its JSON result."""
        import json

        cmd = [sys.executable, str(CLIENT), action, self.server_ip, str(self.port), USER,
               PASSWORD, *args]
        res = self.exec(cmd, timeout=timeout, check=False)
        if res.returncode != 0:
            raise AssertionError(f"client {action} failed ({res.returncode}):\n{res.stderr[-3000:]}"
                                 f"\n--- host-tap stderr ---\n{self.stderr()[-3000:]}")
        return json.loads(res.stdout)

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None


def check_prerequisites() -> Path:
    if sys.platform != "linux":
        unavailable("Linux (TAP devices and network namespaces)")
    if os.geteuid() != 0:
        unavailable("root (to create a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        unavailable("/dev/net/tun")
    if shutil.which("ip") is None:
        unavailable("the `ip` command (iproute2)")
    binary = host_tap_path()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"host-tap not found at {binary}: run `cargo build --release -p host-tap` "
                    f"or set HOST_TAP=/abs/path/to/host-tap", pytrace=False)
    return binary


def wait_ready(proc: subprocess.Popen, timeout: float) -> str:
    """Reads host-tap's stdout until "listening on"; returns what it read."""
    seen: list[str] = []
    ready = threading.Event()

    def reader():
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("listening on ftp://"):
                ready.set()
        ready.set()  # EOF: host-tap exited

    threading.Thread(target=reader, daemon=True).start()
    ready.wait(timeout)
    return "".join(seen)


def die_with_parent():
    """In the child before exec: SIGTERM it if pytest dies (even by SIGKILL),
    so no host-tap outlives the test run (PR_SET_PDEATHSIG survives exec)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop(proc: subprocess.Popen) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)
            return None
    return proc.returncode


@contextmanager
def tap_server(base: Path, storage: list[str]):
    """A fresh namespace with a TAP device and host-tap serving `storage`
    (`--root DIR` or `--fs KIND:IMAGE ...`); everything is removed on exit,
    and exiting fails if host-tap panicked or did not exit cleanly."""
    binary = check_prerequisites()
    rng = random.Random()
    ns = f"ferrytap-{os.getpid()}-{rng.getrandbits(24):06x}"
    subnet = f"10.{rng.randrange(16, 250)}.{rng.randrange(1, 250)}"
    kernel_ip, server_ip = f"{subnet}.1", f"{subnet}.2"
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    err_path = base / "host-tap.stderr"
    root = Path(storage[1]) if storage[:1] == ["--root"] else None

    made = run(["ip", "netns", "add", ns], check=False)
    if made.returncode != 0:
        unavailable(f"`ip netns add` to work ({made.stderr.strip()})")
    proc = None
    net = None
    try:
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
            ["ip", "addr", "add", f"{kernel_ip}/24", "dev", TAP],
            ["ip", "link", "set", TAP, "up"],
        ):
            res = run(["ip", "netns", "exec", ns, *cmd], check=False)
            if res.returncode != 0:
                pytest.fail(f"namespace setup `{' '.join(cmd)}` failed: {res.stderr}", pytrace=False)
        with open(err_path, "wb") as err:
            # `ip netns exec` execs host-tap in this very child process.
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, str(binary), "--tap", TAP, "--ip", f"{server_ip}/24",
                 "--port", "21", *storage, "--user", f"{USER}:{PASSWORD}"],
                stdout=subprocess.PIPE, stderr=err, text=True, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        out = wait_ready(proc, READY_TIMEOUT)
        if f"listening on ftp://{server_ip}:21" not in out:
            stop(proc)
            pytest.fail(f"host-tap did not get ready:\n{out}\n{err_path.read_text(errors='replace')}",
                        pytrace=False)
        net = TapNet(ns, kernel_ip, server_ip, 21, root, work, proc, err_path)
        yield net
    finally:
        code = stop(proc) if proc is not None else 0
        run(["ip", "netns", "del", ns], check=False)
        if net is not None:
            log = net.stderr()
            if "panicked" in log:
                pytest.fail(f"host-tap panicked:\n{log[-4000:]}", pytrace=False)
            if code != 0:
                pytest.fail(f"host-tap exited with {code} after SIGTERM:\n{log[-4000:]}",
                            pytrace=False)


@pytest.fixture(scope="module")
def tapnet(tmp_path_factory) -> TapNet:
    """host-tap serving a temporary directory, shared by a module's tests."""
    base = tmp_path_factory.mktemp("tap")
    root = base / "root"
    root.mkdir()
    with tap_server(base, ["--root", str(root)]) as net:
        yield net


@pytest.fixture
def net(tapnet: TapNet) -> TapNet:
    """The module's host-tap, checked to be alive before and after a test."""
    if not tapnet.alive():
        pytest.fail(f"host-tap is not running:\n{tapnet.stderr()[-4000:]}", pytrace=False)
    yield tapnet
    if not tapnet.alive():
        pytest.fail(f"host-tap died during the test:\n{tapnet.stderr()[-4000:]}", pytrace=False)
