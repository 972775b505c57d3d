"""One timed RETR or STOR of a large file for `cargo xtask bench`, by a
client that is not the bottleneck: curl reads 16 KiB at a time, which
caps every server near the same figure on loopback.

    transfer.py retr HOST PORT USER PASSWORD DIR NAME
        downloads NAME, reading the data connection 256 KiB at a time
        (as the loopback ceiling's receiver does) and discarding it
    transfer.py stor HOST PORT USER PASSWORD DIR NAME SOURCE
        uploads SOURCE as NAME with sendfile (as the ceiling's sender)

Python's ftplib logs in (untimed), changes to DIR and asks for TYPE I; the
time runs from the transfer's PASV to its 226. Prints one line of JSON:
{"bytes": moved, "seconds": s}. The bench checks the bytes: the count
here, and for STOR the SHA-256 of the file on the server's disk. Every
socket operation has a time limit.
"""
import ftplib
import json
import os
import sys
import time

TIMEOUT = 60
RECV_BUFFER = 256 * 1024


def main(argv):
    mode, host, port, user, password, directory, name = argv[1:8]
    ftp = ftplib.FTP()
    ftp.connect(host, int(port), timeout=TIMEOUT)
    ftp.login(user, password)
    ftp.cwd(directory)
    ftp.voidcmd("TYPE I")
    moved = 0
    if mode == "retr":
        buffer = bytearray(RECV_BUFFER)
        view = memoryview(buffer)
        start = time.perf_counter()
        with ftp.transfercmd(f"RETR {name}") as conn:
            while True:
                n = conn.recv_into(view)
                if n == 0:
                    break
                moved += n
    elif mode == "stor":
        source = argv[8]
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = time.perf_counter()
            with ftp.transfercmd(f"STOR {name}") as conn:
                # socket.sendfile: os.sendfile, waiting out a full socket
                # buffer within the socket's time limit.
                moved = conn.sendfile(f, 0, size)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    ftp.voidresp()
    seconds = time.perf_counter() - start
    ftp.quit()
    print(json.dumps({"bytes": moved, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv)
