"""Ferry's engine on the W5500 adapter (`ferry_net::w5500_stack`), over a
W5500 emulated on host sockets (host-w5500), against real clients: Python's
ftplib, curl and lftp.

The tests are the Cortex-M3 firmware's (tests/qemu/test_firmware.py: login
and directory commands, 256 KiB byte-exact both ways in passive and active
mode, two clients at once, clients that drop mid-transfer, curl, lftp), run
here against the other stack; then what is particular to a chip with eight
hardware sockets.
"""
from __future__ import annotations

import ftplib
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "qemu"))

from conftest import PASSWORD, USER, wait_until  # noqa: E402
# The same tests as the firmware's; their `fw` fixture is this directory's.
from test_firmware import (  # noqa: E402,F401
    sessions_closed,
    test_a_client_that_drops_mid_transfer_then_a_new_client,
    test_active_transfers_of_256_kib_both_ways,
    test_curl_passive_active_rename_and_delete,
    test_login_and_directory_commands,
    test_lftp_put_get_mkdir_mv_rm,
    test_passive_transfers_of_256_kib_both_ways,
    test_two_clients_at_once,
)

SESSIONS = 3  # host-w5500's SESSIONS


def login(fw) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=30)
    ftp.connect(fw.server_ip, fw.port)
    ftp.login(USER, PASSWORD)
    return ftp


def test_a_session_beyond_the_limit_gets_421_and_the_sockets_come_back(fw):
    """Three sessions fill the engine's table; a fourth is turned away with
    421 (the chip still had a listening socket for it). When they leave,
    every hardware socket comes back: a transfer afterwards works."""
    held = [login(fw) for _ in range(SESSIONS)]
    try:
        for ftp in held:
            assert ftp.voidcmd("NOOP").startswith("200")
        extra = ftplib.FTP(timeout=30)
        try:
            extra.connect(fw.server_ip, fw.port)
            raise AssertionError("a session beyond the limit was welcomed")
        except ftplib.error_temp as e:
            assert str(e).startswith("421"), e
        finally:
            extra.close()
    finally:
        for ftp in held:
            ftp.quit()
    assert wait_until(lambda: sessions_closed(fw)), fw.log()[-3000:]
    # Every socket is free again: the next sessions can each transfer.
    for i in range(SESSIONS + 1):
        ftp = login(fw)
        data = bytes([i]) * 10_000
        ftp.storbinary(f"STOR again{i}.bin", io.BytesIO(data))
        got = bytearray()
        ftp.retrbinary(f"RETR again{i}.bin", got.extend)
        assert bytes(got) == data
        ftp.delete(f"again{i}.bin")
        ftp.quit()
    assert (fw.root / "again0.bin").exists() is False


def test_bytes_on_disk_match_what_was_sent(fw):
    """An upload through the emulated chip lands byte-exact in the served
    directory (not only as seen back through the server)."""
    data = os.urandom(300_000)
    ftp = login(fw)
    try:
        ftp.storbinary("STOR ondisk.bin", io.BytesIO(data), blocksize=7_000)
    finally:
        ftp.quit()
    assert (fw.root / "ondisk.bin").read_bytes() == data
    (fw.root / "ondisk.bin").unlink()
