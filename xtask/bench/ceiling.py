"""The loopback ceiling for `cargo xtask bench`: how fast this machine moves
a file's bytes over one TCP connection on 127.0.0.1 with no FTP server.

    ceiling.py FILE

Two measurements of FILE's size in bytes, one after the other:

- sendfile: os.sendfile from FILE (open, on the servers' file system) into
  the socket, as a server's RETR does at best;
- write: socket.send of a 1 MiB buffer in memory, over and over, as many
  bytes (what a STOR receiver could at best be fed).

Each time the receiver is a forked process (no shared interpreter lock)
that recv_into's a 256 KiB buffer until end of file, discarding the bytes,
then answers with one byte carrying the count's check; the time runs from
the sender's first byte to that answer. Prints one line of JSON:
{"bytes": B, "sendfile": MiB/s, "write": MiB/s}. Exits non-zero if the
receiver counts other than B bytes.
"""
import json
import os
import socket
import sys
import time

RECV_BUFFER = 256 * 1024
WRITE_BUFFER = 1024 * 1024
MIB = 1024 * 1024


def receive(listener):
    conn, _ = listener.accept()
    buffer = bytearray(RECV_BUFFER)
    view = memoryview(buffer)
    total = 0
    while True:
        n = conn.recv_into(view)
        if n == 0:
            break
        total += n
    conn.sendall(total.to_bytes(8, "little"))
    conn.close()


def run(size, send):
    """Moves `size` bytes with `send(sock)`; MiB/s."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    address = listener.getsockname()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            receive(listener)
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
    print(json.dumps(result))


if __name__ == "__main__":
    main()
