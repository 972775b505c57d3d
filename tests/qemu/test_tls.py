"""FTPS on Ferry's Cortex-M3 firmware (the board's `tls` feature: ferry-tls's
device configuration over smoltcp, a heap for the TLS connections): curl,
lftp and Python's ftplib over explicit FTPES (AUTH TLS on port 21) and
implicit FTPS (port 990), data connections under PROT P, every certificate
check against the board's test certificate; then bad TLS input, after which
the heap must be back where it was.

The firmware under test is a separate build (`cargo xtask test` builds it;
by hand `cargo xtask qemu --tls`, or FERRY_QEMU_FIRMWARE_TLS); see
conftest.py for the namespace and TAP device it boots on.
"""
from __future__ import annotations

import os
import re

import pytest

from conftest import (PASSWORD, REPO, TLS_FIGURES, USER, Firmware, boot, need_tool,
                      wait_until)

KIB = 1024
SIZE = 200 * KIB
CERT = REPO / "boards" / "qemu-mps2-an385" / "tls" / "cert.pem"
IMPLICIT_PORT = 990
# The firmware's TLS handshake timeout (boards/qemu-mps2-an385/src/tls.rs).
HANDSHAKE_TIMEOUT = 10
HEAP_RE = re.compile(r"heap: (\d+) bytes in use, high water (\d+) bytes \(no TLS connection open\)")
STACK_RE = re.compile(r"serving stack high water (\d+) bytes")


@pytest.fixture(scope="module")
def booted_tls(tmp_path_factory):
    yield from boot("tls", tmp_path_factory, engine_profile="default")


@pytest.fixture
def tls(booted_tls: Firmware) -> Firmware:
    yield from booted_tls.checked()


def heap_lines(fw: Firmware) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in HEAP_RE.findall(fw.log())]


def all_closed_then_heap(fw: Firmware) -> bool:
    """Every session that connected has disconnected, and the heap line
    (no TLS connection open) came after the last of them."""
    log = fw.log()
    if log.count(" connected\n") != log.count(" disconnected\n"):
        return False
    return log.rfind("(no TLS connection open)") > log.rfind(" disconnected\n")


def curl(fw: Firmware, *args: str):
    return fw.exec(["curl", "-sS", "--max-time", "60", "--cacert", str(CERT),
                    "-u", f"{USER}:{PASSWORD}", *args])


def test_the_firmware_says_its_rng_is_for_tests_only(tls):
    log = tls.log()
    assert "TEST-ONLY RNG" in log and "NOT SECURE" in log, log[:2000]
    assert f"implicit TLS on {tls.server_ip}:{IMPLICIT_PORT}" in log, log[:2000]


def test_ftplib_ftp_tls_two_sessions_at_once(tls):
    out = tls.client("tls-concurrent", str(CERT), "2", str(SIZE))
    for i, session in enumerate(out["sessions"]):
        assert session["same"], session
        assert any(line.endswith(" blob.bin") for line in session["list"]), session
        assert session["version"] == "TLSv1.3", session
        assert session["cipher"] in ("TLS_AES_128_GCM_SHA256",
                                     "TLS_CHACHA20_POLY1305_SHA256"), session


def test_curl_explicit_ftpes_upload_list_download(tls):
    need_tool("curl")
    local = tls.work / "curl-up.bin"
    local.write_bytes(os.urandom(SIZE))
    url = f"ftp://{tls.server_ip}/"
    curl(tls, "--ssl-reqd", "-T", str(local), url + "curl.bin")
    listing = curl(tls, "--ssl-reqd", url).stdout
    assert re.search(rf"\s{SIZE}\s.*curl\.bin$", listing, re.M), listing
    back = tls.work / "curl-down.bin"
    curl(tls, "--ssl-reqd", "-o", str(back), url + "curl.bin")
    assert back.read_bytes() == local.read_bytes()
    curl(tls, "--ssl-reqd", url, "-Q", "DELE curl.bin")


def test_curl_implicit_ftps_upload_list_download(tls):
    need_tool("curl")
    local = tls.work / "ftps-up.bin"
    local.write_bytes(os.urandom(SIZE))
    url = f"ftps://{tls.server_ip}:{IMPLICIT_PORT}/"
    curl(tls, "-T", str(local), url + "ftps.bin")
    listing = curl(tls, url).stdout
    assert re.search(rf"\s{SIZE}\s.*ftps\.bin$", listing, re.M), listing
    back = tls.work / "ftps-down.bin"
    curl(tls, "-o", str(back), url + "ftps.bin")
    assert back.read_bytes() == local.read_bytes()
    curl(tls, url, "-Q", "DELE ftps.bin")


def test_lftp_ssl_force_and_protect_data(tls):
    need_tool("lftp")
    local = tls.work / "lftp-up.bin"
    local.write_bytes(os.urandom(SIZE))
    back = tls.work / "lftp-down.bin"
    script = (
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
        f"set ssl:ca-file {CERT}; set ssl:check-hostname yes; "
        "set net:max-retries 1; set net:timeout 30; "
        f"open -u {USER},{PASSWORD} {tls.server_ip}; "
        f"put {local} -o lftp.bin; cls -l; get lftp.bin -o {back}; rm lftp.bin"
    )
    res = tls.exec(["lftp", "-c", script])
    assert "lftp.bin" in res.stdout, res.stdout
    assert back.read_bytes() == local.read_bytes()


def test_bad_tls_input_ends_that_connection_only_and_returns_the_heap(tls):
    # The heap with no connection open, after the good sessions above.
    seen = len(heap_lines(tls))
    assert seen > 0, tls.log()[-2000:]
    before = heap_lines(tls)[-1][0]
    # Garbage instead of a ClientHello, on the implicit port.
    tls.exec(["python3", "-c", GARBAGE, tls.server_ip, str(IMPLICIT_PORT)], timeout=30)
    # A record announcing more than the buffers hold (20 000 bytes).
    tls.exec(["python3", "-c", OVERSIZED, tls.server_ip, str(IMPLICIT_PORT)], timeout=30)
    # A stalled handshake, while a good session runs and finishes.
    stalled = tls.exec(["python3", "-c", STALL_START, tls.server_ip, str(IMPLICIT_PORT),
                        str(HANDSHAKE_TIMEOUT + 20)], timeout=5, check=False)
    assert stalled.returncode == 0, stalled.stderr
    out = tls.client("tls-session", str(CERT), str(64 * KIB), "during")
    assert out["same"], out
    # The stalled one is dropped after the handshake timeout; then nothing
    # is open and the heap is what it was.
    wait_until(lambda: all_closed_then_heap(tls), timeout=HANDSHAKE_TIMEOUT + 20)
    assert heap_lines(tls)[-1][0] == before, (before, heap_lines(tls)[seen - 1:])
    out = tls.client("tls-session", str(CERT), str(16 * KIB), "after")
    assert out["same"], out


def test_record_heap_and_stack_figures(tls):
    log = tls.log()
    heaps = heap_lines(tls)
    stacks = [int(n) for n in STACK_RE.findall(log)]
    assert heaps and stacks, log[-2000:]
    TLS_FIGURES["heap_high_water"] = max(h for _, h in heaps)
    TLS_FIGURES["stack_high_water"] = max(stacks)
    # Two FTPS sessions with a transfer each held 4 TLS connections of at
    # most 24 KB (docs/SECURITY.md), and the stack's tables.
    assert TLS_FIGURES["heap_high_water"] < 4 * 24 * KIB + 8 * KIB, TLS_FIGURES


# A client that sends plain FTP text where a ClientHello belongs, and waits
# for the firmware to close (an alert at most).
GARBAGE = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
s.sendall(b"USER anonymous\\r\\n" * 4)
got = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    got += chunk
assert len(got) < 64, got
"""

# A handshake record announcing 20 000 bytes, then sending them.
OVERSIZED = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)
try:
    s.sendall(bytes([0x16, 3, 1, 0x4e, 0x20]) + bytes(20000))
except OSError:
    pass
got = b""
while True:
    try:
        chunk = s.recv(4096)
    except OSError:
        break
    if not chunk:
        break
    got += chunk
assert len(got) < 64, got
"""

# Half a ClientHello, then silence: forks a child that holds the socket
# open for argv[3] seconds and returns at once.
STALL_START = """
import os, socket, sys, time
if os.fork() == 0:
    # Off the parent's pipes, so that the parent's caller does not wait.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    s.sendall(bytes([0x16, 3, 1, 2, 0, 1]))
    s.settimeout(float(sys.argv[3]))
    try:
        s.recv(1)
    except OSError:
        pass
    os._exit(0)
"""

