"""curl as a client: listing, download, upload, create-dirs, passive and
active modes, resume, IPv6."""
import pytest

from ferry_helpers import rand_bytes, run_tool, tool, TOOL_TIMEOUT


@pytest.fixture
def curl():
    exe = tool("curl")

    def run(*args, check=True):
        return run_tool([exe, "-sS", "--max-time", str(TOOL_TIMEOUT - 5), "-v", *args], check=check)

    return run


@pytest.fixture
def files(store):
    data = rand_bytes(700_000, 11)
    with store.batch():
        store.write_bytes("data.bin", data)
        store.mkdir("sub/deep")
        store.write_bytes("sub/deep/n.txt", b"nested\n")
    return data


def sent(p, verb):
    """Whether curl's -v trace shows it sending `verb`."""
    return any(ln.startswith("> " + verb) for ln in p.stderr.decode(errors="replace").splitlines())


def test_list(server, curl, files):
    p = curl(server.url("/"))
    out = p.stdout.decode()
    assert "data.bin" in out and "sub" in out
    p = curl("-l", server.url("/"))
    assert sorted(p.stdout.decode().split()) == ["data.bin", "sub"]
    p = curl(server.url("/sub/"))
    assert "deep" in p.stdout.decode()


def test_download(server, curl, files, tmp_path):
    out = tmp_path / "out.bin"
    curl("-o", str(out), server.url("/data.bin"))
    assert out.read_bytes() == files


@pytest.mark.parametrize("method", ["multicwd", "singlecwd", "nocwd"])
def test_download_nested(server, curl, files, tmp_path, method):
    out = tmp_path / "n.txt"
    curl("--ftp-method", method, "-o", str(out), server.url("/sub/deep/n.txt"))
    assert out.read_bytes() == b"nested\n"


def test_upload(server, curl, store, tmp_path):
    src = tmp_path / "src.bin"
    data = rand_bytes(900_000, 12)
    src.write_bytes(data)
    curl("-T", str(src), server.url("/up.bin"))
    assert store.read_bytes("up.bin") == data
    # trailing slash: the local name is used
    store.mkdir("d")
    curl("-T", str(src), server.url("/d/"))
    assert store.read_bytes("d/src.bin") == data


def test_upload_create_dirs(server, curl, store, tmp_path):
    src = tmp_path / "c.txt"
    src.write_bytes(b"created dirs\n")
    curl("--ftp-create-dirs", "-T", str(src), server.url("/a/b/c/c.txt"))
    assert store.read_bytes("a/b/c/c.txt") == b"created dirs\n"
    # again, now that the dirs exist
    curl("--ftp-create-dirs", "-T", str(src), server.url("/a/b/c/d.txt"))
    assert store.read_bytes("a/b/c/d.txt") == b"created dirs\n"


def test_missing_file_fails(server, curl, files, tmp_path):
    p = curl("-o", str(tmp_path / "x"), server.url("/nope.bin"), check=False)
    assert p.returncode == 78, p.stderr.decode()[-2000:]  # CURLE_REMOTE_FILE_NOT_FOUND
    p = curl(server.url("/nodir/"), check=False)
    assert p.returncode in (9, 78), p.stderr.decode()[-2000:]  # access denied to dir / not found


@pytest.mark.parametrize("flags,verb", [
    ([], "EPSV"),
    (["--ftp-pasv"], "EPSV"),
    (["--disable-epsv"], "PASV"),
    (["-P", "127.0.0.1"], "EPRT"),
    (["-P", "127.0.0.1", "--disable-eprt"], "PORT"),
    (["-P", "-"], "EPRT"),
])
def test_modes_both_ways(server, curl, files, store, tmp_path, flags, verb):
    out = tmp_path / "dl.bin"
    p = curl(*flags, "-o", str(out), server.url("/data.bin"))
    assert out.read_bytes() == files
    assert sent(p, verb), f"curl did not use {verb}"
    fallback = {"EPSV": "PASV", "EPRT": "PORT"}.get(verb)
    assert not fallback or not sent(p, fallback), f"curl fell back from {verb} to {fallback}"
    up = tmp_path / "ul.bin"
    data = rand_bytes(400_000, 13)
    up.write_bytes(data)
    curl(*flags, "-T", str(up), server.url("/ul.bin"))
    assert store.read_bytes("ul.bin") == data
    p = curl(*flags, "-l", server.url("/"))
    assert sorted(p.stdout.decode().split()) == ["data.bin", "sub", "ul.bin"]


def test_resume_download(server, curl, files, tmp_path):
    out = tmp_path / "part.bin"
    out.write_bytes(files[:250_000])
    p = curl("-C", "-", "-o", str(out), server.url("/data.bin"))
    assert sent(p, "REST 250000")
    assert out.read_bytes() == files


def test_resume_upload(server, curl, store, tmp_path):
    data = rand_bytes(500_000, 14)
    store.write_bytes("part.bin", data[:123_456])
    src = tmp_path / "full.bin"
    src.write_bytes(data)
    curl("-C", "-", "-T", str(src), server.url("/part.bin"))
    assert store.read_bytes("part.bin") == data


def test_range(server, curl, files, tmp_path):
    out = tmp_path / "r.bin"
    curl("-r", "1000-", "-o", str(out), server.url("/data.bin"))
    assert out.read_bytes() == files[1000:]


def test_head_size_and_mtime(server, curl, files):
    p = curl("-I", server.url("/data.bin"))
    out = p.stdout.decode()
    assert f"Content-Length: {len(files)}" in out, out
    assert "Last-Modified:" in out, out


def test_quote_commands(server, curl, store, files):
    curl("-Q", "MKD made", "-Q", "RNFR data.bin", "-Q", "RNTO made/moved.bin", server.url("/"))
    assert store.read_bytes("made/moved.bin") == files
    curl("-Q", "DELE made/moved.bin", "-Q", "RMD made", server.url("/"))
    assert not store.exists("made")


def test_ipv6(start_server, curl, files, store, tmp_path):
    s = start_server(ipv6=True)
    out = tmp_path / "v6.bin"
    p = curl("-g", "-o", str(out), s.url("/data.bin", ipv6=True))
    assert out.read_bytes() == files
    assert sent(p, "EPSV")
    p = curl("-g", "-l", s.url("/", ipv6=True))
    assert sorted(p.stdout.decode().split()) == ["data.bin", "sub"]
    src = tmp_path / "u6.bin"
    data = rand_bytes(300_000, 15)
    src.write_bytes(data)
    curl("-g", "-T", str(src), s.url("/u6.bin", ipv6=True))
    assert store.read_bytes("u6.bin") == data
    # active over IPv6
    out2 = tmp_path / "v6a.bin"
    p = curl("-g", "-P", "-", "-o", str(out2), s.url("/data.bin", ipv6=True))
    assert out2.read_bytes() == files
    assert sent(p, "EPRT |2|")
