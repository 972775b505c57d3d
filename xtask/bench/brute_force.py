"""NOOP round trips of a logged-in session while connections guess the
password of an argon2-hashed user (issue 15: a password check must not
stall the poll loop). Run by hand against a ferryd binary:

    python3 xtask/bench/brute_force.py target/release/ferryd [ATTACKERS] [SECONDS]

It starts that ferryd on a free loopback port (a temporary root; user
"test" with a plain password, user "victim" with an argon2 hash made by
`ferryd --hash-password`), lets ATTACKERS connections (default 40) send
wrong passwords for "victim" for SECONDS (default 20; each connection is
closed after 3 failures and reopened), and meanwhile sends a NOOP every
5 ms on a logged-in session. Prints one line of JSON: the NOOP round trip
p50, p99 and worst in ms, with no attack and under it, and how many
passwords were tried.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Control:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
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

    def close(self):
        self.file.close()
        self.sock.close()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def noops(port, seconds):
    c = Control(port)
    assert c.reply() == 220
    assert c.cmd("USER test") == 331 and c.cmd("PASS secret") == 230
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        assert c.cmd("NOOP") == 200
        times.append(time.perf_counter() - t)
        time.sleep(0.005)
    c.close()
    return times


def main(argv):
    ferryd = argv[1]
    attackers = int(argv[2]) if len(argv) > 2 else 40
    seconds = float(argv[3]) if len(argv) > 3 else 20
    phc = subprocess.run([ferryd, "--hash-password"], input=b"right horse\n",
                         capture_output=True, check=True, timeout=60).stdout.decode().strip()
    with tempfile.TemporaryDirectory(prefix="ferry-brute-") as tmp:
        port = free_port()
        config = os.path.join(tmp, "ferryd.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f'root = "{tmp}/root"\nlisten = ["127.0.0.1:{port}"]\n'
                    f'max_per_ip = 64\n'
                    f'[[user]]\nname = "test"\npassword = "secret"\n'
                    f'[[user]]\nname = "victim"\npassword_hash = "{phc}"\n')
        server = subprocess.Popen([ferryd, "--config", config], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        sys.exit("ferryd did not start")
                    time.sleep(0.05)
            quiet = noops(port, 3)
            stop = threading.Event()
            tried = [0]
            lock = threading.Lock()

            def attack():
                while not stop.is_set():
                    try:
                        c = Control(port)
                        c.reply()
                        while not stop.is_set():
                            if c.cmd("USER victim") != 331:
                                break
                            if c.cmd("PASS wrong") != 530:
                                break
                            with lock:
                                tried[0] += 1
                        c.close()
                    except (OSError, EOFError):
                        time.sleep(0.01)

            threads = [threading.Thread(target=attack, daemon=True) for _ in range(attackers)]
            for t in threads:
                t.start()
            time.sleep(1)
            loud = noops(port, seconds)
            stop.set()
            for t in threads:
                t.join(timeout=TIMEOUT)
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(json.dumps({
        "attackers": attackers, "seconds": seconds, "passwords_tried": tried[0],
        "quiet_ms": {"p50": round(percentile(quiet, 0.5), 2),
                     "p99": round(percentile(quiet, 0.99), 2),
                     "max": round(max(quiet) * 1000, 2)},
        "under_attack_ms": {"p50": round(percentile(loud, 0.5), 2),
                            "p99": round(percentile(loud, 0.99), 2),
                            "max": round(max(loud) * 1000, 2)},
    }))


if __name__ == "__main__":
    main(sys.argv)
