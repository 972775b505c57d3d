"""A flood of connections that never log in, for the lockout tests
(tests/integration/test_lockout.py against ferryd, tests/qemu's `flood`
client action against the firmware). Plain Python, no pytest: the firmware
test runs it inside its network namespace."""
import ftplib
import select
import socket
import threading
import time


class Flood:
    """Connections from several loopback addresses that read the greeting
    and never log in. A background thread reopens every one the server
    closes (as an attacker would), up to `budget` opens in all and until
    `stop()`: bounded in count and time."""

    def __init__(self, host, port, addrs, per_addr, budget=3000, reopen_after=0.02,
                 timeout=30):
        self.host = host
        self.port = port
        self.timeout = timeout
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
        s.settimeout(self.timeout)
        try:
            s.bind((addr, 0))
            s.connect((self.host, self.port))
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


def login_within(connect, seconds):
    """Calls `connect()` (connect and log in), retrying a refused attempt,
    until `seconds` have passed; the logged-in client and the time taken."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < seconds:
        f = None
        try:
            f = connect()
            return f, time.monotonic() - t0
        except (ftplib.error_temp, EOFError, ConnectionError, OSError) as e:
            last = e
            if f is not None:
                f.close()
            time.sleep(0.05)
    raise AssertionError(f"no login within {seconds} s: {last!r}")
