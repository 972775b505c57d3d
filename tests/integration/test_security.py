"""Confinement to the root (traversal, symlinks) and the FTP bounce attack.

The bounce tests never aim at a non-loopback address: a PORT naming
127.0.0.2 is "another host" for a client on 127.0.0.1, and a listener there
proves that no connection was attempted.
"""
import ftplib
import os
import socket

import pytest

SECRET = b"TOP-SECRET-OUTSIDE-ROOT\n"


def passwd_bytes():
    try:
        return open("/etc/passwd", "rb").read()
    except OSError:
        return b"root:x:0:0"


def try_retr(f, path):
    """RETR `path`; returns the bytes or None if refused."""
    try:
        return f.retr_bytes(path)
    except ftplib.error_perm as e:
        assert str(e)[:3] in ("550", "553", "501"), str(e)
        return None


def pwd(f):
    return ftplib.parse257(f.cmd("PWD")[1])


@pytest.mark.parametrize("path", [
    "../../etc/passwd", "/../../etc/passwd", "../../../../../../etc/passwd",
    "/etc/../../../etc/passwd", "sub/../../../etc/passwd", "./../etc/passwd",
])
def test_retr_traversal_does_not_leak(ftp, store, path):
    store.mkdir("sub")
    got = try_retr(ftp, path)
    assert got is None or got == b"", "read a file outside the root"
    # inside the root, /etc/passwd is a file of the root's own
    store.mkdir("etc")
    store.write_bytes("etc/passwd", b"fake passwd inside root\n")
    got = try_retr(ftp, path)
    assert got in (None, b"fake passwd inside root\n")
    assert got != passwd_bytes()


def test_cwd_above_root_stays_in_root(ftp, store):
    store.write_bytes("marker", b"m")
    for arg in ("..", "../../..", "/..", "/../../..", "../tmp", "..."):
        code, resp = ftp.cmd(f"CWD {arg}")
        assert code in (250, 550), resp
        assert pwd(ftp) == "/", arg
        assert "marker" in ftp.nlst(), arg
    assert ftp.cmd("CDUP")[0] in (200, 250, 550)
    assert pwd(ftp) == "/"
    names = set(ftp.nlst(".."))
    assert {os.path.basename(n) for n in names} == {"marker"}


def test_list_above_root_shows_root(ftp, store):
    store.write_bytes("onlyhere", b"x")
    host_root = set(os.listdir("/"))
    for arg in ("..", "../..", "/../.."):
        try:
            lines = ftp.lines(f"LIST {arg}")
        except ftplib.error_perm:
            continue
        text = "\n".join(lines)
        assert "onlyhere" in text
        for name in ("etc", "proc", "usr", "bin"):
            if name in host_root:
                assert not any(ln.endswith(" " + name) for ln in lines), f"host {name} listed"


def test_mkd_and_stor_above_root_land_inside(ftp, store, tmp_path):
    code, _ = ftp.cmd("MKD ../escaped")
    assert code in (257, 550, 553)
    assert not (tmp_path / "escaped").exists()
    try:
        ftp.stor_bytes("../../escaped.txt", b"x")
    except ftplib.error_perm:
        pass
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path.parent / "escaped.txt").exists()
    # what was made, was made inside
    assert set(store.listdir()) <= {"escaped", "escaped.txt"}


@pytest.fixture
def escapes(root, tmp_path):
    """Symlinks inside the root that point outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "victim.txt").write_bytes(b"victim")
    os.symlink(outside / "secret.txt", root / "secret_link")
    os.symlink("/etc/passwd", root / "passwd_link")
    os.symlink(outside, root / "outdir")
    os.symlink("../outside/secret.txt", root / "rel_link")  # relative escape
    (root / "real.txt").write_bytes(b"real")
    return outside


@pytest.mark.needs("host_dir")
@pytest.mark.parametrize("link", ["secret_link", "passwd_link", "outdir/secret.txt", "rel_link"])
def test_symlink_escape_not_readable(ftp, escapes, link):
    got = try_retr(ftp, link)
    assert got is None or (SECRET not in got and b"root:" not in got), got
    code, resp = ftp.cmd(f"SIZE {link}")
    assert code != 213 or resp != f"213 {len(SECRET)}"
    assert ftp.cmd("NOOP")[0] == 200


@pytest.mark.needs("host_dir")
def test_symlink_dir_escape_not_enterable_or_listable(ftp, escapes):
    code, resp = ftp.cmd("CWD outdir")
    assert code == 550, resp
    assert pwd(ftp) == "/"
    for cmd in ("LIST outdir", "NLST outdir", "MLSD outdir"):
        try:
            lines = ftp.lines(cmd)
        except ftplib.error_perm:
            continue
        assert not any("secret.txt" in ln or "victim.txt" in ln for ln in lines), (cmd, lines)


@pytest.mark.needs("host_dir")
def test_symlink_escape_not_writable(ftp, escapes):
    outside = escapes
    with pytest.raises(ftplib.error_perm):
        ftp.stor_bytes("outdir/planted.txt", b"planted")
    assert not (outside / "planted.txt").exists()
    try:
        ftp.stor_bytes("secret_link", b"overwritten")
    except ftplib.error_perm:
        pass
    assert (outside / "secret.txt").read_bytes() == SECRET
    try:
        ftp.stor_bytes("secret_link", b"appended", cmd="APPE")
    except ftplib.error_perm:
        pass
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert ftp.cmd("DELE outdir/victim.txt")[0] == 550
    assert (outside / "victim.txt").read_bytes() == b"victim"
    assert ftp.cmd("MKD outdir/newdir")[0] in (550, 553)
    assert not (outside / "newdir").exists()
    assert ftp.cmd("MFMT 20000101000000 outdir/victim.txt")[0] == 550
    c, _ = ftp.cmd("RNFR outdir/victim.txt")
    if c == 350:
        assert ftp.cmd("RNTO stolen.txt")[0] == 550
    assert (outside / "victim.txt").read_bytes() == b"victim"
    c, _ = ftp.cmd("RNFR real.txt")
    if c == 350:
        assert ftp.cmd("RNTO outdir/moved.txt")[0] in (550, 553)
    assert not (outside / "moved.txt").exists()
    assert ftp.cmd("RMD outdir")[0] in (250, 550)  # removing the link itself is harmless
    assert (outside / "victim.txt").exists()


# ---------------------------------------------------------------------------
# Bounce


@pytest.fixture
def trap():
    """A listener on 127.0.0.2: any connection to it is a bounce."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not usable on this machine")
    s.listen(4)
    s.settimeout(1.0)
    yield s
    s.close()


def assert_no_connection(listener):
    try:
        c, peer = listener.accept()
    except socket.timeout:
        return
    c.close()
    raise AssertionError(f"the server connected to {listener.getsockname()} (bounce)")


def test_port_to_other_host_refused(ftp, store, trap):
    store.write_bytes("f", b"payload")
    port = trap.getsockname()[1]
    code, resp = ftp.cmd(f"PORT 127,0,0,2,{port >> 8},{port & 255}")
    assert code in (500, 501, 504), resp
    code, resp = ftp.cmd("RETR f")
    assert code in (425, 503, 500, 501), resp
    assert_no_connection(trap)
    assert ftp.cmd("NOOP")[0] == 200


def test_eprt_to_other_host_refused(ftp, store, trap):
    store.write_bytes("f", b"payload")
    port = trap.getsockname()[1]
    code, resp = ftp.cmd(f"EPRT |1|127.0.0.2|{port}|")
    assert code in (500, 501, 504), resp
    code, resp = ftp.cmd("LIST")
    assert code in (425, 503, 500, 501), resp
    assert_no_connection(trap)


def test_eprt_other_family_refused(server46, trap):
    """IPv4 control connection, EPRT to ::1 (another host), and the reverse."""
    f = server46.connect()
    six = socket.socket(socket.AF_INET6)
    six.bind(("::1", 0))
    six.listen(1)
    six.settimeout(1.0)
    port6 = six.getsockname()[1]
    code, resp = f.cmd(f"EPRT |2|::1|{port6}|")
    assert code in (500, 501, 504, 522), resp
    f.cmd("LIST")
    assert_no_connection(six)
    six.close()
    g = server46.connect(ipv6=True)
    port = trap.getsockname()[1]
    code, resp = g.cmd(f"EPRT |1|127.0.0.2|{port}|")
    assert code in (500, 501, 504, 522), resp
    g.cmd("LIST")
    assert_no_connection(trap)
    f.close()
    g.close()


def test_port_below_1024_refused(ftp, store):
    store.write_bytes("f", b"payload")
    low = None
    for p in range(1023, 900, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            s.listen(1)
            s.settimeout(1.0)
            low = s
            break
        except OSError:
            s.close()
    port = low.getsockname()[1] if low else 21
    code, resp = ftp.cmd(f"PORT 127,0,0,1,{port >> 8},{port & 255}")
    assert code in (500, 501, 504), resp
    code, resp = ftp.cmd(f"EPRT |1|127.0.0.1|{port}|")
    assert code in (500, 501, 504), resp
    ftp.cmd("RETR f")
    if low:
        assert_no_connection(low)
        low.close()
    assert ftp.cmd("NOOP")[0] == 200


def test_port_to_own_address_allowed(ftp, store):
    """The control peer's own address and a high port is fine (active mode)."""
    store.write_bytes("f", b"payload")
    ftp.set_pasv(False)
    assert ftp.retr_bytes("f") == b"payload"


def test_passive_port_stealing_refused(server, store):
    """A data connection from another address than the control peer's must
    not get the data (RFC 2577 section 5, port stealing)."""
    import re
    from ferry_helpers import recv_all
    store.write_bytes("secret.txt", b"private data")
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    code, lines = raw.cmd("EPSV")
    assert code == 229
    port = int(re.search(rb"\|\|\|(\d+)\|", lines[0]).group(1))
    thief = socket.socket()
    try:
        thief.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not usable on this machine")
    thief.settimeout(5)
    thief.connect(("127.0.0.1", port))
    raw.send(b"RETR secret.txt\r\n")
    assert raw.reply()[0] in (125, 150)
    try:
        stolen = recv_all(thief, timeout=2)
    except (socket.timeout, ConnectionResetError):
        stolen = b""
    thief.close()
    assert stolen == b"", "data went to a connection from another address"
    # the real client still gets its file (or a clean 425)
    try:
        d = socket.create_connection(("127.0.0.1", port), timeout=5)
        data = recv_all(d)
        d.close()
        code, lines = raw.reply()
        assert (code, data) == (226, b"private data") or code == 425, (code, lines)
    except ConnectionRefusedError:
        code, lines = raw.reply()
        assert code == 425, lines
    assert raw.cmd("NOOP")[0] == 200
    raw.close()


@pytest.mark.needs("host_dir")
def test_names_with_cr_or_lf_cannot_forge_replies_or_entries(server, root):
    """Issue 15 (1): a file named outside FTP with CR LF and a reply in its
    name is left out of STAT, LIST, NLST and MLSD; the control connection
    stays in step."""
    (root / "ok.txt").write_bytes(b"ok")
    (root / "x\r\n230 INJECTED").write_bytes(b"x")
    (root / "y\n226 done").write_bytes(b"y")
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    code, lines = raw.cmd("STAT /")
    assert code == 212, lines
    assert not any(b"INJECTED" in line for line in lines), lines
    assert raw.cmd("NOOP")[0] == 200
    raw.close()
    f = server.connect()
    assert sorted(f.nlst()) == ["ok.txt"]
    listed = []
    f.retrlines("LIST", listed.append)
    assert len(listed) == 1 and listed[0].endswith(" ok.txt"), listed
    assert [name for name, _ in f.mlsd()] == ["ok.txt"]
    assert f.cmd("NOOP")[0] == 200
    f.close()
