"""NOOP round trips of one logged-in session under load, for `cargo xtask
bench`; the timing is `ftpctl.py`'s (as in `brute_force.py`).

    latency.py downloads HOST PORT USER PASSWORD PATH BYTES CLIENTS SECONDS
        CLIENTS curl processes download PATH (BYTES long) to /dev/null,
        each again as soon as it is done, while one session sends a NOOP
        every 5 ms for SECONDS
    latency.py guessing HOST PORT USER PASSWORD GUESSED - CLIENTS SECONDS
        CLIENTS connections send USER GUESSED / PASS with a wrong password,
        over and over (reconnecting when closed), while one session sends a
        NOOP every 5 ms for SECONDS

The load starts one second before the NOOPs and stops after them. Prints
one line of JSON: {"count": NOOPs, "p50": ms, "p99": ms, "max": ms,
"load": downloads completed or passwords tried}. Exits non-zero if a NOOP
fails, a download moves other than BYTES bytes or curl fails, or no load
ran; every socket operation and every curl has a time limit.
"""
import json
import subprocess
import sys
import threading
import time

from ftpctl import TIMEOUT, guess_passwords, noops, summary


def downloads(host, port, user, password, path, size, stop, done, errors, lock):
    url = f"ftp://{user}:{password}@{host}:{port}/{path}"
    while not stop.is_set():
        out = subprocess.run(
            ["curl", "--disable", "--silent", "--show-error", "--ftp-pasv",
             "--connect-timeout", "10", "--max-time", "120", "--output", "/dev/null",
             "--write-out", "%{size_download}", url],
            capture_output=True, timeout=150, check=False)
        with lock:
            got = out.stdout.decode().strip()
            if out.returncode != 0 or got != str(size):
                errors.append(f"curl exited {out.returncode} after {got} bytes of {size}: "
                              f"{out.stderr.decode().strip()}")
                return
            done[0] += 1


def main():
    if len(sys.argv) != 10 or sys.argv[1] not in ("downloads", "guessing"):
        sys.exit(__doc__)
    mode, host, port, user, password, target, size, clients, seconds = sys.argv[1:]
    port, clients, seconds = int(port), int(clients), float(seconds)
    stop = threading.Event()
    done = [0]
    errors = []
    lock = threading.Lock()
    if mode == "downloads":
        work = lambda: downloads(host, port, user, password, target, int(size), stop, done,
                                 errors, lock)
    else:
        work = lambda: guess_passwords(port, target, stop, done, lock, host)
    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        times = noops(port, seconds, user, password, host=host)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT + 150)
    if errors:
        sys.exit(errors[0])
    if done[0] == 0:
        sys.exit(f"no {mode} completed during the NOOPs")
    result = {"count": len(times), **summary(times), "load": done[0]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
