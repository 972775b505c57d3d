"""LIST, NLST, MLSD, MLST: the shapes real clients parse."""
import ftplib
import os

import pytest

from ferry_helpers import LIST_RE, MLSX_RE

OLD = 1_000_000_000     # 2001-09-09 01:46:40 UTC
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@pytest.fixture
def tree(store):
    with store.batch():
        store.write_bytes("file.txt", b"hello world\n")
        store.write_bytes("empty", b"")
        store.write_bytes("old.bin", b"o" * 1000, mtime=OLD)
        store.mkdir("dir")
        store.write_bytes("dir/inner.txt", b"inner")
        if store.caps.long_names:
            store.write_bytes("with space.txt", b"sp")
            store.write_bytes("grüße.txt", "grüße".encode())
    names = {"file.txt": 12, "empty": 0, "old.bin": 1000, "dir": None}
    if store.caps.long_names:
        # Not 8.3: a space, non-ASCII.
        names.update({"with space.txt": 2, "grüße.txt": len("grüße".encode())})
    return names


def parse_list(lines):
    out = {}
    for ln in lines:
        if not ln.strip() or ln.startswith("total "):
            continue
        m = LIST_RE.match(ln)
        assert m, f"LIST line not in ls -l form: {ln!r}"
        name = m.group(5)
        if name in (".", ".."):
            continue
        out[name] = (ln[0], int(m.group(1)), m.group(2), int(m.group(3)), m.group(4))
    return out


@pytest.mark.parametrize("cmd", ["LIST", "LIST -la", "LIST -a", "LIST /", "LIST .", "LIST -l /"])
def test_list_format(ftp, tree, cmd):
    entries = parse_list(ftp.lines(cmd))
    assert set(entries) == set(tree), entries
    for name, size in tree.items():
        kind, lsize, mon, day, tm = entries[name]
        assert mon in MONTHS
        if size is None:
            assert kind == "d"
        else:
            assert kind == "-"
            assert lsize == size, name
    # an old file shows its year, a new one the time of day
    assert entries["old.bin"][2] == "Sep" and entries["old.bin"][3] in (8, 9)  # UTC or local
    assert entries["old.bin"][4] == "2001"
    assert ":" in entries["file.txt"][4]


def test_list_subdir_and_file(ftp, tree):
    entries = parse_list(ftp.lines("LIST dir"))
    assert list(entries) == ["inner.txt"]
    assert entries["inner.txt"][1] == 5
    # LIST of a single file lists that file
    lines = [ln for ln in ftp.lines("LIST file.txt") if ln.strip()]
    assert len(lines) == 1
    m = LIST_RE.match(lines[0])
    assert m and m.group(5).endswith("file.txt") and int(m.group(1)) == 12


def test_list_missing_directory(ftp, tree):
    with pytest.raises(ftplib.error_perm) as e:
        ftp.lines("LIST nosuchdir")
    assert str(e.value)[:3] == "550"
    assert ftp.cmd("NOOP")[0] == 200


def test_list_empty_directory(ftp, store):
    store.mkdir("e")
    assert parse_list(ftp.lines("LIST e")) == {}


def test_nlst(ftp, tree):
    assert sorted(ftp.nlst()) == sorted(tree)
    sub = ftp.nlst("dir")
    assert [os.path.basename(n) for n in sub] == ["inner.txt"]
    assert ftp.cmd("CWD dir")[0] == 250
    assert ftp.nlst() == ["inner.txt"]


def check_mlsx_line(line):
    m = MLSX_RE.match(line)
    assert m, f"MLSx line malformed: {line!r}"
    facts = {}
    for f in m.group(1).rstrip(";").split(";"):
        k, _, v = f.partition("=")
        assert k.lower() not in facts, f"duplicate fact in {line!r}"
        facts[k.lower()] = v
    return facts, m.group(2)


def test_mlsd_facts_exact(ftp, store, tree):
    lines = ftp.lines("MLSD")
    entries = {}
    for ln in lines:
        facts, name = check_mlsx_line(ln)
        t = facts["type"].lower()
        if t in ("cdir", "pdir"):
            continue
        entries[name] = facts
    assert set(entries) == set(tree)
    for name, size in tree.items():
        facts = entries[name]
        assert store.mtime_matches(name, facts["modify"]), (name, facts, store.stat_mtime(name))
        assert len(facts["modify"]) == 14 or facts["modify"][14] == "."
        if size is None:
            assert facts["type"].lower() == "dir"
        else:
            assert facts["type"].lower() == "file"
            assert facts["size"] == str(size)
    assert entries["old.bin"]["modify"][:14] == "20010909014640"


def test_mlsd_with_ftplib_and_path(ftp, tree):
    got = dict(ftp.mlsd("dir"))
    got = {k: v for k, v in got.items() if v["type"] not in ("cdir", "pdir")}
    assert list(got) == ["inner.txt"]
    assert got["inner.txt"]["size"] == "5"


def test_mlsd_missing_550(ftp, tree):
    with pytest.raises(ftplib.error_perm) as e:
        ftp.lines("MLSD nosuchdir")
    assert str(e.value)[:3] == "550"


def test_mlsd_on_file_refused(ftp, tree):
    """RFC 3659 7.2.1: MLSD of a non-directory is an error (501)."""
    with pytest.raises(ftplib.error_perm) as e:
        ftp.lines("MLSD file.txt")
    assert str(e.value)[:3] in ("501", "550")


def test_mlst_file(ftp, store, tree):
    code, resp = ftp.cmd("MLST file.txt")
    assert code == 250, resp
    lines = resp.split("\n")
    assert lines[0].startswith("250-") and lines[-1].startswith("250 ")
    body = [ln for ln in lines[1:-1]]
    assert len(body) == 1 and body[0].startswith(" "), resp
    facts, name = check_mlsx_line(body[0][1:])
    assert name in ("file.txt", "/file.txt")
    assert facts["type"] == "file"
    assert facts["size"] == "12"
    assert store.mtime_matches("file.txt", facts["modify"])


def test_mlst_dir_and_missing(ftp, tree):
    code, resp = ftp.cmd("MLST dir")
    assert code == 250, resp
    facts, _ = check_mlsx_line(resp.split("\n")[1][1:])
    assert facts["type"].lower() in ("dir", "cdir")
    assert ftp.cmd("MLST nosuch")[0] == 550


@pytest.mark.needs("host_dir")
def test_non_utf8_name_listed_and_reachable(ftp, root):
    """DESIGN: names that are not valid UTF-8 on the host are still listed
    and reachable, never a crash."""
    os.close(os.open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), os.O_CREAT | os.O_WRONLY))
    with open(os.path.join(os.fsencode(root), b"caf\xe9.txt"), "wb") as fh:
        fh.write(b"latin1")
    (root / "ok.txt").write_bytes(b"ok")
    # a latin-1 client sees bytes 1:1
    g = ftplib.FTP(timeout=10, encoding="latin-1")
    g.connect("127.0.0.1", ftp.sock.getpeername()[1])
    g.login("test", "secret")
    names = g.nlst()
    assert "ok.txt" in names
    odd = [n for n in names if n.startswith("caf") and n != "ok.txt"]
    assert len(odd) == 1, names
    chunks = []
    g.retrbinary(f"RETR {odd[0]}", chunks.append)
    assert b"".join(chunks) == b"latin1"
    # the other listings survive it too
    assert len([ln for ln in g.nlst()]) == 2
    lines = []
    g.retrlines("LIST", lines.append)
    assert len([ln for ln in lines if ln.strip() and not ln.startswith("total")]) >= 2
    lines = []
    g.retrlines("MLSD", lines.append)
    assert len(lines) >= 2
    g.close()
    assert ftp.cmd("NOOP")[0] == 200


def test_large_directory_listings(start_server, store):
    """Thousands of entries (hundreds on littlefs) with long names: every
    listing is complete. Made before ferryd starts (with mtools or
    littlefs-python on images): this is about listing, not uploading."""
    count = store.caps.many_entries
    names = {f"file-{i:05d}-" + "n" * (i % 120) + ".dat" for i in range(count)}
    if not store.caps.long_names:
        names = {f"f{i:05d}.dat" for i in range(count)}
    with store.batch():
        store.mkdir("many")
        for n in names:
            store.write_bytes(f"many/{n}", b"")
    ftp = start_server().connect()
    assert set(ftp.nlst("many")) == names or {os.path.basename(n) for n in ftp.nlst("many")} == names
    assert set(parse_list(ftp.lines("LIST many"))) == names
    got = {k for k, v in ftp.mlsd("many") if v["type"] not in ("cdir", "pdir")}
    assert got == names
