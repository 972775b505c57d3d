"""ferryd for Windows (x86_64-pc-windows-gnu) run under Wine, against curl
from Linux: login, list, a random file put and got back byte-exact (and
compared on disk, through Wine's Z: drive), in a new subdirectory too, then
deleted; active mode; FTPES on ring; littlefs and FAT images. Every
ferryd.exe must stop cleanly on Ctrl-C, and no Wine process may be left.

A smoke test, not the conformance suite: tests/integration runs every client
against the Linux build; this proves the Windows build serves at all, with
Windows paths, sockets and console signals.
"""
from __future__ import annotations

import os
import re

import pytest
from conftest import COMMAND_TIMEOUT, finish, start, stop, windows_path

# One `ls -l` line: size, then the name at the end.
LIST_LINE = re.compile(r"^[-d]\S{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\w{3}\s+\d+\s+\S+\s+(.+)$")


def listing(ferryd, path: str = "") -> dict[str, int]:
    """LIST of `path` (a directory, '' for the home) as {name: size}."""
    out = ferryd.curl(path).stdout
    entries = {}
    for line in out.splitlines():
        m = LIST_LINE.match(line)
        assert m, f"not an `ls -l` line: {line!r} in\n{out}"
        entries[m.group(2)] = int(m.group(1))
    return entries


def test_login_and_list_an_empty_root(ferryd):
    # The root it made is named as Windows users write it (no `\\?\`).
    assert f"serving {windows_path(ferryd.root)}\n" in ferryd.log()
    assert listing(ferryd) == {}
    # A wrong password is refused (curl's exit code 67: login denied).
    res = ferryd.exec(["curl", "--silent", "--max-time", str(COMMAND_TIMEOUT),
                       "--user", f"{ferryd.user}:wrong", ferryd.url], check=False)
    assert res.returncode == 67, res


def test_put_get_byte_exact_and_delete(ferryd, tmp_path):
    # Not a multiple of the 64 KiB transfer buffer, nor of 4 KiB pages.
    data = os.urandom(3 * 1024 * 1024 + 12345)
    sent = tmp_path / "sent.bin"
    sent.write_bytes(data)
    for path in ("random.bin", "sub/dir/random.bin"):
        ferryd.curl(path, "--ftp-create-dirs", "--upload-file", str(sent))
        on_disk = ferryd.root.joinpath(*path.split("/"))
        assert on_disk.read_bytes() == data, f"{path}: the served file differs"
        got = tmp_path / "got.bin"
        ferryd.curl(path, "--output", str(got))
        assert got.read_bytes() == data, f"{path}: the downloaded file differs"
        parent, _, name = path.rpartition("/")
        assert listing(ferryd, parent + "/" if parent else "") == {name: len(data)}
        # curl sends quoted commands before it changes directory.
        ferryd.curl("", "--quote", f"DELE /{path}")
        assert not on_disk.exists()
    ferryd.curl("", "--quote", "RMD /sub/dir")
    assert listing(ferryd, "sub/") == {}
    assert not (ferryd.root / "sub" / "dir").exists()


def test_active_mode_and_ftpes_on_ring(ferryd, tmp_path):
    """A data connection ferryd.exe opens to the client (PORT), and FTPES:
    AUTH TLS with the self-signed certificate, on the ring provider that
    mingw-w64 compiled. (Not both at once: Debian 12's curl 7.88 stalls
    after accepting a TLS data connection in active mode, whichever server
    it talks to; tests/integration covers that case with ftplib.)"""
    assert "crypto: ring" in ferryd.log()
    data = os.urandom(200_000)
    sent = tmp_path / "tls.bin"
    sent.write_bytes(data)
    tls = ("--ssl-reqd", "--insecure")
    ferryd.curl("tls.bin", *tls, "--upload-file", str(sent))
    assert (ferryd.root / "tls.bin").read_bytes() == data
    for mode in (tls, ("--ftp-port", ferryd.server_ip)):
        got = tmp_path / "got.bin"
        ferryd.curl("tls.bin", *mode, "--output", str(got))
        assert got.read_bytes() == data, mode
        got.unlink()
    ferryd.curl("", *tls, "--quote", "DELE /tls.bin")
    assert "tls.bin" not in listing(ferryd)


@pytest.mark.parametrize("kind", ["littlefs", "fat"])
def test_an_image_file(served, tmp_path, kind):
    """`--fs KIND:IMAGE` with a Windows path: littlefs's C, compiled by
    mingw-w64, and the FAT adapter serve a file put and got back."""
    image = tmp_path / f"{kind}.img"
    server = start(served.prefix, tmp_path / "work",
                   ["--fs", f"{kind}:{windows_path(image)}", "--fs-size", "4M"])
    try:
        assert f"serving {'FAT' if kind == 'fat' else kind} image {windows_path(image)}" \
            in server.log()
        data = os.urandom(300_000)
        sent = tmp_path / "sent.bin"
        sent.write_bytes(data)
        server.curl("d/f.bin", "--ftp-create-dirs", "--upload-file", str(sent))
        got = tmp_path / "got.bin"
        server.curl("d/f.bin", "--output", str(got))
        assert got.read_bytes() == data
        assert listing(server, "d/") == {"f.bin": len(data)}
    except BaseException:
        stop(server.proc)
        raise
    finish(server)
    assert image.stat().st_size == 4 * 1024 * 1024
