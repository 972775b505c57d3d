"""What the suites that boot a server of their own share (tests/qemu,
tests/tap, tests/w5500): skip-or-fail for a missing need, and polling.

Each conftest puts this directory on `sys.path` and wraps `unavailable`
and `need_tool` with the name of its suite.
"""
from __future__ import annotations

import os
import shutil
import time

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


def suite(name: str):
    """`unavailable(reason)` and `need_tool(tool)` for the suite `name`."""
    return (lambda reason: unavailable(name, reason),
            lambda tool: need_tool(name, tool))
