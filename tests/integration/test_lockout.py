"""Lockout resistance (issue 12): connections that never log in cannot keep
users out. ferryd's defaults: 64 sessions, 8 per address, a 30 s login
timeout; with the table full, a new connection evicts the oldest session
that has not logged in, from the address that holds most of them."""
import ftplib
import select
import socket
import threading
import time

import pytest

from ferry_helpers import TIMEOUT, rand_bytes, wait_until

# 8 flooding addresses x 8 connections: ferryd's whole table (64) and
# its default per-address limit (8).
FLOOD_ADDRS = [f"127.0.0.{i}" for i in range(2, 10)]
PER_ADDR = 8
ROUNDS = 5
LOGIN_WITHIN = 2.0


class Flood:
    """Connections from several loopback addresses that read the greeting
    and never log in. A background thread reopens every one the server
    closes (as an attacker would), up to `budget` opens in all and until
    `stop()`: bounded in count and time."""

    def __init__(self, port, addrs, per_addr, budget=3000, reopen_after=0.02):
        self.port = port
        self.addrs = addrs
        self.per_addr = per_addr
        self.budget = budget
        self.opened = 0
        self.greeted = 0
        self.refused = 0
        self.evicted = 0
        self.socks = {}  # socket -> its address
        self.reopen_after = reopen_after
        self.pending = []  # (when, address) to reopen
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = None

    def _open(self, addr):
        if self.opened >= self.budget:
            return
        self.opened += 1
        s = socket.socket()
        s.settimeout(TIMEOUT)
        try:
            s.bind((addr, 0))
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
        except OSError:
            s.close()
            return
        self.socks[s] = addr

    def fill(self, count):
        for i in range(count):
            self._open(self.addrs[i // self.per_addr % len(self.addrs)])

    def _service(self, timeout):
        """Reads what the server sent; a closed connection is counted and
        reopened."""
        now = time.monotonic()
        due = [a for t, a in self.pending if t <= now]
        self.pending = [(t, a) for t, a in self.pending if t > now]
        for addr in due:
            if not self.done.is_set():
                self._open(addr)
        socks = list(self.socks)
        if not socks:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(socks, [], [], timeout)
        for s in readable:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data.startswith(b"220"):
                self.greeted += 1
            if b"421 Too many" in data:
                self.refused += 1
            if b"421 Server full" in data:
                self.evicted += 1
            if data:
                continue
            addr = self.socks.pop(s)
            s.close()
            self.pending.append((time.monotonic() + self.reopen_after, addr))

    def settle(self, want_greeted):
        deadline = time.monotonic() + 10
        while self.greeted + self.refused < want_greeted and time.monotonic() < deadline:
            self._service(0.05)

    def start(self):
        def run():
            deadline = time.monotonic() + 60
            while not self.done.is_set() and time.monotonic() < deadline:
                with self.lock:
                    self._service(0.02)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self):
        self.done.set()
        if self.thread:
            self.thread.join(timeout=10)
        for s in list(self.socks):
            s.close()
        self.socks.clear()


def login_within(s, seconds):
    """Connects and logs in from 127.0.0.1, retrying a refused attempt,
    until `seconds` have passed; the logged-in client and the time taken."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds:
        f = None
        try:
            f = s.connect()
            return f, time.monotonic() - t0
        except (ftplib.error_temp, EOFError, ConnectionError, OSError) as e:
            last = e
            if f is not None:
                f.close()
            time.sleep(0.05)
    raise AssertionError(f"no login within {seconds} s: {last!r}")


@pytest.mark.needs("host_dir")
def test_a_flood_of_idle_connections_does_not_lock_users_out(start_server, store):
    s = start_server()  # ferryd's defaults
    data = rand_bytes(64 << 10, 12)
    store.write_bytes("f.bin", data)
    before = s.connect()
    assert before.retr_bytes("f.bin") == data

    flood = Flood(s.port, FLOOD_ADDRS, PER_ADDR)
    slots = len(FLOOD_ADDRS) * PER_ADDR
    try:
        # Every slot is taken: 63 flood sessions and `before`.
        flood.fill(slots - 1)
        flood.settle(slots - 1)
        assert flood.greeted == slots - 1, (flood.greeted, flood.refused)
        flood.start()
        times = []
        for r in range(ROUNDS):
            f, took = login_within(s, LOGIN_WITHIN)
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
