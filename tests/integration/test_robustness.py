"""Bad input: over-long lines, binary garbage, NUL/CR/LF/backslash in paths,
and uploads cut in the middle."""
import random
import time

import pytest

from ferry_helpers import pasv_connect, rand_bytes, rst_close, wait_until


def test_overlong_line_500_then_next_command_works(server):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    raw.send(b"A" * 10240 + b"\r\n")
    code, lines = raw.reply()
    assert code == 500, lines
    assert raw.cmd("NOOP")[0] == 200, "one over-long line gave more than one reply, or broke the session"
    assert raw.cmd("PWD")[0] == 257
    raw.close()


def test_overlong_line_before_login(server):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.send(b"USER " + b"u" * 100_000 + b"\r\n")
    assert raw.reply()[0] == 500
    raw.login()
    raw.close()


def test_overlong_argument_path(ftp):
    """A long but line-sized path: a clean error, not a crash."""
    for n in (900, 4000):
        code, resp = ftp.cmd("CWD " + "x" * n)
        assert code in (500, 501, 550, 553), resp
        code, resp = ftp.cmd("MKD " + "/".join(["dir"] * (n // 4)))
        assert code in (500, 501, 550, 553), resp
    assert ftp.cmd("NOOP")[0] == 200


@pytest.mark.parametrize("logged_in", [False, True])
def test_binary_garbage(server, logged_in):
    rng = random.Random(1234 + logged_in)
    raw = server.raw()
    assert raw.reply()[0] == 220
    if logged_in:
        raw.login()
    n_lines = 0
    blob = b""
    for _ in range(40):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        body = body.replace(b"\n", b"").replace(b"\r", b"").replace(b"\xff", b"")
        # keep garbage from spelling a valid verb by starting with a non-letter
        blob += b"\x01" + body + b"\r\n"
        n_lines += 1
    blob += b"\x00\x00\x00\r\n\xff\xff\xff\xfe\r\n\x80\x81\x82 \xc3\x28\r\n"
    n_lines += 3
    raw.send(blob)
    codes = []
    for _ in range(n_lines):
        code, lines = raw.reply()
        codes.append(code)
        if len(codes) == n_lines:
            break
    assert all(500 <= c < 600 for c in codes), codes
    code, _ = raw.cmd("NOOP")
    assert code == 200 or (code == 530 and not logged_in)
    raw.close()
    assert server.alive()
    f = server.connect()
    assert f.cmd("NOOP")[0] == 200
    f.close()


def test_garbage_then_disconnect_without_line_end(server):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.send(rand_bytes(5000, 77).replace(b"\n", b"."))
    raw.close()
    f = server.connect()
    assert f.cmd("NOOP")[0] == 200
    f.close()
    assert server.alive()


@pytest.mark.parametrize("line", [
    b"CWD a\x00b", b"MKD a\x00b", b"RETR x\x00/../../etc/passwd", b"STOR x\x00y",
    b"DELE a\x00", b"SIZE \x00",
])
def test_nul_in_path(server, store, line):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    raw.send(line + b"\r\n")
    code, lines = raw.reply()
    if line.startswith(b"STOR") or line.startswith(b"RETR"):
        assert code in (501, 550, 553, 425), lines
    else:
        assert code in (501, 550, 553), lines
    assert raw.cmd("NOOP")[0] == 200
    assert store.listdir() == []
    raw.close()


def test_cr_inside_argument_refused(server, store):
    """DESIGN: CR or LF inside a command argument is refused (command injection)."""
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    raw.send(b"MKD a\rDELE b\r\n")
    code, lines = raw.reply()
    assert code in (500, 501, 550, 553), lines
    assert raw.cmd("NOOP")[0] == 200
    assert store.listdir() == []
    raw.close()


@pytest.mark.parametrize("arg", ["..\\..\\etc", "a\\b", "\\", "..\\"])
def test_backslash_in_path(ftp, store, arg):
    store.mkdir("a")
    code, resp = ftp.cmd(f"CWD {arg}")
    assert code in (501, 550, 553), resp
    code, resp = ftp.cmd(f"MKD {arg}x")
    assert code in (501, 550, 553), resp
    assert store.listdir() == ["a"]
    assert store.listdir("a") == []
    import ftplib
    assert ftplib.parse257(ftp.cmd("PWD")[1]) == "/"


def _temp_free_listing(s, store, want):
    """Polls until NLST (and the disk) show exactly `want`."""
    last = {}

    def check():
        f = s.connect()
        try:
            last["nlst"] = sorted(f.nlst())
        finally:
            f.close()
        last["disk"] = store.listdir()
        return last["nlst"] == want and last["disk"] == want

    ok = wait_until(check, timeout=10, interval=0.2)
    return ok, last


@pytest.mark.parametrize("how", ["reset_data_and_control", "close_control_only", "reset_data_only"])
def test_cut_upload_keeps_old_file(server, store, how):
    """DESIGN: an upload that is cut does not destroy the file it was replacing."""
    old = rand_bytes(1 << 20, 50)
    store.write_bytes("keep.bin", old)
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    d = pasv_connect(raw)
    raw.send(b"STOR keep.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    d.sendall(rand_bytes(512 << 10, 51))
    if how == "reset_data_and_control":
        rst_close(raw.sock)
        rst_close(d)
    elif how == "close_control_only":
        # the client vanished; its data connection stays open a moment, then resets
        rst_close(raw.sock)
        time.sleep(0.5)
        assert store.read_bytes("keep.bin") == old
        rst_close(d)
    else:
        rst_close(d)
        code, lines = raw.reply()
        assert code in (426, 450, 451), lines
        assert raw.cmd("NOOP")[0] == 200
        raw.close()
    ok, last = _temp_free_listing(server, store, ["keep.bin"])
    assert store.read_bytes("keep.bin") == old, "the cut upload replaced the old file"
    assert ok, f"leftover temporary file: {last}"
    assert server.alive()


def test_concurrent_upload_and_download_of_same_file(server, store):
    """A reader of a file being replaced sees the old or the new content, whole."""
    old = rand_bytes(2 << 20, 60)
    new = rand_bytes(2 << 20, 61)
    store.write_bytes("f.bin", old)
    up = server.connect()
    down = server.connect()
    conn = up.transfercmd("STOR f.bin")
    conn.sendall(new[: 1 << 20])
    got = down.retr_bytes("f.bin")
    conn.sendall(new[1 << 20:])
    conn.close()
    assert up.voidresp()[:3] == "226"
    assert got == old, "a reader saw a half-written file"
    assert store.read_bytes("f.bin") == new
    up.close()
    down.close()
