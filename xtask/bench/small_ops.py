"""Many small FTP operations against one server, for `cargo xtask bench`.

    small_ops.py rounds HOST PORT USER PASSWORD DIR N
        one session: N times STOR a 1 KiB file, RETR it (and compare the
        bytes), DELE it, all in DIR
    small_ops.py connections HOST PORT USER PASSWORD DIR N
        N fresh connections in turn, each USER/PASS, PWD, QUIT
    small_ops.py parallel-rounds HOST PORT USER PASSWORD DIR N CLIENTS
        CLIENTS sessions at once, one process each, each doing N rounds as
        `rounds` does (file names distinct per client); all log in first,
        then start together; the time runs from the start to the end of
        the slowest, and the count is CLIENTS * N
    small_ops.py tls-connections HOST PORT USER PASSWORD CAFILE N
        N fresh connections in turn, each AUTH TLS (the certificate checked
        against CAFILE), USER/PASS, PWD, QUIT

Prints one line of JSON: {"count": N, "seconds": elapsed}. Only the loop is
timed (time.perf_counter), not Python's start-up. Exits non-zero on any
error or wrong byte (whose message starts with WRONG BYTES); every socket
operation has a timeout.
"""
import ftplib
import io
import json
import os
import ssl
import sys
import time

TIMEOUT = 20  # seconds, for each socket operation
# Starts the message of a wrong byte: the bench fails on it, whatever the
# workload (a row may fail alone for other reasons).
WRONG_BYTES = "WRONG BYTES"


def session(host, port, user, password):
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=TIMEOUT)
    ftp.login(user, password)
    return ftp


def rounds(host, port, user, password, directory, n):
    ftp = session(host, port, user, password)
    ftp.cwd(directory)
    start = time.perf_counter()
    do_rounds(ftp, n, "small")
    elapsed = time.perf_counter() - start
    ftp.quit()
    return elapsed


def do_rounds(ftp, n, prefix):
    payload = os.urandom(1024)
    for i in range(n):
        name = f"{prefix}-{i}.bin"
        ftp.storbinary(f"STOR {name}", io.BytesIO(payload))
        got = bytearray()
        ftp.retrbinary(f"RETR {name}", got.extend)
        if bytes(got) != payload:
            sys.exit(f"{WRONG_BYTES}: RETR {name}: {len(got)} bytes differ from the 1024 stored")
        ftp.delete(name)


def parallel_worker(host, port, user, password, directory, n, index, barrier, results):
    """One client of parallel-rounds: logs in, waits at the barrier, does its
    rounds; puts (index, its end time or None, its error or None)."""
    try:
        ftp = session(host, port, user, password)
        ftp.cwd(directory)
    except Exception as e:  # reported; the broken barrier stops the others
        barrier.abort()
        results.put((index, None, f"client {index}: {e!r}"))
        return
    try:
        barrier.wait(TIMEOUT)
        do_rounds(ftp, n, f"small-{index}")
        end = time.perf_counter()
        ftp.quit()
        results.put((index, end, None))
    except BaseException as e:  # SystemExit from a wrong byte, socket errors
        results.put((index, None, f"client {index}: {e!r}"))


def parallel_rounds(host, port, user, password, directory, n, clients):
    """CLIENTS processes at once; seconds from the common start to the last
    end (time.perf_counter is CLOCK_MONOTONIC, the same in every process)."""
    import multiprocessing
    import queue
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    workers = [context.Process(target=parallel_worker,
                               args=(host, port, user, password, directory, n, i, barrier,
                                     results))
               for i in range(clients)]
    for worker in workers:
        worker.start()
    errors, ends = [], []
    try:
        barrier.wait(TIMEOUT)
        start = time.perf_counter()
    except Exception as e:  # a client could not log in
        errors.append(f"start: {e!r}")
        start = None
    for _ in workers:
        try:
            _, end, error = results.get(timeout=TIMEOUT + n)
        except queue.Empty:
            errors.append("a client gave no result in time")
            break
        if error:
            errors.append(error)
        else:
            ends.append(end)
    for worker in workers:
        worker.join(TIMEOUT)
        if worker.is_alive():
            worker.kill()
    if errors or start is None:
        sys.exit("; ".join(errors))
    return max(ends) - start


def connections(host, port, user, password, directory, n):
    del directory
    start = time.perf_counter()
    for _ in range(n):
        ftp = session(host, port, user, password)
        ftp.pwd()
        ftp.quit()
    return time.perf_counter() - start


def tls_connections(host, port, user, password, cafile, n):
    context = ssl.create_default_context(cafile=cafile)
    start = time.perf_counter()
    for _ in range(n):
        ftp = ftplib.FTP_TLS(context=context)
        ftp.connect(host, port, timeout=TIMEOUT)
        ftp.auth()
        ftp.login(user, password)
        ftp.pwd()
        ftp.quit()
    return time.perf_counter() - start


def main():
    modes = {"rounds": rounds, "connections": connections, "tls-connections": tls_connections}
    if len(sys.argv) == 9 and sys.argv[1] == "parallel-rounds":
        host, port, user, password, directory, n, clients = sys.argv[2:]
        n, clients = int(n), int(clients)
        elapsed = parallel_rounds(host, int(port), user, password, directory, n, clients)
        print(json.dumps({"count": n * clients, "seconds": elapsed}))
        return
    if len(sys.argv) != 8 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    mode, host, port, user, password, directory, n = sys.argv[1:]
    n = int(n)
    work = modes[mode]
    elapsed = work(host, int(port), user, password, directory, n)
    print(json.dumps({"count": n, "seconds": elapsed}))


if __name__ == "__main__":
    main()
