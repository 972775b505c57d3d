"""The loopback ceiling for `cargo xtask bench`: how fast this machine moves
a file's bytes over one TCP connection on 127.0.0.1 with no FTP server.

    ceiling.py FILE

Three measurements of FILE's size in bytes, one after the other:

- sendfile: os.sendfile from FILE (open, on the servers' file system) into
  the socket, as a server's RETR does at best;
- write: socket.send of a 1 MiB buffer in memory, over and over, as many
  bytes (what a STOR receiver could at best be fed);
- to_file: sendfile from FILE as above (as the bench's STOR client sends),
  the receiver storing the bytes in a new file beside FILE with splice
  (socket to pipe to file, no copy through the process): what an upload
  into the servers' file system reaches at best.

Each time the receiver is a forked process (no shared interpreter lock)
that recv_into's a 256 KiB buffer until end of file, discarding the bytes
(or, for to_file, splices them into the file), then answers with 8 bytes
carrying the count; the time runs from the sender's first byte to that
answer. Prints one line of JSON:
{"bytes": B, "sendfile": MiB/s, "write": MiB/s, "to_file": MiB/s}. Exits
non-zero if the receiver counts other than B bytes.
"""
import fcntl
import json
import os
import socket
import sys
import time

RECV_BUFFER = 256 * 1024
WRITE_BUFFER = 1024 * 1024
MIB = 1024 * 1024
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def discard(conn):
    """Reads `conn` to its end; the count."""
    buffer = bytearray(RECV_BUFFER)
    view = memoryview(buffer)
    total = 0
    while True:
        n = conn.recv_into(view)
        if n == 0:
            return total
        total += n


def store(conn, path):
    """Splices `conn` to its end into a new file at `path`; the count."""
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pipe_out, pipe_in = os.pipe()
    try:
        fcntl.fcntl(pipe_in, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # a smaller pipe only takes more calls
    total = 0
    while True:
        n = os.splice(conn.fileno(), pipe_in, PIPE_SIZE)
        if n == 0:
            break
        total += n
        while n > 0:
            n -= os.splice(pipe_out, out, n)
    os.close(out)
    return total


def receive(listener, into):
    conn, _ = listener.accept()
    total = discard(conn) if into is None else store(conn, into)
    conn.sendall(total.to_bytes(8, "little"))
    conn.close()


def run(size, send, into=None):
    """Moves `size` bytes with `send(sock)`, the receiver discarding them
    or storing them at `into`; MiB/s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    address = listener.getsockname()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            receive(listener, into)
            code = 0
        finally:
            os._exit(code)
    listener.close()
    sock = socket.create_connection(address, timeout=10)
    # Blocking from here (sendfile on a socket with a timeout would return
    # EAGAIN); the bench kills the script when it overruns.
    sock.settimeout(None)
    start = time.perf_counter()
    send(sock)
    sock.shutdown(socket.SHUT_WR)
    answer = b""
    while len(answer) < 8:
        more = sock.recv(8 - len(answer))
        if not more:
            break
        answer += more
    seconds = time.perf_counter() - start
    sock.close()
    _, status = os.waitpid(child, 0)
    counted = int.from_bytes(answer, "little") if len(answer) == 8 else -1
    if counted != size or status != 0:
        sys.exit(f"the receiver counted {counted} bytes of {size} (status {status})")
    return size / MIB / seconds


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    size = os.path.getsize(path)

    def by_sendfile(sock):
        with open(path, "rb") as f:
            offset = 0
            while offset < size:
                sent = os.sendfile(sock.fileno(), f.fileno(), offset, size - offset)
                if sent == 0:
                    sys.exit("sendfile sent 0 bytes")
                offset += sent

    def by_write(sock):
        chunk = memoryview(os.urandom(WRITE_BUFFER))
        left = size
        while left > 0:
            n = min(left, WRITE_BUFFER)
            sock.sendall(chunk[:n])
            left -= n

    result = {"bytes": size, "sendfile": run(size, by_sendfile), "write": run(size, by_write)}
    upload = path + ".ceiling-upload"
    try:
        result["to_file"] = run(size, by_sendfile, into=upload)
        if os.path.getsize(upload) != size:
            sys.exit(f"the receiver stored {os.path.getsize(upload)} bytes of {size}")
    finally:
        if os.path.exists(upload):
            os.remove(upload)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
