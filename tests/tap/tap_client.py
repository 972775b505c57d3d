"""FTP client actions for the host-tap test, run inside the test's network
namespace (`ip netns exec NS python3 tap_client.py ACTION ...`).

Each action prints one JSON object on stdout and exits 0, or prints the
error on stderr and exits 1. Every socket operation has a timeout.

Actions (HOST PORT USER PASSWORD come first for all):
  session            login, PWD, MKD, LIST, NLST, MLSD, a failed login
  put LOCAL REMOTE   STOR (add --active for PORT instead of PASV)
  get REMOTE LOCAL   RETR (add --active)
  concurrent N SIZE  N clients at once: each uploads SIZE bytes, downloads
                     them back and lists, alternating PASV and active
  reconnect N        N sessions one after another, every third dropped
                     without QUIT, then one more that must work
  abort REMOTE       starts RETR, reads a little, ABOR (Telnet Synch with
                     urgent data, as ftplib sends it), then NOOP
"""
from __future__ import annotations

import ftplib
import hashlib
import io
import json
import os
import socket
import sys
import threading
import time

TIMEOUT = 30  # seconds, for every socket operation


def connect(host: str, port: int, user: str, password: str, active: bool = False) -> ftplib.FTP:
    ftp = ftplib.FTP(timeout=TIMEOUT)
    ftp.connect(host, port)
    ftp.login(user, password)
    ftp.set_pasv(not active)
    return ftp


def session(host, port, user, password):
    ftp = connect(host, port, user, password)
    out = {"pwd": ftp.pwd()}
    ftp.mkd("tapdir")
    ftp.storbinary("STOR tapdir/hello.txt", io.BytesIO(b"hello over smoltcp\n"))
    lines: list[str] = []
    ftp.retrlines("LIST tapdir", lines.append)
    out["list"] = lines
    out["nlst"] = ftp.nlst("tapdir")
    out["mlsd"] = [name for name, _ in ftp.mlsd("tapdir")]
    out["size"] = ftp.size("tapdir/hello.txt")
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
        reply = ftp.storbinary(f"STOR {remote}", f, blocksize=256 * 1024)
    seconds = time.monotonic() - start
    ftp.quit()
    return {"reply": reply, "seconds": seconds, "bytes": os.path.getsize(local)}


def get(host, port, user, password, remote, local, active=False):
    ftp = connect(host, port, user, password, active)
    start = time.monotonic()
    with open(local, "wb") as f:
        reply = ftp.retrbinary(f"RETR {remote}", f.write, blocksize=256 * 1024)
    seconds = time.monotonic() - start
    ftp.quit()
    return {"reply": reply, "seconds": seconds, "bytes": os.path.getsize(local)}


def concurrent(host, port, user, password, n, size):
    results: list[dict] = [{} for _ in range(n)]
    start = threading.Barrier(n)

    def client(i: int):
        data = os.urandom(size)
        try:
            start.wait(timeout=TIMEOUT)
            ftp = connect(host, port, user, password, active=(i % 2 == 1))
            ftp.storbinary(f"STOR client{i}.bin", io.BytesIO(data))
            back = bytearray()
            ftp.retrbinary(f"RETR client{i}.bin", back.extend)
            names = ftp.nlst()
            ftp.quit()
            results[i] = {
                "ok": bytes(back) == data,
                "listed": f"client{i}.bin" in names,
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


def reconnect(host, port, user, password, n):
    done = 0
    for i in range(n):
        ftp = connect(host, port, user, password)
        ftp.voidcmd("NOOP")
        if i % 3 == 2:
            # Dropped without QUIT: the server must notice and free the slot.
            ftp.sock.shutdown(socket.SHUT_RDWR)
            ftp.close()
        else:
            ftp.quit()
        done += 1
    ftp = connect(host, port, user, password)
    names = ftp.nlst()
    ftp.quit()
    return {"sessions": done, "final_listing": len(names)}


def abort(host, port, user, password, remote):
    ftp = connect(host, port, user, password)
    conn = ftp.transfercmd(f"RETR {remote}")
    got = len(conn.recv(65536))
    reply = ftp.abort()
    conn.close()
    if reply.startswith("426"):
        # 426 for the transfer, then 226 for the ABOR itself (RFC 959).
        ftp.voidresp()
    noop = ftp.voidcmd("NOOP")
    ftp.quit()
    return {"received": got, "abort": reply, "noop": noop}


def main(argv: list[str]) -> int:
    active = "--active" in argv
    args = [a for a in argv if a != "--active"]
    action, host, port, user, password, *rest = args
    port = int(port)
    if action == "session":
        out = session(host, port, user, password)
    elif action == "put":
        out = put(host, port, user, password, rest[0], rest[1], active)
    elif action == "get":
        out = get(host, port, user, password, rest[0], rest[1], active)
    elif action == "concurrent":
        out = concurrent(host, port, user, password, int(rest[0]), int(rest[1]))
    elif action == "abort":
        out = abort(host, port, user, password, rest[0])
    elif action == "reconnect":
        out = reconnect(host, port, user, password, int(rest[0]))
    else:
        print(f"unknown action {action!r}", file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
