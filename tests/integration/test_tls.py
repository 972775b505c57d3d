"""FTPS (implicit) and FTPES (AUTH TLS) with real clients: Python's
ftplib.FTP_TLS (with and without TLS session reuse on data connections), an
implicit-TLS client, curl and lftp; the require-TLS refusals; clients that
send garbage or stall mid-handshake.

TLS does not depend on the storage, so these tests run on the host
directory backend only. Certificates: `--tls-self-signed` (checked against
the fingerprint ferryd prints), and PEM files made here by `openssl` with
the names 127.0.0.1 and localhost, which clients verify for real.
"""
from __future__ import annotations

import ftplib
import hashlib
import io
import re
import socket
import ssl
import subprocess
import time

import pytest

from ferry_helpers import (
    PASSWORD,
    TIMEOUT,
    USER,
    free_port,
    rand_bytes,
    run_tool,
    tool,
    wait_until,
)

pytestmark = pytest.mark.needs("host_dir")

FINGERPRINT_RE = re.compile(r"fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")


# --------------------------------------------------------------------------
# Clients


def client_context(cafile=None, max_tls12=False) -> ssl.SSLContext:
    """A client context: verifying against `cafile`, or trusting anything
    (the tests then compare the certificate's fingerprint)."""
    if cafile:
        ctx = ssl.create_default_context(cafile=str(cafile))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class FTPS(ftplib.FTP_TLS):
    """ftplib's FTP_TLS (which never resumes TLS sessions on data
    connections), remembering whether each data connection resumed."""

    reuse = False

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.resumed = []

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = self.sock.session if self.reuse else None
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=session)
            self.resumed.append(conn.session_reused)
        return conn, size

    def retr_bytes(self, path):
        chunks = []
        self.retrbinary(f"RETR {path}", chunks.append)
        return b"".join(chunks)

    def stor_bytes(self, path, data):
        return self.storbinary(f"STOR {path}", io.BytesIO(data))

    def cmd(self, line):
        """(code, text) whatever the code."""
        try:
            resp = self.sendcmd(line)
        except ftplib.all_errors as e:
            resp = str(e)
        return int(resp[:3]), resp


class ReuseFTPS(FTPS):
    """Resumes the control connection's TLS session on every data
    connection, as lftp, curl and FileZilla do."""

    reuse = True


class ImplicitFTPS(FTPS):
    """Implicit FTPS: TLS from the first byte, no AUTH command."""

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), self.timeout)
        self.af = self.sock.family
        self.sock = self.context.wrap_socket(self.sock, server_hostname=host)
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome


def final_reply(f) -> int:
    """The code of the next reply that is not a preliminary 1xx."""
    while True:
        resp = f.getmultiline()
        if not resp.startswith("1"):
            return int(resp[:3])


def fingerprint_of(sock) -> str:
    digest = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# --------------------------------------------------------------------------
# Servers


def make_cert(tmp_path, kind="ec"):
    """A certificate for 127.0.0.1 and localhost made by openssl, as PEM
    files: (cert, key)."""
    openssl = tool("openssl")
    cert, key = tmp_path / f"{kind}-cert.pem", tmp_path / f"{kind}-key.pem"
    new_key = (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec"
               else ["-newkey", "rsa:2048"])
    subprocess.run([openssl, "req", "-x509", *new_key, "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
def tls_server(start_server):
    """Factory: ferryd with TLS (self-signed unless `cert=(cert, key)`) and
    an implicit-TLS listener; the server gets `implicit_port` and
    `fingerprint` (from its start-up lines)."""

    def start(*args, cert=None, implicit=True):
        tls_args = (["--tls-cert", str(cert[0]), "--tls-key", str(cert[1])] if cert
                    else ["--tls-self-signed"])
        port = free_port() if implicit else None
        if implicit:
            tls_args += ["--implicit-listen", f"127.0.0.1:{port}"]
        s = start_server(args=[*tls_args, *args])
        s.implicit_port = port
        if implicit:
            assert wait_until(lambda: f"listening on ftps://127.0.0.1:{port} (implicit TLS)"
                              in s.out_path.read_text(), timeout=5)
        text = s.out_path.read_text()
        m = FINGERPRINT_RE.search(text)
        assert m, text
        s.fingerprint = m.group(1)
        return s

    return start


def explicit(server, cls=FTPS, ctx=None, prot_p=True, login=True):
    f = cls(context=ctx or client_context(), timeout=TIMEOUT)
    f.connect("127.0.0.1", server.port)
    f.auth()
    if login:
        f.login(USER, PASSWORD)
    if prot_p:
        f.prot_p()
    return f


def implicit(server, cls=ImplicitFTPS, ctx=None):
    f = cls(context=ctx or client_context(), timeout=TIMEOUT)
    f.connect("127.0.0.1", server.implicit_port)
    f.login(USER, PASSWORD)
    return f


def round_trip(f, store, name, size, seed):
    """Upload, download, list and check the bytes on disk."""
    data = rand_bytes(size, seed)
    f.stor_bytes(name, data)
    assert store.read_bytes(name) == data
    assert f.retr_bytes(name) == data
    assert name in f.nlst()
    lines = []
    f.retrlines("MLSD", lines.append)
    assert any(line.endswith(" " + name) for line in lines), lines


# --------------------------------------------------------------------------
# Explicit TLS (AUTH TLS) with ftplib


def test_feat_advertises_tls_and_the_certificate_is_the_printed_one(tls_server):
    server = tls_server()
    f = FTPS(context=client_context(), timeout=TIMEOUT)
    f.connect("127.0.0.1", server.port)
    feat = f.sendcmd("FEAT")
    for line in (" AUTH TLS", " PBSZ", " PROT"):
        assert line in feat.splitlines(), feat
    assert f.auth().startswith("234")
    assert fingerprint_of(f.sock) == server.fingerprint
    f.login(USER, PASSWORD)
    assert f.sendcmd("PBSZ 0").startswith("200")
    assert f.sendcmd("PROT P").startswith("200")
    f.quit()


def test_without_a_certificate_there_is_no_tls(start_server):
    server = start_server()
    f = FTPS(context=client_context(), timeout=TIMEOUT)
    f.connect("127.0.0.1", server.port)
    assert "AUTH TLS" not in f.sendcmd("FEAT")
    assert f.cmd("AUTH TLS")[0] == 502
    assert "TLS:" not in server.out_path.read_text()
    f.close()


@pytest.mark.parametrize("reuse", [False, True], ids=["no-reuse", "reuse"])
@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_prot_p_transfers_both_ways(tls_server, store, reuse, tls12):
    server = tls_server()
    f = explicit(server, ReuseFTPS if reuse else FTPS, client_context(max_tls12=tls12))
    assert f.sock.version() == ("TLSv1.2" if tls12 else "TLSv1.3")
    round_trip(f, store, "big.bin", 3 << 20, 1)
    round_trip(f, store, "small.txt", 10, 2)
    # An empty file and an empty listing still run a handshake each.
    round_trip(f, store, "empty", 0, 3)
    f.mkd("void")
    assert f.nlst("void") == []
    assert all(r == reuse for r in f.resumed), f.resumed
    f.quit()


def test_active_mode_and_prot_c_switch(tls_server, store):
    server = tls_server()
    f = explicit(server)
    f.set_pasv(False)
    round_trip(f, store, "active.bin", 200_000, 4)
    # PROT C: the control connection stays protected, data goes in clear.
    assert f.sendcmd("PROT C").startswith("200")
    f._prot_p = False
    f.set_pasv(True)
    assert f.retr_bytes("active.bin") == store.read_bytes("active.bin")
    assert f.cmd("CCC")[0] == 534
    f.quit()


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_certificate_files_verify_for_real(tls_server, store, tmp_path, kind):
    cert, key = make_cert(tmp_path, kind)
    server = tls_server(cert=(cert, key))
    ctx = client_context(cafile=cert)
    f = explicit(server, ReuseFTPS, ctx)
    round_trip(f, store, "verified.bin", 100_000, 5)
    f.quit()
    g = implicit(server, ctx=ctx)
    g.prot_p()
    assert g.retr_bytes("verified.bin") == store.read_bytes("verified.bin")
    g.quit()


def test_clear_text_after_auth_is_dropped(tls_server):
    """A command pipelined behind AUTH TLS in clear text must not run
    inside the TLS session (command injection, RFC 4217 9)."""
    server = tls_server()
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    raw.recv(1024)
    raw.sendall(b"AUTH TLS\r\nUSER test\r\n")
    reply = b""
    while b"\r\n" not in reply:
        reply += raw.recv(1024)
    assert reply.startswith(b"234"), reply
    tls = client_context().wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(b"PASS secret\r\n")
    answer = tls.recv(1024)
    assert answer.startswith(b"503"), answer  # no USER came before it
    tls.close()


# --------------------------------------------------------------------------
# Implicit TLS


def test_implicit_tls_session_is_protected_by_default(tls_server, store):
    server = tls_server()
    f = ImplicitFTPS(context=client_context(), timeout=TIMEOUT)
    welcome = f.connect("127.0.0.1", server.implicit_port)
    assert welcome.startswith("220")
    assert fingerprint_of(f.sock) == server.fingerprint
    assert f.cmd("AUTH TLS")[0] == 503
    f.login(USER, PASSWORD)
    # No PBSZ/PROT sent: data connections are protected from the start.
    f._prot_p = True
    round_trip(f, store, "implicit.bin", 1 << 20, 6)
    f.quit()


def test_plain_client_on_the_implicit_port_gets_no_reply(tls_server):
    server = tls_server()
    raw = socket.create_connection(("127.0.0.1", server.implicit_port), timeout=TIMEOUT)
    raw.sendall(b"USER test\r\n")
    raw.settimeout(TIMEOUT)
    got = b""
    try:
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert not got.startswith(b"220") and b"331" not in got, got
    raw.close()
    # The clear-text listener is unaffected.
    f = explicit(server)
    f.quit()


# --------------------------------------------------------------------------
# Policies


def test_require_tls_refuses_clear_text(tls_server, store):
    server = tls_server("--require-tls")
    assert "required for login and data" in server.out_path.read_text()
    f = FTPS(context=client_context(), timeout=TIMEOUT)
    f.connect("127.0.0.1", server.port)
    assert f.cmd(f"USER {USER}")[0] == 530
    f.auth()
    f.login(USER, PASSWORD)
    f._prot_p = False  # data in clear: refused
    with pytest.raises(ftplib.error_perm, match="^521"):
        f.nlst()
    assert f.cmd("PROT C")[0] == 534
    f.prot_p()
    round_trip(f, store, "required.bin", 50_000, 7)
    f.quit()
    # Implicit TLS counts as protected.
    g = implicit(server)
    g._prot_p = True
    assert g.retr_bytes("required.bin") == store.read_bytes("required.bin")
    g.quit()


@pytest.mark.parametrize("tls12", [False, True], ids=["tls13", "tls12"])
def test_require_reuse_needs_the_control_session(tls_server, store, tls12):
    server = tls_server("--tls-require-reuse")
    ctx = client_context(max_tls12=tls12)
    # A client that resumes transfers, several times over one session.
    f = explicit(server, ReuseFTPS, ctx)
    for i in range(3):
        round_trip(f, store, f"reuse{i}.bin", 70_000, 10 + i)
    assert f.resumed and all(f.resumed), f.resumed
    # ftplib's own FTP_TLS (no reuse) is refused, and its session goes on.
    g = explicit(server, FTPS, ctx)
    with pytest.raises((ssl.SSLError, OSError, ftplib.error_temp)):
        g.retr_bytes("reuse0.bin")
    code, text = g.cmd("NOOP")
    if code in (425, 426):  # the transfer's failure reply came first
        code, text = g.cmd("NOOP")
    assert code == 200, text
    g.quit()
    f.quit()


def test_data_connection_of_a_stranger_is_refused_with_reuse(tls_server, store):
    """Someone else connects to the passive port first: with reuse
    required, their TLS handshake cannot resume this control connection's
    session, so the transfer fails instead of going to them."""
    server = tls_server("--tls-require-reuse")
    store.write_bytes("secret.txt", b"for the owner only")
    f = explicit(server, ReuseFTPS)
    host, port = f.makepasv()
    thief = socket.create_connection((host, port), timeout=TIMEOUT)
    f.putcmd("RETR secret.txt")
    try:
        thief = client_context().wrap_socket(thief, server_hostname=host)
        got = thief.recv(1024)
    except (ssl.SSLError, OSError):
        got = b""
    assert got == b""
    assert final_reply(f) in (425, 426)
    thief.close()
    # The owner still transfers.
    assert f.retr_bytes("secret.txt") == b"for the owner only"
    f.quit()


# --------------------------------------------------------------------------
# Robustness


def test_garbage_and_stalled_handshakes_do_not_disturb_others(tls_server, store):
    server = tls_server()
    stalled = []
    # Stalls after AUTH TLS, and half a ClientHello on the implicit port.
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        s.recv(1024)
        s.sendall(b"AUTH TLS\r\n")
        s.recv(1024)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00")
        stalled.append(s)
        s = socket.create_connection(("127.0.0.1", server.implicit_port), timeout=TIMEOUT)
        s.sendall(b"\x16\x03\x01")
        stalled.append(s)
    # Garbage instead of a ClientHello, both ways.
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", server.implicit_port), timeout=TIMEOUT)
        s.sendall(rand_bytes(3000, 99))
        stalled.append(s)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        s.recv(1024)
        s.sendall(b"AUTH TLS\r\n")
        s.recv(1024)
        s.sendall(b"\x16\x03\x03\xff\xff" + rand_bytes(500, 98))
        stalled.append(s)
    started = time.monotonic()
    f = explicit(server, ReuseFTPS)
    round_trip(f, store, "meanwhile.bin", 1 << 20, 20)
    g = implicit(server)
    g._prot_p = True
    assert g.retr_bytes("meanwhile.bin") == store.read_bytes("meanwhile.bin")
    assert time.monotonic() - started < 10
    f.quit()
    g.quit()
    for s in stalled:
        s.close()
    assert server.alive()


def test_ctrl_c_with_open_tls_sessions_stops_cleanly(tls_server):
    server = tls_server()
    f = explicit(server)
    g = implicit(server)
    server.expected_exit = True
    assert server.interrupt() == 0
    for c in (f, g):
        try:
            c.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# curl and lftp


def test_curl_explicit_and_implicit(tls_server, store, tmp_path):
    curl = tool("curl")
    cert, key = make_cert(tmp_path)
    server = tls_server("--require-tls", "--tls-require-reuse", cert=(cert, key))
    data = rand_bytes(2 << 20, 30)
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    base = ["--silent", "--show-error", "--cacert", str(cert), "--user", f"{USER}:{PASSWORD}"]
    explicit_url = f"ftp://127.0.0.1:{server.port}"
    implicit_url = f"ftps://127.0.0.1:{server.implicit_port}"
    # Several uploads: curl never reads from an upload's data connection,
    # so anything the server sent there (a TLS 1.3 ticket) would make its
    # close a reset, which cut uploads short now and then.
    for i in range(8):
        run_tool([curl, *base, "--ssl-reqd", "-T", str(src), f"{explicit_url}/curl{i}.bin"])
        assert store.read_bytes(f"curl{i}.bin") == data
    run_tool([curl, *base, "--ssl-reqd", "-T", str(src), f"{explicit_url}/curl.bin"])
    assert store.read_bytes("curl.bin") == data
    got = run_tool([curl, *base, "--ssl-reqd", f"{explicit_url}/curl.bin"]).stdout
    assert got == data
    listing = run_tool([curl, *base, "--ssl-reqd", "--list-only", f"{explicit_url}/"]).stdout
    assert b"curl.bin" in listing
    run_tool([curl, *base, "-T", str(src), f"{implicit_url}/curl2.bin"])
    assert store.read_bytes("curl2.bin") == data
    assert run_tool([curl, *base, f"{implicit_url}/curl2.bin"]).stdout == data
    # Without TLS, the login is refused (curl: 67, access denied).
    p = run_tool([curl, "--silent", "--user", f"{USER}:{PASSWORD}", f"{explicit_url}/"],
                 check=False)
    assert p.returncode == 67, p


def test_lftp_ssl_force_and_protect_data(tls_server, store, tmp_path):
    lftp = tool("lftp")
    cert, key = make_cert(tmp_path)
    server = tls_server("--require-tls", "--tls-require-reuse", cert=(cert, key))
    local = tmp_path / "local"
    local.mkdir()
    (local / "a.bin").write_bytes(rand_bytes(1 << 20, 40))
    (local / "sub").mkdir()
    (local / "sub" / "b.txt").write_bytes(b"lftp over TLS\n")
    settings = (f"set ssl:ca-file {cert}; set ssl:verify-certificate yes; "
                "set ftp:ssl-force true; set ftp:ssl-protect-data true; "
                "set net:max-retries 1; set net:timeout 10; ")
    run_tool([lftp, "-c", settings +
              f"open -u {USER},{PASSWORD} ftp://127.0.0.1:{server.port}; "
              f"mirror -R {local} up"])
    assert store.read_bytes("up/a.bin") == (local / "a.bin").read_bytes()
    assert store.read_bytes("up/sub/b.txt") == b"lftp over TLS\n"
    down = tmp_path / "down"
    run_tool([lftp, "-c", settings +
              f"open -u {USER},{PASSWORD} ftps://127.0.0.1:{server.implicit_port}; "
              f"mirror up {down}"])
    assert (down / "a.bin").read_bytes() == (local / "a.bin").read_bytes()
    assert (down / "sub" / "b.txt").read_bytes() == b"lftp over TLS\n"
