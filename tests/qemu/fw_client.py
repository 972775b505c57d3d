"""FTP client actions (Python's ftplib) against the Cortex-M3 firmware, run
inside the test's network namespace (`ip netns exec NS python3 fw_client.py
ACTION HOST PORT USER PASSWORD ARGS...`).

Each action prints one JSON object on stdout and exits 0, or prints the
error on stderr and exits 1. Every socket operation has a timeout.

Actions:
  session              login, PWD, MKD, CWD, STOR, LIST, NLST, MLSD, MLST,
                       SIZE, RNFR/RNTO, DELE, RMD, and a failed login
  put LOCAL REMOTE     STOR (add --active for PORT instead of PASV)
  get REMOTE LOCAL     RETR (add --active)
  delete REMOTE...     DELE each
  concurrent N SIZE    N clients at once, alternating passive and active:
                       each uploads SIZE random bytes, downloads them back
                       and lists
  drop-download REMOTE starts RETR, reads a little, then resets both the
                       data and the control connection (no ABOR, no QUIT)
  drop-upload REMOTE SIZE
                       starts STOR, sends SIZE bytes, then resets both
  commands LINE...     sends each command line (no data connection) and
                       gives the first three characters of each reply
  tls-session CAFILE SIZE NAME
                       FTP_TLS (AUTH TLS, PROT P), the server's certificate
                       checked against CAFILE: login, MKD, STOR SIZE random
                       bytes, LIST, RETR compared, DELE, RMD
  tls-concurrent CAFILE N SIZE
                       N tls-sessions at once, each in its own directory
  flood ADDRS HOLD ROUNDS WITHIN SIZE
                       a session logs in and stores SIZE bytes; then HOLD
                       connections from the comma-separated source ADDRS
                       take the rest of the table and never log in (each
                       one the firmware closes is reopened); ROUNDS times a
                       client must log in within WITHIN seconds and read the
                       file back, and the first session must keep working
"""
from __future__ import annotations

import ftplib
import hashlib
import io
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flood import Flood, login_within  # noqa: E402  (tests/flood.py)

TIMEOUT = 30  # seconds, for every socket operation


def connect(host: str, port: int, user: str, password: str, active: bool = False) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.login(user, password)
    ftp.set_pasv(not active)
    return ftp


def reset(sock: socket.socket) -> None:
    """Closes `sock` with a TCP reset (SO_LINGER 0): a client that vanishes."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def session(host, port, user, password):
    ftp = connect(host, port, user, password)
    out = {"welcome": ftp.getwelcome()[:3], "pwd": ftp.pwd()}
    out["mkd"] = ftp.mkd("fwdir")
    ftp.cwd("fwdir")
    out["pwd_in_dir"] = ftp.pwd()
    ftp.storbinary("STOR hello.txt", io.BytesIO(b"hello from the Cortex-M3\n"))
    lines: list[str] = []
    ftp.retrlines("LIST", lines.append)
    out["list"] = lines
    out["nlst"] = ftp.nlst()
    out["mlsd"] = {name: facts for name, facts in ftp.mlsd()}
    out["mlst"] = ftp.sendcmd("MLST hello.txt")
    out["size"] = ftp.size("hello.txt")
    ftp.cwd("..")
    out["rnfr"] = ftp.sendcmd("RNFR fwdir/hello.txt")[:3]
    out["rnto"] = ftp.sendcmd("RNTO fwdir/renamed.txt")[:3]
    out["after_rename"] = sorted(ftp.nlst("fwdir"))
    back = bytearray()
    ftp.retrbinary("RETR fwdir/renamed.txt", back.extend)
    out["renamed_content"] = back.decode()
    out["dele"] = ftp.delete("fwdir/renamed.txt")[:3]
    try:
        ftp.size("fwdir/renamed.txt")
        out["deleted"] = False
    except ftplib.error_perm as e:
        out["deleted"] = str(e)[:3]
    out["rmd"] = ftp.sendcmd("RMD fwdir")[:3]
    out["root_after"] = ftp.nlst()
    ftp.quit()
    try:
        connect(host, port, user, password + "-wrong").quit()
        out["bad_login"] = "accepted"
    except ftplib.error_perm as e:
        out["bad_login"] = str(e)[:3]
    return out


def put(host, port, user, password, local, remote, active=False):
    ftp = connect(host, port, user, password, active)
    start = time.monotonic()
    with open(local, "rb") as f:
        reply = ftp.storbinary(f"STOR {remote}", f)
    seconds = time.monotonic() - start
    size = ftp.size(remote)
    ftp.quit()
    return {"reply": reply, "seconds": seconds, "size": size}


def get(host, port, user, password, remote, local, active=False):
    ftp = connect(host, port, user, password, active)
    start = time.monotonic()
    with open(local, "wb") as f:
        reply = ftp.retrbinary(f"RETR {remote}", f.write)
    seconds = time.monotonic() - start
    ftp.quit()
    return {"reply": reply, "seconds": seconds, "bytes": os.path.getsize(local)}


def delete(host, port, user, password, *remotes):
    ftp = connect(host, port, user, password)
    replies = [ftp.delete(r)[:3] for r in remotes]
    ftp.quit()
    return {"replies": replies}


def concurrent(host, port, user, password, n, size):
    results: list[dict] = [{} for _ in range(n)]
    start = threading.Barrier(n)

    def client(i: int):
        data = os.urandom(size)
        try:
            start.wait(timeout=TIMEOUT)
            ftp = connect(host, port, user, password, active=(i % 2 == 1))
            began = time.monotonic()
            ftp.storbinary(f"STOR both{i}.bin", io.BytesIO(data))
            back = bytearray()
            ftp.retrbinary(f"RETR both{i}.bin", back.extend)
            names = ftp.nlst()
            ftp.delete(f"both{i}.bin")
            ftp.quit()
            results[i] = {
                "ok": bytes(back) == data,
                "listed": f"both{i}.bin" in names,
                "mode": "active" if i % 2 else "passive",
                "seconds": time.monotonic() - began,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        except Exception as e:  # reported, not raised: the summary shows all
            results[i] = {"ok": False, "error": f"{type(e).__name__}: {e}"}

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 4)
    return {"clients": results}


def drop_download(host, port, user, password, remote):
    ftp = connect(host, port, user, password)
    conn = ftp.transfercmd(f"RETR {remote}")
    got = len(conn.recv(4096))
    reset(conn)
    reset(ftp.sock)
    return {"received": got}


def drop_upload(host, port, user, password, remote, size):
    ftp = connect(host, port, user, password)
    conn = ftp.transfercmd(f"STOR {remote}")
    conn.sendall(os.urandom(size))
    reset(conn)
    reset(ftp.sock)
    return {"sent": size}


def commands(host, port, user, password, *lines):
    ftp = connect(host, port, user, password)
    replies = {}
    for line in lines:
        try:
            replies[line] = ftp.sendcmd(line)[:3]
        except ftplib.Error as e:  # 4xx and 5xx replies
            replies[line] = str(e)[:3]
    ftp.quit()
    return {"replies": replies}


def tls_session(host, port, user, password, cafile, size, name):
    """One FTPES session with a protected upload, listing and download."""
    context = ssl.create_default_context(cafile=cafile)
    ftp = ftplib.FTP_TLS(context=context, timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.auth()
    ftp.login(user, password)
    ftp.prot_p()
    data = os.urandom(size)
    ftp.mkd(name)
    ftp.storbinary(f"STOR {name}/blob.bin", io.BytesIO(data))
    lines: list[str] = []
    ftp.retrlines(f"LIST {name}", lines.append)
    back = bytearray()
    ftp.retrbinary(f"RETR {name}/blob.bin", back.extend)
    ftp.delete(f"{name}/blob.bin")
    ftp.rmd(name)
    cipher = ftp.sock.cipher()
    ftp.quit()
    return {
        "list": lines,
        "same": bytes(back) == data,
        "sha256": hashlib.sha256(back).hexdigest(),
        "version": cipher[1] if cipher else None,
        "cipher": cipher[0] if cipher else None,
    }


def tls_concurrent(host, port, user, password, cafile, n, size):
    """`n` TLS sessions at once, each in a directory of its own."""
    results: list[dict | None] = [None] * n
    errors: list[str] = []

    def one(i: int):
        try:
            results[i] = tls_session(host, port, user, password, cafile, size, f"tls{i}")
        except Exception as e:  # reported below
            errors.append(f"session {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(4 * TIMEOUT)
    if errors:
        raise RuntimeError("; ".join(errors))
    return {"sessions": results}


def flood(host, port, user, password, addrs, hold, rounds, within, size):
    data = os.urandom(size)
    before = connect(host, port, user, password)
    before.storbinary("STOR flood.bin", io.BytesIO(data))

    def fetch(ftp):
        got = io.BytesIO()
        ftp.retrbinary("RETR flood.bin", got.write)
        return got.getvalue() == data

    attack = Flood(host, port, addrs.split(","), hold, timeout=TIMEOUT)
    out = {"logins_ms": []}
    try:
        attack.fill(hold)
        attack.settle(hold)
        out["held"] = attack.greeted
        attack.start()
        for _ in range(rounds):
            f, took = login_within(lambda: connect(host, port, user, password), within)
            out["logins_ms"].append(round(took * 1000))
            time.sleep(0.3)  # evicted flood connections come back meanwhile
            ok = fetch(f)
            f.quit()
            out.setdefault("fetched", []).append(ok)
            out.setdefault("before", []).append(
                before.voidcmd("NOOP").startswith("200") and fetch(before))
            time.sleep(0.3)
        with attack.lock:
            out["evicted"], out["opened"] = attack.evicted, attack.opened
    finally:
        attack.stop()
    before.delete("flood.bin")
    before.quit()
    return out


def main(argv: list[str]) -> int:
    active = "--active" in argv
    args = [a for a in argv if a != "--active"]
    if len(args) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    action, host, port, user, password, *rest = args
    port = int(port)
    try:
        if action == "session":
            out = session(host, port, user, password)
        elif action == "put":
            out = put(host, port, user, password, rest[0], rest[1], active)
        elif action == "get":
            out = get(host, port, user, password, rest[0], rest[1], active)
        elif action == "delete":
            out = delete(host, port, user, password, *rest)
        elif action == "concurrent":
            out = concurrent(host, port, user, password, int(rest[0]), int(rest[1]))
        elif action == "drop-download":
            out = drop_download(host, port, user, password, rest[0])
        elif action == "commands":
            out = commands(host, port, user, password, *rest)
        elif action == "drop-upload":
            out = drop_upload(host, port, user, password, rest[0], int(rest[1]))
        elif action == "tls-session":
            out = tls_session(host, port, user, password, rest[0], int(rest[1]), rest[2])
        elif action == "flood":
            out = flood(host, port, user, password, rest[0], int(rest[1]), int(rest[2]),
                        float(rest[3]), int(rest[4]))
        elif action == "tls-concurrent":
            out = tls_concurrent(host, port, user, password, rest[0], int(rest[1]), int(rest[2]))
        else:
            print(f"unknown action {action}", file=sys.stderr)
            return 2
    except Exception as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
