"""A blocking FTP control connection and NOOP round-trip timing, shared by
`brute_force.py` and `latency.py` (the bench's latency rows).

Only the control connection: replies are read whole (multi-line ones too)
and their codes returned; every socket operation has a timeout.
"""
import socket
import time

TIMEOUT = 20  # seconds, for each socket operation


class Control:
    """One control connection to 127.0.0.1:PORT."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def reply(self):
        line = self.file.readline()
        if not line:
            raise EOFError
        code = line[:3]
        while line[3:4] == b"-":
            line = self.file.readline()
            if not line:
                raise EOFError
            if line[:3] == code and line[3:4] == b" ":
                break
        return int(code)

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()

    def login(self, user, password):
        """Reads the greeting, sends USER (and PASS when asked: vsftpd's
        anonymous user is in at USER); raises unless logged in."""
        if self.reply() != 220:
            raise RuntimeError("no 220 greeting")
        code = self.cmd(f"USER {user}")
        if code == 331:
            code = self.cmd(f"PASS {password}")
        if code != 230:
            raise RuntimeError(f"login as {user} answered {code}")

    def close(self):
        self.file.close()
        self.sock.close()


def percentile(values, p):
    """The p-quantile of `values` (seconds), in ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def summary(times):
    """p50, p99 and worst of round trips (seconds), in ms, rounded."""
    return {"p50": round(percentile(times, 0.5), 3),
            "p99": round(percentile(times, 0.99), 3),
            "max": round(max(times) * 1000, 3)}


def noops(port, seconds, user="test", password="secret", pause=0.005, host="127.0.0.1"):
    """Logs in and sends a NOOP every `pause` seconds for `seconds`: each
    round trip (send to the whole reply), in seconds."""
    c = Control(port, host)
    c.login(user, password)
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        code = c.cmd("NOOP")
        times.append(time.perf_counter() - t)
        if code != 200:
            raise RuntimeError(f"NOOP answered {code}")
        time.sleep(pause)
    c.cmd("QUIT")
    c.close()
    return times


def guess_passwords(port, user, stop, tried, lock, host="127.0.0.1"):
    """Until `stop` is set: USER `user`, PASS with a wrong password, again
    and again, reconnecting when the server closes; counts the 530s in
    `tried[0]` under `lock`."""
    while not stop.is_set():
        try:
            c = Control(port, host)
            c.reply()
            while not stop.is_set():
                if c.cmd(f"USER {user}") != 331:
                    break
                if c.cmd("PASS wrong") != 530:
                    break
                with lock:
                    tried[0] += 1
            c.close()
        except (OSError, EOFError):
            time.sleep(0.01)
