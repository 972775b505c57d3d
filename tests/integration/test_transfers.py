"""Data transfers with ftplib: passive and active, IPv4 and IPv6, binary and
ASCII, resume, append, STOU, ABOR."""
import ftplib
import os
import re
import socket
import time

import pytest

from ferry_helpers import (
    TIMEOUT,
    pasv_connect,
    rand_bytes,
    recv_all,
    set_mode,
)

MODES4 = ["pasv", "epsv", "port", "eprt"]
MODES6 = ["epsv", "eprt"]


@pytest.mark.parametrize("mode", MODES4)
def test_roundtrip_ipv4(server, store, mode):
    data = rand_bytes(1 << 20, 1)
    f = server.connect()
    set_mode(f, mode)
    f.stor_bytes("up.bin", data)
    assert store.read_bytes("up.bin") == data
    store.write_bytes("down.bin", data[::-1])
    assert f.retr_bytes("down.bin") == data[::-1]
    assert sorted(f.nlst()) == ["down.bin", "up.bin"]
    f.quit()


@pytest.mark.parametrize("mode", MODES6)
def test_roundtrip_ipv6(server46, store, mode):
    data = rand_bytes(1 << 20, 2)
    f = server46.connect(ipv6=True)
    set_mode(f, mode)
    f.stor_bytes("up6.bin", data)
    assert store.read_bytes("up6.bin") == data
    assert f.retr_bytes("up6.bin") == data
    assert f.nlst() == ["up6.bin"]
    f.quit()


def test_pasv_reply_names_the_control_address(ftp):
    """PASV must name 127.0.0.1 (unmapped), never 0.0.0.0 or ::ffff:..."""
    code, resp = ftp.cmd("PASV")
    assert code == 227, resp
    host, port = ftplib.parse227(resp)
    assert host == "127.0.0.1"
    assert 0 < port < 65536


def test_epsv_reply_format(ftp):
    code, resp = ftp.cmd("EPSV")
    assert code == 229, resp
    assert re.search(r"\(\|\|\|\d{1,5}\|\)", resp), resp


def test_epsv_on_ipv6_and_pasv_refused_there(server46):
    f = server46.connect(ipv6=True)
    code, resp = f.cmd("EPSV")
    assert code == 229, resp
    code, resp = f.cmd("EPSV 2")
    assert code == 229, resp
    # PASV can not name an IPv6 address (RFC 2428): refuse it
    code, resp = f.cmd("PASV")
    assert code in (500, 501, 502, 520, 521, 522, 425), resp
    f.close()


def test_epsv_all_refuses_other_data_commands(ftp):
    assert ftp.cmd("EPSV ALL")[0] == 200
    assert ftp.cmd("PASV")[0] != 227
    assert ftp.cmd("PORT 127,0,0,1,200,10")[0] != 200
    assert ftp.cmd("EPSV")[0] == 229


@pytest.mark.parametrize("mode", ["pasv", "eprt"])
def test_10mib_random_both_ways(server, store, mode):
    data = rand_bytes(10 << 20, 3)
    f = server.connect()
    set_mode(f, mode)
    f.stor_bytes("big.bin", data)
    assert store.read_bytes("big.bin") == data
    assert f.size("big.bin") == len(data)
    assert f.retr_bytes("big.bin") == data
    f.quit()


@pytest.mark.parametrize("mode", MODES4)
def test_empty_file(ftp, store, mode):
    set_mode(ftp, mode)
    ftp.stor_bytes("empty", b"")
    assert store.read_bytes("empty") == b""
    assert ftp.retr_bytes("empty") == b""
    assert ftp.size("empty") == 0


def test_stor_replaces_existing(ftp, store):
    store.write_bytes("f", b"old old old old")
    ftp.stor_bytes("f", b"new")
    assert store.read_bytes("f") == b"new"
    assert store.listdir() == ["f"]


def test_stor_in_subdir_and_missing_dir(ftp, store):
    store.mkdir("d")
    ftp.stor_bytes("d/x", b"x")
    ftp.stor_bytes("/d/y", b"y")
    assert store.read_bytes("d/x") == b"x"
    assert store.read_bytes("d/y") == b"y"
    with pytest.raises(ftplib.error_perm) as e:
        ftp.stor_bytes("nodir/x", b"x")
    assert str(e.value)[:3] in ("550", "553")
    assert ftp.cmd("NOOP")[0] == 200


def test_retr_missing_and_directory_550(ftp, store):
    store.mkdir("d")
    for name in ("missing", "d"):
        with pytest.raises(ftplib.error_perm) as e:
            ftp.retr_bytes(name)
        assert str(e.value)[:3] == "550"
    assert ftp.cmd("NOOP")[0] == 200


def test_ascii_upload_crlf_to_lf(ftp, store):
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("STOR a.txt")
    conn.sendall(b"a\r\nb\r\n")
    conn.close()
    assert ftp.voidresp()[:3] == "226"
    assert store.read_bytes("a.txt") == b"a\nb\n"


def test_ascii_download_lf_to_crlf(ftp, store):
    store.write_bytes("l.txt", b"a\nb\n\nlast")
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("RETR l.txt")
    wire = recv_all(conn)
    conn.close()
    assert ftp.voidresp()[:3] == "226"
    assert wire == b"a\r\nb\r\n\r\nlast"
    # and back to binary: bytes as they are
    assert ftp.retr_bytes("l.txt") == b"a\nb\n\nlast"


def test_ascii_roundtrip_with_storlines_retrlines(ftp, store):
    import io
    ftp.storlines("STOR t.txt", io.BytesIO(b"one\ntwo\nthree\n"))
    assert store.read_bytes("t.txt") == b"one\ntwo\nthree\n"
    lines = []
    ftp.retrlines("RETR t.txt", lines.append)
    assert lines == ["one", "two", "three"]


def test_ascii_chunk_boundaries(ftp, store):
    """CR LF split across TCP segments / buffer boundaries still becomes LF."""
    data = (b"x" * 4095 + b"\n") * 64 + b"y" * 8191 + b"\n"
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("STOR c.txt")
    wire = data.replace(b"\n", b"\r\n")
    for i in range(0, len(wire), 4097):
        conn.sendall(wire[i:i + 4097])
    conn.close()
    assert ftp.voidresp()[:3] == "226"
    assert store.read_bytes("c.txt") == data
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("RETR c.txt")
    assert recv_all(conn) == wire
    conn.close()
    ftp.voidresp()
    # a CR at the very end of one segment, its LF in the next
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("STOR s.txt")
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for piece in (b"abc\r", b"\ndef\r", b"\n\r", b"\n"):
        conn.sendall(piece)
        time.sleep(0.05)
    conn.close()
    assert ftp.voidresp()[:3] == "226"
    assert store.read_bytes("s.txt") == b"abc\ndef\n\n"


def test_rest_retr_resume_download(ftp, store):
    data = rand_bytes(300_000, 4)
    store.write_bytes("r.bin", data)
    assert ftp.cmd("TYPE I")[0] == 200
    assert ftp.cmd("REST 1000")[0] == 350
    assert ftp.retr_bytes("r.bin", rest=123_457) == data[123_457:]
    # REST is used once only
    assert ftp.retr_bytes("r.bin") == data
    # REST at the end gives an empty transfer
    assert ftp.retr_bytes("r.bin", rest=len(data)) == b""


def test_rest_stor_resume_upload(ftp, store):
    data = rand_bytes(300_000, 5)
    store.write_bytes("u.bin", data[:100_000])
    ftp.stor_bytes("u.bin", data[100_000:], rest=100_000)
    assert store.read_bytes("u.bin") == data


def test_appe(ftp, store):
    store.write_bytes("log", b"hello ")
    ftp.stor_bytes("log", b"world", cmd="APPE")
    assert store.read_bytes("log") == b"hello world"
    ftp.stor_bytes("newlog", b"created", cmd="APPE")
    assert store.read_bytes("newlog") == b"created"


def test_stou(ftp, store):
    store.write_bytes("base", b"keep me")
    before = set(store.listdir())
    replies = []
    for payload, cmd in ((b"unique one", "STOU"), (b"unique two", "STOU base")):
        host, port = ftp.makepasv()
        conn = socket.create_connection((host, port), TIMEOUT)
        resp150 = ftp.sendcmd(cmd)
        assert resp150[:3] in ("125", "150"), resp150
        conn.sendall(payload)
        conn.close()
        resp226 = ftp.voidresp()
        replies.append((resp150, resp226))
    after = set(store.listdir())
    new = after - before
    assert len(new) == 2, f"expected two new files, got {new}"
    contents = {store.read_bytes(n): n for n in new}
    assert set(contents) == {b"unique one", b"unique two"}
    assert store.read_bytes("base") == b"keep me"
    # the reply names the file it created (RFC 959 4.1.3 / RFC 1123 4.1.2.9)
    text = " ".join(r for pair in replies for r in pair)
    for n in new:
        assert n in text, f"generated name {n!r} not in replies {replies}"


def _abort_download(server, store, abor_bytes):
    size = store.caps.big_download
    store.make_large("huge.bin", size)  # far more than the socket buffers hold
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    data = pasv_connect(raw)
    raw.send(b"RETR huge.bin\r\n")
    code, lines = raw.reply()
    assert code in (125, 150), lines
    got = len(data.recv(65536))
    raw.send(abor_bytes)
    code, lines = raw.reply()
    codes = [code]
    if code == 426:
        code, lines = raw.reply()
        codes.append(code)
    assert codes in ([426, 226], [426, 225], [226], [225]), codes
    # the server closed the data connection
    data.settimeout(TIMEOUT)
    try:
        while True:
            c = data.recv(1 << 20)
            if not c:
                break
            got += len(c)
    except ConnectionResetError:
        pass
    data.close()
    assert got < size, "the transfer was not aborted"
    assert raw.cmd("NOOP")[0] == 200
    # and the session can transfer again
    store.write_bytes("small", b"small")
    d2 = pasv_connect(raw)
    raw.send(b"RETR small\r\n")
    assert raw.reply()[0] in (125, 150)
    assert recv_all(d2) == b"small"
    assert raw.reply()[0] == 226
    raw.close()


def test_abor_during_large_download(server, store):
    _abort_download(server, store, b"ABOR\r\n")


def test_abor_with_telnet_ip_synch(server, store):
    """IAC IP IAC DM before ABOR (RFC 959 4.1.3), all in-line."""
    _abort_download(server, store, b"\xff\xf4\xff\xf2ABOR\r\n")


def test_abor_without_transfer(ftp):
    assert ftp.cmd("ABOR")[0] in (225, 226)
    assert ftp.cmd("NOOP")[0] == 200


def test_client_closes_data_connection_early(server, store):
    """Client closes the download's data connection: 426 (or 226/451), no hang."""
    store.make_large("huge.bin", store.caps.big_download)
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    data = pasv_connect(raw)
    raw.send(b"RETR huge.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    data.recv(65536)
    data.close()
    code, lines = raw.reply()
    assert code in (426, 451, 226), lines
    assert raw.cmd("NOOP")[0] == 200
    raw.close()


def test_226_only_after_data_connection_closed(server, store):
    """DESIGN: close the data connection before replying 226."""
    store.write_bytes("f", b"z" * 5000)
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    for cmd in (b"RETR f", b"LIST", b"NLST", b"MLSD"):
        data = pasv_connect(raw)
        raw.send(cmd + b"\r\n")
        assert raw.reply()[0] in (125, 150)
        code, lines = raw.reply()  # read the final reply BEFORE reading the data
        assert code == 226, (cmd, lines)
        data.settimeout(2)
        try:
            body = recv_all(data, timeout=2)
        except socket.timeout:
            raise AssertionError(f"{cmd!r}: 226 arrived while the data connection was still open")
        assert body
        data.close()
    raw.close()


def test_transfer_command_without_data_setup(ftp, store):
    """RETR/LIST without PASV/PORT: 425 (or 503), never a hang."""
    store.write_bytes("f", b"f")
    code, resp = ftp.cmd("RETR f")
    assert code in (425, 503), resp
    assert ftp.cmd("NOOP")[0] == 200


def test_active_connect_failure_425(ftp, store):
    """PORT to a port where nobody listens: 425, the session goes on."""
    store.write_bytes("f", b"f")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert ftp.cmd(f"PORT 127,0,0,1,{port >> 8},{port & 255}")[0] == 200
    code, resp = ftp.cmd("RETR f")
    if code in (125, 150):
        resp = _getresp_any(ftp)
        code = int(resp[:3])
    assert code == 425, resp
    assert ftp.cmd("NOOP")[0] == 200


def _getresp_any(f):
    try:
        return f.getresp()
    except (ftplib.error_temp, ftplib.error_perm) as e:
        return str(e)


def test_transfer_command_before_data_connect(server, store):
    """EPSV, then RETR before connecting (clients pipeline this): the server
    waits for the connection."""
    store.write_bytes("f", b"x" * 100_000)
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    code, lines = raw.cmd("EPSV")
    port = int(re.search(rb"\|\|\|(\d+)\|", lines[0]).group(1))
    raw.send(b"RETR f\r\n")
    d = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    assert raw.reply()[0] in (125, 150)
    assert recv_all(d) == b"x" * 100_000
    assert raw.reply()[0] == 226
    raw.close()


def test_second_pasv_replaces_first(ftp, store):
    store.write_bytes("f", b"second")
    code, resp = ftp.cmd("PASV")
    assert code == 227
    h1, p1 = ftplib.parse227(resp)
    assert ftp.retr_bytes("f") == b"second"  # does its own PASV
    # the first listener is gone or at least unused: nothing hangs
    assert ftp.cmd("NOOP")[0] == 200


@pytest.mark.needs("large_files")
def test_files_over_4_gib(ftp, root):
    """64-bit sizes and offsets (sparse file: cheap on disk)."""
    size = (5 << 30) + 123
    with open(root / "huge", "wb") as fh:
        fh.truncate(size - 7)
        fh.seek(size - 7)
        fh.write(b"THE END")
    assert ftp.size("huge") == size
    assert ftp.retr_bytes("huge", rest=size - 100) == b"\0" * 93 + b"THE END"
    facts = dict(ftp.mlsd(facts=["size"]))["huge"]
    assert facts["size"] == str(size)
    lines = ftp.lines("LIST huge")
    assert str(size) in lines[0]
    ftp.stor_bytes("huge", b"APPENDED", rest=size)
    assert os.path.getsize(root / "huge") == size + 8
    with open(root / "huge", "rb") as fh:
        fh.seek(size - 7)
        assert fh.read() == b"THE ENDAPPENDED"


def test_stor_onto_directory_refused(ftp, store):
    store.mkdir("d")
    with pytest.raises(ftplib.error_perm) as e:
        ftp.stor_bytes("d", b"x")
    assert str(e.value)[:3] in ("550", "553")
    assert store.is_dir("d")


def test_ascii_lone_cr_is_kept(ftp, store):
    assert ftp.cmd("TYPE A")[0] == 200
    conn = ftp.transfercmd("STOR cr.txt")
    conn.sendall(b"a\rb\r\nc\r")
    conn.close()
    assert ftp.voidresp()[:3] == "226"
    assert store.read_bytes("cr.txt") == b"a\rb\nc\r"


def test_same_name_concurrent_uploads_never_mix(server, store):
    """Two uploads of one name at once: the result is one of them, whole."""
    a_data = rand_bytes(3 << 20, 70)
    b_data = rand_bytes(3 << 20, 71)
    a, b = server.connect(), server.connect()
    ca = a.transfercmd("STOR same.bin")
    cb = b.transfercmd("STOR same.bin")
    step = 256 << 10
    for i in range(0, len(a_data), step):
        ca.sendall(a_data[i:i + step])
        cb.sendall(b_data[i:i + step])
    ca.close()
    assert a.voidresp()[:3] == "226"
    cb.close()
    assert b.voidresp()[:3] == "226"
    assert store.read_bytes("same.bin") in (a_data, b_data)
    assert store.listdir() == ["same.bin"]
    a.close()
    b.close()


def _big_download_with_command(server, store, line):
    data = rand_bytes(24 << 20, 72)
    store.write_bytes("big.bin", data)
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    d = pasv_connect(raw, rcvbuf=65536)
    raw.send(b"RETR big.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    got = [d.recv(65536)]
    raw.send(line + b"\r\n")  # while the server is blocked on the data connection
    got.append(recv_all(d, timeout=30))
    d.close()
    return raw, data, b"".join(got)


def test_command_during_download_is_answered(server, store):
    raw, data, got = _big_download_with_command(server, store, b"NOOP")
    assert got == data
    codes = sorted([raw.reply()[0], raw.reply()[0]])
    assert codes == [200, 226], codes
    raw.close()


def test_quit_during_download_completes_it(server, store):
    """RFC 959 (QUIT): with a transfer in progress the connection stays open
    for its result; then 221 and close."""
    raw, data, got = _big_download_with_command(server, store, b"QUIT")
    assert got == data, f"download cut by QUIT: {len(got)} of {len(data)} bytes"
    assert [raw.reply()[0], raw.reply()[0]] == [226, 221]
    assert raw.at_eof()
    raw.close()


def test_dual_stack_listener_ipv4_mapped_peer(start_server, store):
    """Listening on [::] a 127.0.0.1 client arrives as ::ffff:127.0.0.1:
    PASV names 127.0.0.1, PORT/EPRT to 127.0.0.1 are its own address
    (DESIGN: unmap before formatting a PASV reply or the bounce check)."""
    from ferry_helpers import has_ipv6_loopback
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 on this machine")
    s = start_server(listen=["[::]:{port}"])
    try:
        f = s.connect()
    except ConnectionRefusedError:
        pytest.skip("ferryd's [::] listener is IPv6-only here")
    store.write_bytes("f", b"mapped")
    code, resp = f.cmd("PASV")
    assert code == 227, resp
    assert ftplib.parse227(resp)[0] == "127.0.0.1", resp
    for mode in MODES4:
        set_mode(f, mode)
        assert f.retr_bytes("f") == b"mapped", mode
        f.stor_bytes(f"up-{mode}", mode.encode())
        assert store.read_bytes(f"up-{mode}") == mode.encode()
    trap = socket.socket()
    trap.bind(("127.0.0.2", 0))
    trap.listen(1)
    p = trap.getsockname()[1]
    assert f.cmd(f"PORT 127,0,0,2,{p >> 8},{p & 255}")[0] in (500, 501, 504)
    trap.close()
    f.close()


def test_ftplib_abort_with_urgent_data(server, store):
    """Python's ftplib.abort() sends "ABOR\\r\\n" as TCP urgent data (MSG_OOB).
    On a socket without SO_OOBINLINE the kernel pulls the urgent byte (the LF)
    out of the stream, so the server must read urgent data in-line (as
    vsftpd does) or the ABOR line never ends."""
    size = store.caps.big_download
    store.make_large("huge.bin", size)
    f = server.connect()
    conn = f.transfercmd("RETR huge.bin")
    conn.recv(65536)
    resp = f.abort()  # raises on a timeout (no reply) or an unexpected code
    assert resp[:3] in ("426", "225", "226")
    conn.close()
    # a 426 is followed by a 226 (RFC 959 ABOR); then the session goes on
    codes = []
    f.putcmd("NOOP")
    for _ in range(2):
        r = _getresp_any(f)
        codes.append(r[:3])
        if r[:3] == "200":
            break
    assert codes[-1] == "200", codes
    assert f.retr_bytes("huge.bin", rest=size - 10) == b"\0" * 10


def test_rest_in_ascii_mode_is_honoured_or_refused(ftp, store):
    """An accepted REST must take effect in TYPE A too: silently sending the
    whole file makes a resuming client duplicate the start of the file."""
    store.write_bytes("l.txt", b"line one\nline two\nline three\n")
    wire = b"line one\r\nline two\r\nline three\r\n"
    assert ftp.cmd("TYPE A")[0] == 200
    code, resp = ftp.cmd("REST 10")
    if code != 350:
        assert code in (500, 501, 502, 504, 550), resp
        return
    try:
        conn = ftp.transfercmd("RETR l.txt")
    except ftplib.error_perm as e:
        assert str(e)[:3] in ("501", "504", "550", "554"), str(e)
        return
    got = recv_all(conn)
    conn.close()
    ftp.voidresp()
    # RFC 3659 5.1: octets of the data stream as sent; some servers count file octets
    assert got in (wire[10:], b"ine two\r\nline three\r\n"), got
