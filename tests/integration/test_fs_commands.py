"""Directory and file commands, checked against the disk."""
import calendar
import ftplib
import os

import pytest


def pwd(f):
    code, resp = f.cmd("PWD")
    assert code == 257, resp
    return ftplib.parse257(resp)


def test_pwd_initially_root(ftp):
    assert pwd(ftp) == "/"
    code, resp = ftp.cmd("XPWD")
    assert code == 257 and ftplib.parse257(resp) == "/"


def test_mkd_cwd_cdup_rmd(ftp, store):
    code, resp = ftp.cmd("MKD sub")
    assert code == 257, resp
    assert ftplib.parse257(resp) in ("/sub", "sub")
    assert store.is_dir("sub")
    code, resp = ftp.cmd("XMKD sub/deeper")
    assert code == 257, resp
    assert store.is_dir("sub/deeper")

    assert ftp.cmd("CWD sub")[0] == 250
    assert pwd(ftp) == "/sub"
    assert ftp.cmd("XCWD deeper")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CDUP")[0] in (200, 250)
    assert pwd(ftp) == "/sub"
    assert ftp.cmd("XCUP")[0] in (200, 250)
    assert pwd(ftp) == "/"
    assert ftp.cmd("CWD /sub/deeper")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CWD ../..")[0] == 250
    assert pwd(ftp) == "/"
    assert ftp.cmd("CWD sub/./deeper/..")[0] == 250
    assert pwd(ftp) == "/sub"
    assert ftp.cmd("CWD /")[0] == 250

    assert ftp.cmd("RMD sub/deeper")[0] == 250
    assert not store.exists("sub/deeper")
    assert ftp.cmd("XRMD /sub")[0] == 250
    assert not store.exists("sub")


def test_quote_in_directory_name(ftp, store):
    """RFC 959 appendix II: a quote in a 257 path is doubled."""
    code, resp = ftp.cmd('MKD a"b')
    if not store.caps.any_name_chars:
        assert code == 553, resp  # FAT: '"' is not allowed in a name
        assert store.listdir() == []
        return
    assert code == 257, resp
    assert store.is_dir('a"b')
    assert ftp.cmd('CWD a"b')[0] == 250
    code, resp = ftp.cmd("PWD")
    assert '"/a""b"' in resp, resp
    assert ftplib.parse257(resp) == '/a"b'


def test_mkd_existing_fails(ftp, store):
    store.mkdir("d")
    assert ftp.cmd("MKD d")[0] in (550, 521)


def test_rmd_non_empty_550(ftp, store):
    store.mkdir("full")
    store.write_bytes("full/x", b"x")
    assert ftp.cmd("RMD full")[0] == 550
    assert store.read_bytes("full/x") == b"x"


def test_rmd_missing_and_rmd_of_file_550(ftp, store):
    store.write_bytes("f", b"f")
    assert ftp.cmd("RMD nope")[0] == 550
    assert ftp.cmd("RMD f")[0] == 550
    assert store.exists("f")


def test_dele(ftp, store):
    store.write_bytes("f", b"f")
    assert ftp.cmd("DELE f")[0] == 250
    assert not store.exists("f")
    assert ftp.cmd("DELE f")[0] == 550
    assert ftp.cmd("DELE missing")[0] == 550


def test_dele_directory_550(ftp, store):
    store.mkdir("d")
    assert ftp.cmd("DELE d")[0] == 550
    assert store.is_dir("d")


def test_cwd_missing_550_never_501(ftp, store):
    store.write_bytes("file", b"x")
    assert ftp.cmd("CWD missing")[0] == 550
    assert ftp.cmd("CWD /missing/deeper")[0] == 550
    assert ftp.cmd("CWD file")[0] == 550
    assert pwd(ftp) == "/"


def test_rename(ftp, store):
    store.write_bytes("a", b"AAA")
    assert ftp.cmd("RNFR a")[0] == 350
    assert ftp.cmd("RNTO b")[0] == 250
    assert not store.exists("a")
    assert store.read_bytes("b") == b"AAA"


def test_rename_over_existing_file(ftp, store):
    store.write_bytes("src", b"new content")
    store.write_bytes("dst", b"old")
    assert ftp.cmd("RNFR src")[0] == 350
    assert ftp.cmd("RNTO dst")[0] == 250
    assert not store.exists("src")
    assert store.read_bytes("dst") == b"new content"


def test_rename_directory_and_into_subdir(ftp, store):
    store.mkdir("d1")
    store.write_bytes("d1/f", b"f")
    store.mkdir("other")
    assert ftp.cmd("RNFR d1")[0] == 350
    assert ftp.cmd("RNTO other/d2")[0] == 250
    assert store.read_bytes("other/d2/f") == b"f"
    assert not store.exists("d1")


def test_rnto_without_rnfr_503(ftp, store):
    store.write_bytes("a", b"a")
    assert ftp.cmd("RNTO b")[0] == 503
    # RNFR is forgotten after another command
    assert ftp.cmd("RNFR a")[0] == 350
    assert ftp.cmd("NOOP")[0] == 200
    assert ftp.cmd("RNTO b")[0] == 503
    assert store.exists("a") and not store.exists("b")


def test_rnfr_missing_550(ftp):
    assert ftp.cmd("RNFR missing")[0] == 550


def test_size(ftp, store):
    store.write_bytes("f", b"x" * 12345)
    store.mkdir("d")
    assert ftp.cmd("TYPE I")[0] == 200
    assert ftp.cmd("SIZE f") == (213, "213 12345")
    assert ftp.size("f") == 12345
    assert ftp.cmd("SIZE missing")[0] == 550
    assert ftp.cmd("SIZE d")[0] == 550


def test_mdtm(ftp, store):
    ts = 1_234_567_890  # 2009-02-13 23:31:30 UTC (even: FAT keeps 2 s steps)
    store.write_bytes("f", b"x", mtime=ts)
    code, resp = ftp.cmd("MDTM f")
    assert code == 213, resp
    val = resp[4:]
    assert val[:14] == "20090213233130", resp
    assert val[14:] == "" or val[14] == ".", resp
    assert ftp.cmd("MDTM missing")[0] == 550


def test_mfmt_sets_mtime(ftp, store):
    store.write_bytes("f", b"x")
    code, resp = ftp.cmd("MFMT 20200102030406 f")
    assert code == 213, resp
    assert "Modify=20200102030406" in resp, resp
    want = calendar.timegm((2020, 1, 2, 3, 4, 6, 0, 0, 0))
    r = store.caps.mtime_resolution
    assert store.stat_mtime("f") // r == want // r
    assert ftp.cmd("MDTM f")[1][4:18] == "20200102030406"
    assert store.read_bytes("f") == b"x"
    assert ftp.cmd("MFMT 20200102030405 missing")[0] == 550


def test_mfmt_then_list_consistent(ftp, store):
    store.write_bytes("old.txt", b"x")
    assert ftp.cmd("MFMT 20010203040506 old.txt")[0] == 213
    facts = dict(ftp.mlsd(facts=["modify"]))["old.txt"]
    assert facts["modify"][:14] == "20010203040506"
    assert store.mtime_matches("old.txt", "20010203040506")


@pytest.mark.needs("long_names")
def test_utf8_names(ftp, store):
    assert ftp.cmd("MKD Verzeichnis äöü")[0] == 257
    assert store.is_dir("Verzeichnis äöü")
    ftp.stor_bytes("Verzeichnis äöü/grüße 日本.txt", b"hallo")
    assert store.read_bytes("Verzeichnis äöü/grüße 日本.txt") == b"hallo"
    assert ftp.cmd("CWD Verzeichnis äöü")[0] == 250
    assert pwd(ftp) == "/Verzeichnis äöü"
    assert "grüße 日本.txt" in ftp.nlst()
    assert ftp.retr_bytes("grüße 日本.txt") == b"hallo"


@pytest.mark.needs("long_names")
def test_names_with_spaces(ftp, store):
    store.mkdir(" lead and trail ")
    store.write_bytes("a  b.txt", b"ab")
    assert ftp.retr_bytes("a  b.txt") == b"ab"
    assert ftp.cmd("CWD  lead and trail ")[0] == 250
    assert pwd(ftp) == "/ lead and trail "


def test_cwd_path_forms(ftp, store):
    store.mkdir("sub/deeper")
    assert ftp.cmd("CWD sub/")[0] == 250
    assert pwd(ftp) == "/sub"
    assert ftp.cmd("CWD //sub//deeper//")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CWD ./")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CWD /")[0] == 250
    assert pwd(ftp) == "/"


def test_rename_onto_non_empty_directory_refused(ftp, store):
    store.write_bytes("f", b"f")
    store.mkdir("d")
    store.write_bytes("d/x", b"x")
    assert ftp.cmd("RNFR f")[0] == 350
    assert ftp.cmd("RNTO d")[0] in (550, 553)
    assert store.read_bytes("f") == b"f"
    assert store.read_bytes("d/x") == b"x"


def test_rename_to_itself_keeps_file(ftp, store):
    store.write_bytes("f", b"same")
    assert ftp.cmd("RNFR f")[0] == 350
    assert ftp.cmd("RNTO f")[0] in (250, 550, 553)
    assert store.read_bytes("f") == b"same"


@pytest.mark.needs("unix_modes")
def test_site_chmod(ftp, root):
    (root / "f").write_bytes(b"f")
    os.chmod(root / "f", 0o644)
    code, resp = ftp.cmd("SITE CHMOD 600 f")
    assert code == 200, resp
    assert os.stat(root / "f").st_mode & 0o777 == 0o600
    assert ftp.cmd("SITE CHMOD 600 missing")[0] == 550
    assert ftp.cmd("SITE CHMOD 9z9 f")[0] == 501
    assert ftp.cmd("SITE NOSUCHTHING")[0] in (500, 501, 502, 504)


def test_glob_characters_are_literal(ftp, store):
    """DELE a* deletes nothing but a file literally named a*."""
    store.write_bytes("a1", b"1")
    store.write_bytes("a2", b"2")
    refused = (550,) if store.caps.any_name_chars else (550, 553)  # FAT: no '*' '?'
    assert ftp.cmd("DELE a*")[0] in refused
    assert ftp.cmd("DELE a?")[0] in refused
    assert ftp.cmd("RMD *")[0] in refused
    assert store.listdir() == ["a1", "a2"]
    if not store.caps.any_name_chars:
        return
    store.write_bytes("a*", b"star")
    assert ftp.retr_bytes("a*") == b"star"
    assert ftp.cmd("DELE a*")[0] == 250
    assert store.listdir() == ["a1", "a2"]


def test_mkd_trailing_slash(ftp, store):
    code, resp = ftp.cmd("MKD newdir/")
    assert code == 257, resp
    assert store.is_dir("newdir")
    assert ftp.cmd("RMD newdir/")[0] == 250
    assert not store.exists("newdir")


@pytest.mark.needs("long_paths")
def test_long_names_and_deep_paths(ftp, store):
    """Host file systems allow 255-byte names (NAME_MAX) in any directory and
    paths far longer than 255 bytes; mirroring such a tree must work."""
    name = "n" * 255
    store.mkdir("sub")
    store.write_bytes(f"sub/{name}", b"long name")
    assert ftp.retr_bytes(f"sub/{name}") == b"long name"
    assert ftp.cmd("CWD sub")[0] == 250
    assert name in ftp.nlst()
    ftp.stor_bytes("x" * 255, b"up")
    assert store.read_bytes("sub/" + "x" * 255) == b"up"
    # ~1000 bytes deep, reached by relative steps (each line stays short)
    comp = "d" * 100
    for _ in range(10):
        code, resp = ftp.cmd(f"MKD {comp}")
        assert code == 257, resp
        assert ftp.cmd(f"CWD {comp}")[0] == 250
    ftp.stor_bytes("deep.txt", b"deep")
    deep = "sub/" + "/".join([comp] * 10)
    assert store.read_bytes(f"{deep}/deep.txt") == b"deep"
    assert ftplib.parse257(ftp.cmd("PWD")[1]) == "/sub/" + "/".join([comp] * 10)


def test_names_beyond_8_3(ftp, store):
    """Where only 8.3 names are stored (FAT through embedded-sdmmc), a longer
    name is refused with 553 and nothing is created; all-lower-case and
    all-upper-case 8.3 names keep their spelling. Elsewhere they all work."""
    ftp.stor_bytes("lower.txt", b"l")
    ftp.stor_bytes("UPPER.TXT", b"u")
    long_ones = ["longer-name.txt", "a.tar.gz", "sp ace", ".hidden"]
    for name in long_ones:
        code, resp = ftp.cmd(f"MKD {name}")
        if store.caps.long_names:
            assert code == 257, resp
        else:
            assert code == 553, resp
    expected = ["UPPER.TXT", "lower.txt"]
    if store.caps.long_names:
        expected += long_ones
    assert sorted(store.listdir()) == sorted(expected)
    assert ftp.retr_bytes("lower.txt") == b"l"
