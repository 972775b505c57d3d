"""Many clients at once, session limits, idle timeout, shutdown."""
import ftplib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ferry_helpers import (
    free_port_range,
    TIMEOUT,
    pasv_connect,
    rand_bytes,
    wait_until,
)

N_CLIENTS = 50


def test_50_concurrent_clients(start_server, store):
    s = start_server(["--max-sessions", "64", "--max-per-ip", "64"])
    barrier = threading.Barrier(N_CLIENTS, timeout=60)

    def client(i):
        data = rand_bytes(256 << 10, 100 + i)
        f = s.connect()
        try:
            barrier.wait()  # all 50 sessions are open at once
            f.ext = i % 3 == 1
            f.set_pasv(i % 4 != 3)
            f.stor_bytes(f"c{i}.bin", data)
            back = f.retr_bytes(f"c{i}.bin")
            f.quit()
        finally:
            f.close()
        return back == data

    with ThreadPoolExecutor(N_CLIENTS) as ex:
        results = list(ex.map(client, range(N_CLIENTS), timeout=90))
    assert all(results), [i for i, ok in enumerate(results) if not ok]
    for i in range(N_CLIENTS):
        assert store.read_bytes(f"c{i}.bin") == rand_bytes(256 << 10, 100 + i)


def test_max_sessions_421(start_server):
    s = start_server(["--max-sessions", "2"])
    a = s.connect()
    # Logged in: a session that has not may be evicted to make room
    # (tests/integration/test_lockout.py).
    b = s.connect()
    with pytest.raises(ftplib.error_temp) as e:
        s.connect(login=False)
    assert str(e.value).startswith("421")
    assert a.cmd("NOOP")[0] == 200 and b.cmd("NOOP")[0] == 200
    # a freed slot can be used again (once the server has noticed the close)
    a.quit()
    a.close()

    def try_connect():
        try:
            return s.connect()
        except (ftplib.error_temp, EOFError, ConnectionError):
            return None

    c = wait_until(try_connect, timeout=10, interval=0.1)
    assert c is not None, "slot not freed after QUIT"
    assert c.cmd("NOOP")[0] == 200
    c.close()
    b.close()


def test_max_per_ip_421(start_server):
    s = start_server(["--max-per-ip", "1"], ipv6=True)
    a = s.connect()
    with pytest.raises(ftplib.error_temp) as e:
        s.connect(login=False)
    assert str(e.value).startswith("421")
    # another address (::1) is another IP
    b = s.connect(ipv6=True)
    assert b.cmd("NOOP")[0] == 200
    assert a.cmd("NOOP")[0] == 200
    a.close()
    b.close()


def test_idle_timeout_closes_control_connection(start_server):
    s = start_server(["--idle-timeout", "2"])
    raw = s.raw()
    assert raw.reply()[0] == 220
    raw.login()
    t0 = time.monotonic()
    assert raw.at_eof(timeout=10), "idle control connection not closed within 10 s"
    assert time.monotonic() - t0 >= 1.0
    # whatever came before the close is a 421
    assert raw.buf == b"" or raw.buf.startswith(b"421"), raw.buf
    raw.close()
    # and the server still serves
    f = s.connect()
    assert f.cmd("NOOP")[0] == 200
    f.close()


def test_idle_timeout_paused_during_transfer(start_server, store):
    """A download that stalls longer than the idle timeout keeps its control
    connection (DESIGN: the idle timer pauses while a transfer runs)."""
    data = rand_bytes(32 << 20, 31)
    store.write_bytes("big.bin", data)
    s = start_server(["--idle-timeout", "2"])
    raw = s.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    d = pasv_connect(raw, rcvbuf=65536)
    raw.send(b"RETR big.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    got = [d.recv(65536)]
    time.sleep(3.5)  # the client stalls: the server is blocked on a full socket
    d.settimeout(TIMEOUT)
    while True:
        c = d.recv(1 << 20)
        if not c:
            break
        got.append(c)
    d.close()
    assert b"".join(got) == data
    code, lines = raw.reply()
    assert code == 226, lines
    assert raw.cmd("NOOP")[0] == 200
    raw.close()


def test_idle_timeout_upload_longer_than_timeout(start_server, store):
    s = start_server(["--idle-timeout", "2"])
    raw = s.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    d = pasv_connect(raw)
    raw.send(b"STOR slow.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    parts = [rand_bytes(1000, 40 + i) for i in range(7)]
    for p in parts:   # 3.5 s in all, no gap longer than 0.5 s
        d.sendall(p)
        time.sleep(0.5)
    d.close()
    code, lines = raw.reply()
    assert code == 226, lines
    assert store.read_bytes("slow.bin") == b"".join(parts)
    assert raw.cmd("NOOP")[0] == 200
    raw.close()


def test_ctrl_c_shuts_down_cleanly(start_server):
    s = start_server()
    f = s.connect()
    s.expected_exit = True
    code = s.interrupt(timeout=10)
    assert code is not None, "ferryd did not exit within 10 s of SIGINT"
    assert code in (0, 130), code
    f.close()


def test_sigterm_shuts_down(start_server):
    s = start_server()
    s.expected_exit = True
    s.proc.terminate()
    assert s.proc.wait(timeout=10) in (0, 143, -15)


def test_port_in_use_exits_with_error(ferryd_bin, store, tmp_path):
    import subprocess
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        p = subprocess.run([str(ferryd_bin), *store.server_args(), "--listen",
                            f"127.0.0.1:{port}", "--user", "test:secret"], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
    finally:
        blocker.close()
    assert p.returncode != 0
    assert b"panicked" not in p.stderr
    assert p.stderr.strip(), "no error message on stderr"


@pytest.mark.needs("host_dir")
def test_missing_root_is_created(start_server, root):
    """`--root DIR` is created if missing (ferryd --help)."""
    import shutil
    shutil.rmtree(root)
    s = start_server()
    assert root.is_dir()
    f = s.connect()
    f.stor_bytes("x", b"x")
    assert (root / "x").read_bytes() == b"x"
    f.close()


def test_sessions_are_freed_after_every_kind_of_end(start_server, store):
    """With --max-sessions 2, many sessions in a row that end by QUIT, by a
    plain close, by a reset, or in the middle of a transfer all free their slot."""
    from ferry_helpers import rst_close
    store.write_bytes("big.bin", b"\0" * (8 << 20))
    s = start_server(["--max-sessions", "2"])

    def connect():
        def attempt():
            try:
                return s.connect()
            except (ftplib.error_temp, EOFError, ConnectionError):
                return None
        f = wait_until(attempt, timeout=10, interval=0.05)
        assert f is not None, "no free session slot: a finished session was not freed"
        return f

    for i in range(24):
        f = connect()
        kind = i % 4
        if kind == 0:
            f.quit()
            f.close()
        elif kind == 1:
            f.close()
        elif kind == 2:
            f.file.close()  # (ftplib's reader holds the socket open otherwise)
            rst_close(f.sock)
        else:
            conn = f.transfercmd("RETR big.bin")
            conn.recv(1000)
            f.file.close()
            rst_close(f.sock)
            rst_close(conn)
        del f
    a, b = connect(), connect()
    assert a.cmd("NOOP")[0] == 200 and b.cmd("NOOP")[0] == 200
    a.close()
    b.close()


def test_unused_passive_listeners_are_released(start_server, store):
    """Repeated PASV/EPSV without a transfer must not use up a small port range."""
    lo, _ = free_port_range(3)
    store.write_bytes("f", b"data")
    s = start_server(["--passive-ports", f"{lo}-{lo + 2}"])
    f = s.connect()
    for i in range(20):
        code, resp = f.cmd("PASV" if i % 2 else "EPSV")
        assert code in (227, 229), (i, resp)
    assert f.retr_bytes("f") == b"data"
    f.close()
    # sessions that end with a pending listener release it too
    for i in range(6):
        g = s.connect()
        assert g.cmd("EPSV")[0] == 229
        g.close()
        h = None
        def attempt():
            try:
                x = s.connect()
            except (ftplib.error_temp, EOFError, ConnectionError):
                return None
            if x.cmd("EPSV")[0] == 229:
                return x
            x.close()
            return None
        h = wait_until(attempt, timeout=10, interval=0.1)
        assert h is not None, "passive port not released after the session ended"
        h.close()


def test_hanging_active_connect_does_not_stall_others(start_server, store):
    """DESIGN: an active-mode connect that hangs (SYN unanswered) must not
    stall the single-threaded poll loop for other sessions."""
    bh = socket.socket()
    bh.bind(("127.0.0.1", 0))
    bh.listen(0)
    port = bh.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue: further SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(("127.0.0.1", port))
        pytest.skip("could not make a connect hang on loopback here")
    except (socket.timeout, TimeoutError):
        pass
    finally:
        probe.close()
    store.write_bytes("f", b"f")
    s = start_server()
    f = s.connect()
    assert f.cmd(f"PORT 127,0,0,1,{port >> 8},{port & 255}")[0] == 200
    f.putcmd("RETR f")
    t0 = time.monotonic()
    g = s.connect()
    assert g.cmd("NOOP")[0] == 200
    g.stor_bytes("other", b"works")
    assert time.monotonic() - t0 < 5
    assert store.read_bytes("other") == b"works"
    g.close()
    f.close()
    for c in fillers:
        c.close()
    bh.close()
