"""What the suites that boot a server of their own share (tests/qemu,
tests/tap, tests/w5500): skip-or-fail for a missing need, polling, and (qemu,
w5500) the server under test with the client commands run against it.

Each conftest puts this directory on `sys.path` and wraps `unavailable`
and `need_tool` with the name of its suite.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(suite: str, reason: str):
    """Skips (or, with CI=true, fails) the test run: `suite` needs `reason`.
    CI must never pass by running less."""
    message = f"{suite} needs {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: not skipping)", pytrace=False)
    pytest.skip(message)


def need_tool(suite: str, name: str):
    if shutil.which(name) is None:
        unavailable(suite, f"`{name}` (apt-get install {name})")


def wait_until(pred, timeout=15.0, interval=0.05):
    """Polls `pred` until it returns a truthy value or `timeout` passes;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, signum: int, timeout: float) -> int | None:
    """Sends `signum` to `proc` if it still runs and waits `timeout` seconds
    for it; its exit code, or None when it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signum)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def suite(name: str):
    """`unavailable(reason)` and `need_tool(tool)` for the suite `name`."""
    return (lambda reason: unavailable(name, reason),
            lambda tool: need_tool(name, tool))


class Served:
    """A running server and its log, with commands and `tests/qemu/fw_client.py`
    actions run against it, inside the network namespace `ns` when one is
    set. A suite's dataclass derives from it and gives `proc`, `log_path`,
    `server_ip`, `port` and `ns`, and as class attributes `name` (for
    messages), `user`, `password` and `command_timeout`."""

    name = "server"
    user = ""
    password = ""
    command_timeout = 120.0
    client_script = Path(__file__).resolve().parent / "qemu" / "fw_client.py"

    @property
    def url(self) -> str:
        return f"ftp://{self.server_ip}:{self.port}/"

    def _run(self, cmd: list[str], timeout: float | None) -> subprocess.CompletedProcess:
        prefix = ["ip", "netns", "exec", self.ns] if self.ns else []
        return subprocess.run([*prefix, *cmd], capture_output=True, text=True,
                              timeout=timeout or self.command_timeout)

    def exec(self, cmd: list[str], timeout: float | None = None, check: bool = True):
        """Runs `cmd` (inside the namespace, if any)."""
        res = self._run(cmd, timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` failed ({res.returncode}):\n"
                                 f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
                                 f"\n--- {self.name} log ---\n{self.log()[-3000:]}")
        return res

    def client(self, action: str, *args: str, timeout: float | None = None) -> dict:
        """Runs a fw_client.py action; its JSON result."""
        res = self._run([sys.executable, str(self.client_script), action, self.server_ip,
                         str(self.port), self.user, self.password, *args], timeout)
        if res.returncode != 0:
            raise AssertionError(f"client {action} failed ({res.returncode}):\n"
                                 f"{res.stderr[-3000:]}"
                                 f"\n--- {self.name} log ---\n{self.log()[-3000:]}")
        return json.loads(res.stdout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def checked(self):
        """The body of a per-test fixture (`yield from server.checked()`):
        the server must be running before the test and still after it."""
        if not self.alive():
            pytest.fail(f"{self.name} is not running:\n{self.log()[-4000:]}", pytrace=False)
        yield self
        if not self.alive():
            pytest.fail(f"{self.name} stopped during the test:\n{self.log()[-4000:]}",
                        pytrace=False)
