"""Directory and file commands, checked against the disk."""
import calendar
import ftplib
import os

from ferry_helpers import mdtm_of


def pwd(f):
    code, resp = f.cmd("PWD")
    assert code == 257, resp
    return ftplib.parse257(resp)


def test_pwd_initially_root(ftp):
    assert pwd(ftp) == "/"
    code, resp = ftp.cmd("XPWD")
    assert code == 257 and ftplib.parse257(resp) == "/"


def test_mkd_cwd_cdup_rmd(ftp, root):
    code, resp = ftp.cmd("MKD sub")
    assert code == 257, resp
    assert ftplib.parse257(resp) in ("/sub", "sub")
    assert (root / "sub").is_dir()
    code, resp = ftp.cmd("XMKD sub/deeper")
    assert code == 257, resp
    assert (root / "sub" / "deeper").is_dir()

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
    assert not (root / "sub" / "deeper").exists()
    assert ftp.cmd("XRMD /sub")[0] == 250
    assert not (root / "sub").exists()


def test_quote_in_directory_name(ftp, root):
    """RFC 959 appendix II: a quote in a 257 path is doubled."""
    code, resp = ftp.cmd('MKD a"b')
    assert code == 257, resp
    assert (root / 'a"b').is_dir()
    assert ftp.cmd('CWD a"b')[0] == 250
    code, resp = ftp.cmd("PWD")
    assert '"/a""b"' in resp, resp
    assert ftplib.parse257(resp) == '/a"b'


def test_mkd_existing_fails(ftp, root):
    (root / "d").mkdir()
    assert ftp.cmd("MKD d")[0] in (550, 521)


def test_rmd_non_empty_550(ftp, root):
    (root / "full").mkdir()
    (root / "full" / "x").write_bytes(b"x")
    assert ftp.cmd("RMD full")[0] == 550
    assert (root / "full" / "x").read_bytes() == b"x"


def test_rmd_missing_and_rmd_of_file_550(ftp, root):
    (root / "f").write_bytes(b"f")
    assert ftp.cmd("RMD nope")[0] == 550
    assert ftp.cmd("RMD f")[0] == 550
    assert (root / "f").exists()


def test_dele(ftp, root):
    (root / "f").write_bytes(b"f")
    assert ftp.cmd("DELE f")[0] == 250
    assert not (root / "f").exists()
    assert ftp.cmd("DELE f")[0] == 550
    assert ftp.cmd("DELE missing")[0] == 550


def test_dele_directory_550(ftp, root):
    (root / "d").mkdir()
    assert ftp.cmd("DELE d")[0] == 550
    assert (root / "d").is_dir()


def test_cwd_missing_550_never_501(ftp, root):
    (root / "file").write_bytes(b"x")
    assert ftp.cmd("CWD missing")[0] == 550
    assert ftp.cmd("CWD /missing/deeper")[0] == 550
    assert ftp.cmd("CWD file")[0] == 550
    assert pwd(ftp) == "/"


def test_rename(ftp, root):
    (root / "a").write_bytes(b"AAA")
    assert ftp.cmd("RNFR a")[0] == 350
    assert ftp.cmd("RNTO b")[0] == 250
    assert not (root / "a").exists()
    assert (root / "b").read_bytes() == b"AAA"


def test_rename_over_existing_file(ftp, root):
    (root / "src").write_bytes(b"new content")
    (root / "dst").write_bytes(b"old")
    assert ftp.cmd("RNFR src")[0] == 350
    assert ftp.cmd("RNTO dst")[0] == 250
    assert not (root / "src").exists()
    assert (root / "dst").read_bytes() == b"new content"


def test_rename_directory_and_into_subdir(ftp, root):
    (root / "d1").mkdir()
    (root / "d1" / "f").write_bytes(b"f")
    (root / "other").mkdir()
    assert ftp.cmd("RNFR d1")[0] == 350
    assert ftp.cmd("RNTO other/d2")[0] == 250
    assert (root / "other" / "d2" / "f").read_bytes() == b"f"
    assert not (root / "d1").exists()


def test_rnto_without_rnfr_503(ftp, root):
    (root / "a").write_bytes(b"a")
    assert ftp.cmd("RNTO b")[0] == 503
    # RNFR is forgotten after another command
    assert ftp.cmd("RNFR a")[0] == 350
    assert ftp.cmd("NOOP")[0] == 200
    assert ftp.cmd("RNTO b")[0] == 503
    assert (root / "a").exists() and not (root / "b").exists()


def test_rnfr_missing_550(ftp):
    assert ftp.cmd("RNFR missing")[0] == 550


def test_size(ftp, root):
    (root / "f").write_bytes(b"x" * 12345)
    (root / "d").mkdir()
    assert ftp.cmd("TYPE I")[0] == 200
    assert ftp.cmd("SIZE f") == (213, "213 12345")
    assert ftp.size("f") == 12345
    assert ftp.cmd("SIZE missing")[0] == 550
    assert ftp.cmd("SIZE d")[0] == 550


def test_mdtm(ftp, root):
    p = root / "f"
    p.write_bytes(b"x")
    ts = 1_234_567_890  # 2009-02-13 23:31:30 UTC
    os.utime(p, (ts, ts))
    code, resp = ftp.cmd("MDTM f")
    assert code == 213, resp
    val = resp[4:]
    assert val[:14] == "20090213233130", resp
    assert val[14:] == "" or val[14] == ".", resp
    assert ftp.cmd("MDTM missing")[0] == 550


def test_mfmt_sets_mtime(ftp, root):
    p = root / "f"
    p.write_bytes(b"x")
    code, resp = ftp.cmd("MFMT 20200102030405 f")
    assert code == 213, resp
    assert "Modify=20200102030405" in resp, resp
    want = calendar.timegm((2020, 1, 2, 3, 4, 5, 0, 0, 0))
    assert int(os.stat(p).st_mtime) == want
    assert ftp.cmd("MDTM f")[1][4:18] == "20200102030405"
    assert p.read_bytes() == b"x"
    assert ftp.cmd("MFMT 20200102030405 missing")[0] == 550


def test_mfmt_then_list_consistent(ftp, root):
    p = root / "old.txt"
    p.write_bytes(b"x")
    assert ftp.cmd("MFMT 20010203040506 old.txt")[0] == 213
    facts = dict(ftp.mlsd(facts=["modify"]))["old.txt"]
    assert facts["modify"][:14] == "20010203040506"
    assert mdtm_of(os.stat(p).st_mtime) == "20010203040506"


def test_utf8_names(ftp, root):
    assert ftp.cmd("MKD Verzeichnis äöü")[0] == 257
    assert (root / "Verzeichnis äöü").is_dir()
    ftp.stor_bytes("Verzeichnis äöü/grüße 日本.txt", b"hallo")
    assert (root / "Verzeichnis äöü" / "grüße 日本.txt").read_bytes() == b"hallo"
    assert ftp.cmd("CWD Verzeichnis äöü")[0] == 250
    assert pwd(ftp) == "/Verzeichnis äöü"
    assert "grüße 日本.txt" in ftp.nlst()
    assert ftp.retr_bytes("grüße 日本.txt") == b"hallo"


def test_names_with_spaces(ftp, root):
    (root / " lead and trail ").mkdir()
    (root / "a  b.txt").write_bytes(b"ab")
    assert ftp.retr_bytes("a  b.txt") == b"ab"
    assert ftp.cmd("CWD  lead and trail ")[0] == 250
    assert pwd(ftp) == "/ lead and trail "


def test_cwd_path_forms(ftp, root):
    (root / "sub" / "deeper").mkdir(parents=True)
    assert ftp.cmd("CWD sub/")[0] == 250
    assert pwd(ftp) == "/sub"
    assert ftp.cmd("CWD //sub//deeper//")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CWD ./")[0] == 250
    assert pwd(ftp) == "/sub/deeper"
    assert ftp.cmd("CWD /")[0] == 250
    assert pwd(ftp) == "/"


def test_rename_onto_non_empty_directory_refused(ftp, root):
    (root / "f").write_bytes(b"f")
    (root / "d").mkdir()
    (root / "d" / "x").write_bytes(b"x")
    assert ftp.cmd("RNFR f")[0] == 350
    assert ftp.cmd("RNTO d")[0] in (550, 553)
    assert (root / "f").read_bytes() == b"f"
    assert (root / "d" / "x").read_bytes() == b"x"


def test_rename_to_itself_keeps_file(ftp, root):
    (root / "f").write_bytes(b"same")
    assert ftp.cmd("RNFR f")[0] == 350
    assert ftp.cmd("RNTO f")[0] in (250, 550, 553)
    assert (root / "f").read_bytes() == b"same"


def test_site_chmod(ftp, root):
    (root / "f").write_bytes(b"f")
    os.chmod(root / "f", 0o644)
    code, resp = ftp.cmd("SITE CHMOD 600 f")
    assert code == 200, resp
    assert os.stat(root / "f").st_mode & 0o777 == 0o600
    assert ftp.cmd("SITE CHMOD 600 missing")[0] == 550
    assert ftp.cmd("SITE CHMOD 9z9 f")[0] == 501
    assert ftp.cmd("SITE NOSUCHTHING")[0] in (500, 501, 502, 504)


def test_glob_characters_are_literal(ftp, root):
    """DELE a* deletes nothing but a file literally named a*."""
    (root / "a1").write_bytes(b"1")
    (root / "a2").write_bytes(b"2")
    assert ftp.cmd("DELE a*")[0] == 550
    assert ftp.cmd("DELE a?")[0] == 550
    assert ftp.cmd("RMD *")[0] == 550
    assert sorted(os.listdir(root)) == ["a1", "a2"]
    (root / "a*").write_bytes(b"star")
    assert ftp.retr_bytes("a*") == b"star"
    assert ftp.cmd("DELE a*")[0] == 250
    assert sorted(os.listdir(root)) == ["a1", "a2"]


def test_mkd_trailing_slash(ftp, root):
    code, resp = ftp.cmd("MKD newdir/")
    assert code == 257, resp
    assert (root / "newdir").is_dir()
    assert ftp.cmd("RMD newdir/")[0] == 250
    assert not (root / "newdir").exists()


def test_long_names_and_deep_paths(ftp, root):
    """Host file systems allow 255-byte names (NAME_MAX) in any directory and
    paths far longer than 255 bytes; mirroring such a tree must work."""
    name = "n" * 255
    (root / "sub").mkdir()
    (root / "sub" / name).write_bytes(b"long name")
    assert ftp.retr_bytes(f"sub/{name}") == b"long name"
    assert ftp.cmd("CWD sub")[0] == 250
    assert name in ftp.nlst()
    ftp.stor_bytes("x" * 255, b"up")
    assert (root / "sub" / ("x" * 255)).read_bytes() == b"up"
    # ~1000 bytes deep, reached by relative steps (each line stays short)
    comp = "d" * 100
    for _ in range(10):
        code, resp = ftp.cmd(f"MKD {comp}")
        assert code == 257, resp
        assert ftp.cmd(f"CWD {comp}")[0] == 250
    ftp.stor_bytes("deep.txt", b"deep")
    deep = root / "sub" / "/".join([comp] * 10)
    assert (deep / "deep.txt").read_bytes() == b"deep"
    assert ftplib.parse257(ftp.cmd("PWD")[1]) == "/sub/" + "/".join([comp] * 10)
