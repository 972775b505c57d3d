"""Fixtures for the firmware test: Ferry's Cortex-M3 firmware
(boards/qemu-mps2-an385) booted in qemu-system-arm on a TAP device in a
network namespace of its own, and a way to run clients inside it.

The firmware is built in two protocol profiles of the engine, and every test
runs against each (the fixture is parametrised: `fw.profile` is "default" or
"emftp"): `default`, every command ferry-core has, and `emftp`, SEGGER
emFTP's command set with 502 to every other command.

`cargo xtask test` builds both and runs this. By hand, as root:

    cargo xtask qemu                 # builds the default profile (Ctrl-C stops QEMU)
    cargo xtask qemu --emftp         # builds the emftp profile
    python3 -m pytest -q tests/qemu

test_tls.py boots a third build, the default profile serving FTPS (the
board's `tls` feature; `cargo xtask qemu --tls`), with its own fixture.

`FERRY_QEMU_FIRMWARE`, `FERRY_QEMU_FIRMWARE_EMFTP` and
`FERRY_QEMU_FIRMWARE_TLS` (absolute paths to the ELF images) pick other
builds; `FERRY_QEMU_STACK_LIMIT` the stack limit
(else `QEMU_SERVING_STACK_LIMIT` in xtask/src/firmware.rs).

Without root, /dev/net/tun, `ip` or qemu-system-arm, the tests are skipped
with the reason, except when CI=true, where they fail.

Layout: namespace `ferryfw-<pid>-<hex>` holds `lo` and TAP device `fqemu0`
with 10.0.2.2/24 (and 10.0.2.3 and .4, the lockout test's flood addresses); QEMU attaches the firmware's LAN9118 to that TAP device
and the firmware answers on 10.0.2.15 (its default boot argument). Real
addresses on both sides, so active mode (PORT/EPRT) passes the firmware's
bounce check. Nothing is routed out of the namespace.

QEMU is stopped at the end in every outcome: the fixture's `finally`
(SIGTERM, then SIGKILL), and PR_SET_PDEATHSIG should pytest itself die.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Served, in_ci, suite, wait_until  # noqa: E402,F401  (tests/harness.py)

unavailable, need_tool = suite("firmware test")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

USER = "ferry"          # the firmware's fixed user (USER in its src/main.rs)
PASSWORD = "ferry"
FIRMWARE_IP = "10.0.2.15"
HOST_SIDE_IP = "10.0.2.2"
FLOOD_IPS = ("10.0.2.3", "10.0.2.4")  # secondary addresses of the TAP device
TAP = "fqemu0"
BOOT_TIMEOUT = 20       # seconds for the firmware to log "listening on"
COMMAND_TIMEOUT = 90    # seconds for one client command
STOP_TIMEOUT = 10       # seconds for QEMU to exit after SIGTERM
FATAL_MARKERS = ("PANIC", "HARD FAULT", "FATAL")
# The engine's protocol profiles, and the variable naming each one's ELF.
PROFILES = {"default": "FERRY_QEMU_FIRMWARE", "emftp": "FERRY_QEMU_FIRMWARE_EMFTP"}
# Every build, with the TLS one (tested by test_tls.py only).
BUILDS = {**PROFILES, "tls": "FERRY_QEMU_FIRMWARE_TLS"}
# What the firmware measured of its stack, per profile, for the summary.
STACK_FIGURES: dict[str, dict[str, int]] = {}
# What the TLS build measured (test_tls.py), for the summary.
TLS_FIGURES: dict[str, int] = {}


def firmware_path(profile: str) -> Path:
    env = os.environ.get(BUILDS[profile])
    if env:
        return Path(env).resolve()
    # Where `cargo xtask qemu --profile PROFILE` (and `cargo xtask test`)
    # leave a copy of each profile's image.
    return REPO / "target" / "firmware" / f"qemu-{profile}" / "ferry-qemu-mps2-an385"


def stack_limit() -> int:
    """The most stack the firmware may use while serving, in bytes: the
    budget `cargo xtask test` passes, else the constant in xtask itself."""
    env = os.environ.get("FERRY_QEMU_STACK_LIMIT")
    if env:
        return int(env)
    source = (REPO / "xtask" / "src" / "firmware.rs").read_text()
    found = re.search(r"QEMU_SERVING_STACK_LIMIT: u32 = (\d+);", source)
    if found is None:
        pytest.fail("QEMU_SERVING_STACK_LIMIT not found in xtask/src/firmware.rs", pytrace=False)
    return int(found.group(1))


def run(cmd: list[str], timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


@dataclass
class Firmware(Served):
    """The namespace and the running QEMU."""

    ns: str
    work: Path
    proc: subprocess.Popen
    log_path: Path

    profile: str = "default"
    server_ip: str = FIRMWARE_IP
    port: int = 21

    name = "firmware"
    user = USER
    password = PASSWORD
    command_timeout = COMMAND_TIMEOUT


def check_prerequisites(profile: str) -> Path:
    if sys.platform != "linux":
        unavailable("Linux (TAP devices and network namespaces)")
    if os.geteuid() != 0:
        unavailable("root (to create a network namespace and a TAP device)")
    if not os.path.exists("/dev/net/tun"):
        unavailable("/dev/net/tun")
    for tool, package in (("ip", "iproute2"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            unavailable(f"`{tool}` (apt-get install {package})")
    elf = firmware_path(profile)
    if not elf.is_file():
        pytest.fail(f"{profile} firmware not found at {elf}: `cargo xtask test` builds it (or "
                    f"`cargo xtask qemu --profile {profile}`), or set "
                    f"{BUILDS[profile]}=/abs/path/to/the/ELF", pytrace=False)
    return elf


def qemu_command(elf: Path, nic: str, boot_args: list[str]) -> list[str]:
    """The command line of xtask/src/qemu.rs (`qemu_command`)."""
    semihosting = ",".join(["enable=on,target=native,arg=ferry", *(f"arg={a}" for a in boot_args)])
    return ["qemu-system-arm", "-cpu", "cortex-m3", "-M", "mps2-an385",
            "-display", "none", "-serial", "null", "-monitor", "none",
            "-semihosting-config", semihosting, "-nic", nic, "-kernel", str(elf)]


def die_with_parent():
    """In the child before exec: SIGKILL it if pytest dies (even by SIGKILL),
    so no QEMU outlives the test run (PR_SET_PDEATHSIG survives exec)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_for_line(log_path: Path, proc: subprocess.Popen, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if needle in log_path.read_text(errors="replace"):
                return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


@pytest.fixture(scope="session", params=list(PROFILES))
def booted(request, tmp_path_factory) -> Firmware:
    """The firmware of one profile in QEMU on a fresh namespace, shared by
    all the tests (the RAM disk starts empty at each boot); pytest runs
    every test against one profile, then against the other."""
    yield from boot(request.param, tmp_path_factory)


def boot(profile: str, tmp_path_factory, engine_profile: str | None = None):
    """Boots build `profile` (of BUILDS) on a fresh namespace; yields the
    Firmware, stops QEMU and deletes the namespace after. The log must name
    `engine_profile` (default: `profile`)."""
    elf = check_prerequisites(profile)
    base = tmp_path_factory.mktemp(f"qemu-{profile}")
    ns = f"ferryfw-{os.getpid()}-{random.getrandbits(24):06x}"
    log_path = base / "firmware.log"
    work = base / "work"
    work.mkdir()
    made = run(["ip", "netns", "add", ns], check=False)
    if made.returncode != 0:
        unavailable(f"`ip netns add` to work ({made.stderr.strip()})")
    proc = None
    fw = None
    try:
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
            ["ip", "addr", "add", f"{HOST_SIDE_IP}/24", "dev", TAP],
            # More client addresses, for the lockout test's flood.
            *(["ip", "addr", "add", f"{a}/24", "dev", TAP] for a in FLOOD_IPS),
            ["ip", "link", "set", TAP, "up"],
        ):
            res = run(["ip", "netns", "exec", ns, *cmd], check=False)
            if res.returncode != 0:
                pytest.fail(f"namespace setup `{' '.join(cmd)}` failed: {res.stderr}", pytrace=False)
        nic = f"tap,ifname={TAP},script=no,downscript=no,model=lan9118"
        with open(log_path, "wb") as log:
            # `ip netns exec` execs QEMU in this very child process.
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *qemu_command(elf, nic, [])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        listening = f"listening on ftp://{FIRMWARE_IP}:21"
        if not wait_for_line(log_path, proc, listening, BOOT_TIMEOUT):
            pytest.fail(f"the firmware did not boot:\n{log_path.read_text(errors='replace')}",
                        pytrace=False)
        if f"({engine_profile or profile} profile)" not in log_path.read_text(errors="replace"):
            pytest.fail(f"{elf} is not the {profile} profile's firmware:\n"
                        f"{log_path.read_text(errors='replace')}", pytrace=False)
        fw = Firmware(ns, work, proc, log_path, profile)
        yield fw
    finally:
        if proc is not None:
            stop(proc)
        run(["ip", "netns", "del", ns], check=False)
        if fw is not None:
            log = fw.log()
            for marker in FATAL_MARKERS:
                if marker in log:
                    pytest.fail(f"the firmware logged {marker}:\n{log[-4000:]}", pytrace=False)


@pytest.fixture
def fw(booted: Firmware) -> Firmware:
    """The running firmware, checked to be alive before and after a test."""
    yield from booted.checked()


def pytest_terminal_summary(terminalreporter):
    """The stack figures the firmware measured, one line per profile."""
    for profile, figures in STACK_FIGURES.items():
        terminalreporter.write_line(
            f"firmware stack ({profile} profile): start-up {figures['start_up']} bytes, "
            f"serving high water {figures['serving']} bytes (limit {figures['limit']})")
    if TLS_FIGURES:
        terminalreporter.write_line(
            f"firmware with TLS: heap high water {TLS_FIGURES['heap_high_water']} bytes, "
            f"serving stack high water {TLS_FIGURES['stack_high_water']} bytes")
