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
passwords were tried. The timing and the guessing are `ftpctl.py`'s, which
`cargo xtask bench` runs against every server (`latency.py guessing`).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ftpctl import TIMEOUT, guess_passwords, noops, summary


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                guess_passwords(port, "victim", stop, tried, lock)

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
        "quiet_ms": summary(quiet),
        "under_attack_ms": summary(loud),
    }))


if __name__ == "__main__":
    main(sys.argv)
