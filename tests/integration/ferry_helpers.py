"""Helpers shared by Ferry's end-to-end tests: the ferryd process, FTP clients
with a few knobs ftplib lacks, raw control connections and tree comparison.

Everything that touches the network has a timeout; nothing here sleeps where
polling works.
"""
from __future__ import annotations

import atexit
import ftplib
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ferry_store import snapshot_dir

TIMEOUT = 10          # seconds, for every socket operation
TOOL_TIMEOUT = 60     # seconds, for curl / lftp runs
READY_TIMEOUT = 10    # seconds, for ferryd to print "listening on"

USER = "test"
PASSWORD = "secret"

# The `ls -l` shape FileZilla / WinSCP / rclone parsers accept.
LIST_RE = re.compile(
    r"^[-d](?:[-r][-w][-xsS]){3}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+(\w{3})\s+(\d{1,2})\s+"
    r"(\d{2}:\d{2}|\d{4})\s+(.+)$"
)
# One MLSx entry: facts, one space, the name (RFC 3659 7.2).
MLSX_RE = re.compile(r"^((?:[A-Za-z0-9.\-]+=[^;]*;)+) (.+)$")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def ferryd_path() -> Path:
    env = os.environ.get("FERRYD")
    if env:
        return Path(env).resolve()
    return repo_root() / "target" / "release" / "ferryd"


def rand_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def free_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_range(n: int) -> tuple:
    """`n` consecutive ports that are free now and outside the kernel's
    ephemeral range (so no client socket grabs one meanwhile)."""
    try:
        lo_e, hi_e = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    except (OSError, ValueError):
        lo_e, hi_e = 32768, 60999
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, max(10001, lo_e - n - 1))
        if base + n - 1 >= lo_e and base <= hi_e:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base, base + n - 1
    raise RuntimeError("no free port range")


_HAS_IPV6 = None


def has_ipv6_loopback() -> bool:
    global _HAS_IPV6
    if _HAS_IPV6 is None:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", 0))
            _HAS_IPV6 = True
        except OSError:
            _HAS_IPV6 = False
    return _HAS_IPV6


def wait_until(pred, timeout=10.0, interval=0.05):
    """Polls `pred` until it returns a truthy value or `timeout` passes;
    returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# --------------------------------------------------------------------------
# The server process


class ServerStartError(Exception):
    pass


_LIVE = set()
# Numbers the files of every ferryd run, so two servers of a test never
# share a log.
_RUNS = itertools.count(1)


@atexit.register
def _kill_leftovers():
    """Last resort (e.g. the test run itself is interrupted)."""
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()


class Ferryd:
    """One ferryd process serving `store` (a `ferry_store.Store`). `port` is
    the IPv4 listener, `port6` the IPv6 one (None when not started with IPv6)."""

    def __init__(self, binary: Path, store, workdir: Path):
        self.binary = binary
        self.store = store
        self.workdir = workdir
        self.proc = None
        self.port = None
        self.port6 = None
        self.listening = []
        self.args = []

    # -- lifecycle
    def start(self, args=(), users=((USER, PASSWORD),), ipv4=True, ipv6=False,
              config=None, root_arg=True, tries=5, listen=None):
        """Starts ferryd. `config` is a function (port, port6) -> TOML text;
        when given, ferryd gets `--config FILE` and no --root/--fs/--listen/
        --user (the config must hold them: `store.config_toml()` selects the
        storage). `listen` replaces the loopback listeners with addresses
        like "[::]:{port}" ({port} is a free port)."""
        last = None
        for _ in range(tries):
            if listen:
                ipv4 = ipv6 = False
            port = free_port() if ipv4 or listen else None
            port6 = free_port(socket.AF_INET6, "::1") if ipv6 else None
            argv = [str(self.binary)]
            if config is not None:
                cfg = self.workdir / f"ferryd-{next(_RUNS)}.toml"
                cfg.write_text(config(port, port6), encoding="utf-8")
                argv += ["--config", str(cfg)]
            else:
                if root_arg:
                    argv += self.store.server_args()
                if ipv4:
                    argv += ["--listen", f"127.0.0.1:{port}"]
                if ipv6:
                    argv += ["--listen", f"[::1]:{port6}"]
                for addr in listen or ():
                    argv += ["--listen", addr.format(port=port)]
                for name, pw in users:
                    argv += ["--user", f"{name}:{pw}"]
            argv += [str(a) for a in args]
            try:
                self._spawn(argv, expect=len(listen) if listen else int(ipv4) + int(ipv6))
            except ServerStartError as e:
                last = e
                continue
            self.port, self.port6 = port, (port if listen else port6)
            self.args = argv
            self.store.attach(self)
            return self
        raise last

    def _spawn(self, argv, expect):
        n = next(_RUNS)
        self.out_path = self.workdir / f"ferryd-{n}.stdout"
        self.err_path = self.workdir / f"ferryd-{n}.stderr"
        out = open(self.out_path, "wb")
        err = open(self.err_path, "wb")
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.workdir)
        _LIVE.add(self.proc)
        out.close()
        err.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            text = self.out_path.read_text(errors="replace")
            self.listening = re.findall(r"listening on (ftp://\S+)", text)
            if len(self.listening) >= expect:
                return
            if self.proc.poll() is not None:
                raise ServerStartError(
                    f"ferryd exited with {self.proc.returncode} before listening; argv={argv}\n"
                    f"stdout:\n{text}\nstderr:\n{self.stderr()[-4000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(
                    f"ferryd printed no 'listening on' line within {READY_TIMEOUT}s; argv={argv}\n"
                    f"stdout:\n{text}\nstderr:\n{self.stderr()[-4000:]}")
            time.sleep(0.02)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except (OSError, AttributeError):
            return ""

    def stop(self):
        """Terminates, waits, kills. Returns the exit code."""
        p = self.proc
        if p is None:
            return None
        self.store.detach(self)
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        _LIVE.discard(p)
        return p.returncode

    def interrupt(self, timeout=10):
        """Sends SIGINT (Ctrl-C) and waits; returns the exit code or None."""
        self.proc.send_signal(signal.SIGINT)
        self.store.detach(self)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- clients
    def connect(self, login=True, ipv6=False, user=USER, password=PASSWORD, cls=None,
                encoding="utf-8"):
        cls = cls or FTP
        f = cls(timeout=TIMEOUT, encoding=encoding)
        if ipv6:
            f.connect("::1", self.port6)
        else:
            f.connect("127.0.0.1", self.port)
        if login:
            f.login(user, password)
        return f

    def raw(self, ipv6=False):
        return RawControl(("::1", self.port6) if ipv6 else ("127.0.0.1", self.port))

    def url(self, path="/", user=USER, password=PASSWORD, ipv6=False):
        auth = f"{user}:{password}@" if user else ""
        host = f"[::1]:{self.port6}" if ipv6 else f"127.0.0.1:{self.port}"
        return f"ftp://{auth}{host}{path}"


# --------------------------------------------------------------------------
# Clients


class FTP(ftplib.FTP):
    """ftplib.FTP that can use EPSV/EPRT on IPv4 too (`ext = True`)."""

    ext = False

    def makepasv(self):
        if self.ext or self.af != socket.AF_INET:
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return super().makepasv()

    def makeport(self):
        if not self.ext:
            return super().makeport()
        host = self.sock.getsockname()[0]
        sock = socket.create_server((host, 0), family=self.af, backlog=1)
        self.sendeprt(host, sock.getsockname()[1])
        sock.settimeout(self.timeout)
        return sock

    def cmd(self, line):
        """Sends one command; returns (code, full reply text) whatever the
        code (ftplib raises on 4xx/5xx)."""
        try:
            resp = self.sendcmd(line)
        except (ftplib.error_temp, ftplib.error_perm, ftplib.error_proto,
                ftplib.error_reply) as e:
            resp = str(e)
        return int(resp[:3]), resp

    def retr_bytes(self, path, rest=None):
        chunks = []
        self.retrbinary(f"RETR {path}", chunks.append, rest=rest)
        return b"".join(chunks)

    def stor_bytes(self, path, data, rest=None, cmd="STOR"):
        import io
        return self.storbinary(f"{cmd} {path}", io.BytesIO(data), rest=rest)

    def lines(self, cmd):
        out = []
        self.retrlines(cmd, out.append)
        return out


def set_mode(ftp: FTP, mode: str):
    """mode: pasv | epsv | port | eprt."""
    ftp.set_pasv(mode in ("pasv", "epsv"))
    ftp.ext = mode in ("epsv", "eprt")


class RawControl:
    """A bare control connection for byte-level tests."""

    def __init__(self, addr, timeout=TIMEOUT):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self):
        """Reads one (possibly multi-line) reply: (code, [lines])."""
        first = self.line()
        lines = [first]
        if len(first) < 3 or not first[:3].isdigit():
            raise AssertionError(f"malformed reply line {first!r}")
        code = int(first[:3])
        if first[3:4] == b"-":
            end = first[:3] + b" "
            while True:
                ln = self.line()
                lines.append(ln)
                if ln.startswith(end):
                    break
        return code, lines

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def login(self, user=USER, password=PASSWORD):
        code, _ = self.cmd(f"USER {user}")
        assert code == 331, code
        code, _ = self.cmd(f"PASS {password}")
        assert code == 230, code

    def at_eof(self, timeout=TIMEOUT) -> bool:
        """Reads until EOF (True) or timeout (False); keeps what it read."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def pasv_connect(raw: RawControl, ipv6=False, rcvbuf=None):
    """EPSV on `raw`, then a data connection to the port it names."""
    code, lines = raw.cmd("EPSV")
    assert code == 229, (code, lines)
    port = int(re.search(rb"\(\|\|\|(\d+)\|\)", lines[0]).group(1))
    fam = socket.AF_INET6 if ipv6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT)
    s.connect(("::1" if ipv6 else "127.0.0.1", port))
    return s


def recv_all(sock, timeout=TIMEOUT) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        c = sock.recv(1 << 20)
        if not c:
            return b"".join(chunks)
        chunks.append(c)


def rst_close(sock):
    """Closes with an RST instead of a FIN (SO_LINGER 0)."""
    import struct
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


# --------------------------------------------------------------------------
# Files


def snapshot(top):
    """{relative path: bytes or None for a directory}, skipping the top.
    `top` is a host directory, or `(store, rel)` for a tree in a Store."""
    if isinstance(top, tuple):
        store, rel = top
        return store.snapshot(rel)
    return snapshot_dir(Path(top))


def assert_same_tree(a, b):
    """`a`, `b`: host directories or `(store, rel)` (see `snapshot`)."""
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb), f"trees differ: only in {a}: {sorted(set(sa) - set(sb))}; only in {b}: {sorted(set(sb) - set(sa))}"
    for k in sa:
        if sa[k] != sb[k]:
            raise AssertionError(f"{k} differs: {len(sa[k] or b'')} vs {len(sb[k] or b'')} bytes")


def mdtm_of(ts: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(int(ts)))


def tool(name: str) -> str:
    """Path of an external client, or skip/fail when it is missing."""
    import pytest
    p = shutil.which(name)
    if p:
        return p
    msg = f"`{name}` is not installed (run `cargo xtask setup`, or apt-get install {name})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def run_tool(argv, timeout=TOOL_TIMEOUT, env=None, check=True, cwd=None):
    e = dict(os.environ)
    e.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "HOME": e.get("HOME", "/tmp")})
    if env:
        e.update(env)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=e, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{argv[0]} exited {p.returncode}\nargv: {argv}\nstdout:\n"
            f"{p.stdout[-3000:].decode(errors='replace')}\nstderr:\n{p.stderr[-6000:].decode(errors='replace')}")
    return p
