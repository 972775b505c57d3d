"""lftp as a client: recursive mirror up and down, passive and active."""
import pytest

from ferry_helpers import PASSWORD, USER, assert_same_tree, rand_bytes, run_tool, tool

SETTINGS = ("set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 10; "
            "set net:reconnect-interval-base 1; set ftp:ssl-allow no; ")


def make_tree(top, long_names=True):
    """A tree with spaces and non-ASCII in its names, or, for a backend of
    8.3 names (`long_names` false), the same shape in 8.3 names."""
    def name(long, short):
        return long if long_names else short

    top.mkdir()
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "b" / "c" / "deep.bin").write_bytes(rand_bytes(200_000, 21))
    (top / "a" / "top.txt").write_bytes(b"line1\nline2\n")
    (top / name("empty dir", "emptydir")).mkdir()
    (top / "zero").write_bytes(b"")
    (top / name("grüße.txt", "gruss.txt")).write_bytes("grüße, Welt\n".encode())
    (top / name("name with spaces.txt", "spaces.txt")).write_bytes(b"spaces\n")
    (top / "big.bin").write_bytes(rand_bytes(3 << 20, 22))
    (top / name("Verzeichnis ä", "verz")).mkdir()
    (top / name("Verzeichnis ä", "verz") / name("ö.dat", "o.dat")).write_bytes(
        rand_bytes(1000, 23))


def lftp_run(port, script, host="127.0.0.1", extra=""):
    exe = tool("lftp")
    if ":" in host:
        target = f"open -u {USER},{PASSWORD} ftp://[{host}]:{port}"
    else:
        target = f"open -u {USER},{PASSWORD} -p {port} {host}"
    return run_tool([exe, "-c", f"{SETTINGS}{extra}{target}; {script}"])


@pytest.mark.parametrize("mode", [
    "set ftp:passive-mode on; ",
    "set ftp:passive-mode on; set ftp:prefer-epsv yes; ",
    "set ftp:passive-mode off; ",
], ids=["pasv", "epsv", "active"])
def test_mirror_up_and_down(server, store, tmp_path, mode):
    local = tmp_path / "local"
    make_tree(local, store.caps.long_names)
    local2 = tmp_path / "local2"
    lftp_run(server.port, f'mirror -R "{local}" remote; mirror remote "{local2}"', extra=mode)
    assert_same_tree(local, (store, "remote"))
    assert_same_tree(local, local2)


def test_mirror_ipv6(server46, store, tmp_path):
    local = tmp_path / "local"
    make_tree(local, store.caps.long_names)
    local2 = tmp_path / "local2"
    lftp_run(server46.port6, f'mirror -R "{local}" r6; mirror r6 "{local2}"', host="::1")
    assert_same_tree(local, (store, "r6"))
    assert_same_tree(local, local2)


def test_mirror_ipv6_active(server46, store, tmp_path):
    local = tmp_path / "local"
    make_tree(local, store.caps.long_names)
    local2 = tmp_path / "local2"
    lftp_run(server46.port6, f'mirror -R "{local}" r6; mirror r6 "{local2}"', host="::1",
             extra="set ftp:passive-mode off; ")
    assert_same_tree(local, (store, "r6"))
    assert_same_tree(local, local2)


def test_mirror_again_is_a_noop_and_deletes(server, store, tmp_path):
    """A second mirror -R --delete after local changes converges."""
    local = tmp_path / "local"
    make_tree(local, store.caps.long_names)
    lftp_run(server.port, f'mirror -R "{local}" rd')
    (local / "zero").unlink()
    (local / "a" / "top.txt").write_bytes(b"changed, longer content\n")
    (local / "new.txt").write_bytes(b"new\n")
    lftp_run(server.port, f'mirror -R --delete "{local}" rd')
    assert_same_tree(local, (store, "rd"))


def test_lftp_commands(server, store, tmp_path):
    store.write_bytes("f.txt", b"0123456789")
    p = lftp_run(server.port, "mkdir -p x/y; mv f.txt x/y/g.txt; cls -1 x/y; "
                 "cat x/y/g.txt; rm x/y/g.txt; rmdir x/y; rmdir x")
    out = p.stdout.decode()
    assert "g.txt" in out and "0123456789" in out
    assert store.listdir() == []
