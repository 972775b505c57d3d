"""Lockout resistance (issue 12): connections that never log in cannot keep
users out. ferryd's defaults: 64 sessions, 8 per address, a 30 s login
timeout; with the table full, a new connection evicts the oldest session
that has not logged in, from the address that holds most of them."""
import ftplib
import socket
import sys
import time
from pathlib import Path

import pytest

from ferry_helpers import TIMEOUT, rand_bytes, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flood import Flood, login_within  # noqa: E402  (tests/flood.py)

# 8 flooding addresses x 8 connections: ferryd's whole table (64) and
# its default per-address limit (8).
FLOOD_ADDRS = [f"127.0.0.{i}" for i in range(2, 10)]
PER_ADDR = 8
ROUNDS = 5
LOGIN_WITHIN = 2.0


@pytest.mark.needs("host_dir")
@pytest.mark.parametrize("workers", ["1", "default"])
def test_a_flood_of_idle_connections_does_not_lock_users_out(start_server, store, workers):
    # ferryd's defaults; with one worker, the table the flood fills is the
    # one the logins need. With several (one per core), each worker has its
    # own table and counts only the others' logged-in sessions (it cannot
    # evict theirs): the logins get in by eviction or by room elsewhere.
    s = start_server([] if workers == "default" else ["--workers", workers])
    data = rand_bytes(64 << 10, 12)
    store.write_bytes("f.bin", data)
    before = s.connect()
    assert before.retr_bytes("f.bin") == data

    flood = Flood("127.0.0.1", s.port, FLOOD_ADDRS, PER_ADDR)
    slots = len(FLOOD_ADDRS) * PER_ADDR
    try:
        # Every slot is taken: 63 flood sessions and `before`.
        flood.fill(slots - 1)
        flood.settle(slots - 1)
        assert flood.greeted == slots - 1, (flood.greeted, flood.refused)
        flood.start()
        times = []
        for r in range(ROUNDS):
            f, took = login_within(s.connect, LOGIN_WITHIN)
            times.append(took)
            # The flood reconnects what was evicted meanwhile (each
            # reconnection evicts another flood connection): not this one.
            time.sleep(0.3)
            assert f.retr_bytes("f.bin") == data
            f.stor_bytes(f"up{r}.bin", data)
            f.quit()
            f.close()
            # The session from before the flood keeps working throughout.
            assert before.cmd("NOOP")[0] == 200
            assert before.retr_bytes("f.bin") == data
            time.sleep(0.3)
        with flood.lock:
            evicted, opened = flood.evicted, flood.opened
        # The flood really held the table: the logins had to evict.
        if workers == "1":
            assert evicted >= ROUNDS, (evicted, opened)
        print(f"\nlogins under a flood of {opened} connections: "
              f"{', '.join(f'{t * 1000:.0f} ms' for t in times)}; {evicted} evicted")
    finally:
        flood.stop()
    for r in range(ROUNDS):
        assert store.read_bytes(f"up{r}.bin") == data
    assert before.cmd("NOOP")[0] == 200
    before.quit()
    before.close()


@pytest.mark.needs("host_dir")
def test_a_flood_on_one_worker_does_not_lock_out_another_workers_clients(start_server, store):
    """Two workers: the kernel gives a client address to worker (address
    mod 2), so a flood from even addresses fills worker 0's table. A client
    from 127.0.0.1 (worker 1) still logs in: a worker counts only the other
    workers' logged-in sessions against --max-sessions, since it cannot
    evict theirs."""
    if sys.platform != "linux":
        pytest.skip("several workers need Linux")
    s = start_server(["--workers", "2"])
    even = [f"127.0.0.{i}" for i in range(2, 18, 2)]
    flood = Flood("127.0.0.1", s.port, even, PER_ADDR)
    try:
        flood.fill(len(even) * PER_ADDR)
        flood.settle(len(even) * PER_ADDR)
        assert flood.greeted == len(even) * PER_ADDR, (flood.greeted, flood.refused)
        flood.start()
        for _ in range(3):
            f, took = login_within(s.connect, LOGIN_WITHIN)
            assert f.cmd("NOOP")[0] == 200
            f.quit()
            f.close()
    finally:
        flood.stop()


@pytest.mark.needs("host_dir")
def test_login_timeout_closes_a_connection_that_does_not_log_in(start_server):
    s = start_server(["--login-timeout", "1"])
    raw = s.raw()
    assert raw.reply()[0] == 220
    assert raw.cmd("USER test")[0] == 331
    t0 = time.monotonic()
    code, lines = raw.reply()
    assert code == 421 and b"Login timeout" in lines[-1], lines
    assert raw.at_eof(timeout=5)
    assert time.monotonic() - t0 < 3
    raw.close()
    # A logged-in session is not subject to it.
    f = s.connect()
    time.sleep(1.5)
    assert f.cmd("NOOP")[0] == 200
    f.close()


@pytest.mark.needs("host_dir")
def test_quit_then_reconnect_at_once_is_never_refused(start_server):
    """Issue 15 (4): a session that has answered QUIT no longer counts
    against its address."""
    s = start_server(["--max-per-ip", "1"])
    refused = 0
    for _ in range(200):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT)
        f = c.makefile("rb")
        greeting = f.readline()
        if greeting.startswith(b"421"):
            refused += 1
        else:
            assert greeting.startswith(b"220"), greeting
            c.sendall(b"QUIT\r\n")
            assert f.readline().startswith(b"221")
        f.close()
        c.close()
    assert refused == 0, f"{refused} of 200 reconnects refused"


@pytest.mark.needs("host_dir")
def test_default_per_address_limit_is_8(start_server):
    s = start_server()
    held = [s.connect() for _ in range(8)]
    with pytest.raises(ftplib.error_temp) as e:
        s.connect(login=False)
    assert "from your address" in str(e.value)
    for f in held:
        f.close()
    assert wait_until(lambda: _try_login(s), timeout=10)


def _try_login(s):
    try:
        s.connect().close()
        return True
    except (ftplib.error_temp, EOFError, ConnectionError):
        return False
