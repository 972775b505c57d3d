"""Many small FTP operations against one server, for `cargo xtask bench`.

    small_ops.py rounds HOST PORT USER PASSWORD DIR N
        one session: N times STOR a 1 KiB file, RETR it (and compare the
        bytes), DELE it, all in DIR
    small_ops.py connections HOST PORT USER PASSWORD DIR N
        N fresh connections in turn, each USER/PASS, PWD, QUIT
    small_ops.py tls-connections HOST PORT USER PASSWORD CAFILE N
        N fresh connections in turn, each AUTH TLS (the certificate checked
        against CAFILE), USER/PASS, PWD, QUIT

Prints one line of JSON: {"count": N, "seconds": elapsed}. Only the loop is
timed (time.perf_counter), not Python's start-up. Exits non-zero on any
error or wrong byte; every socket operation has a timeout.
"""
import ftplib
import io
import json
import os
import ssl
import sys
import time

TIMEOUT = 20  # seconds, for each socket operation


def session(host, port, user, password):
    ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=TIMEOUT)
    ftp.login(user, password)
    return ftp


def rounds(host, port, user, password, directory, n):
    payload = os.urandom(1024)
    ftp = session(host, port, user, password)
    ftp.cwd(directory)
    start = time.perf_counter()
    for i in range(n):
        name = f"small-{i}.bin"
        ftp.storbinary(f"STOR {name}", io.BytesIO(payload))
        got = bytearray()
        ftp.retrbinary(f"RETR {name}", got.extend)
        if bytes(got) != payload:
            sys.exit(f"RETR {name}: {len(got)} bytes differ from the 1024 stored")
        ftp.delete(name)
    elapsed = time.perf_counter() - start
    ftp.quit()
    return elapsed


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
    if len(sys.argv) != 8 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    mode, host, port, user, password, directory, n = sys.argv[1:]
    n = int(n)
    work = modes[mode]
    elapsed = work(host, int(port), user, password, directory, n)
    print(json.dumps({"count": n, "seconds": elapsed}))


if __name__ == "__main__":
    main()
