"""What the storage behind ferryd adds: `--fs` and `--fs-size` (image files),
a full medium, images written by other tools, and what each backend refuses.

The on-disk checks read the images with implementations that are not
Ferry's (mtools, littlefs-python; see ferry_store.py)."""
import ftplib
import re
import socket
import subprocess

import pytest

from ferry_helpers import Ferryd, TIMEOUT, ferryd_path, pasv_connect, rand_bytes, tool, wait_until
from ferry_store import FatStore, LittleFsStore, mtools


def upload_until_refused(f, name, data):
    """STOR that may be refused midway: sends what the server takes, then
    returns the final reply's code."""
    conn = f.transfercmd(f"STOR {name}")
    try:
        conn.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server gave up on the upload and closed the connection
    finally:
        conn.close()
    try:
        return int(f.voidresp()[:3])
    except (ftplib.error_temp, ftplib.error_perm) as e:
        return int(str(e)[:3])


@pytest.mark.needs("host_dir")
def test_a_full_host_directory_refuses_zero_copy_uploads_with_452(store, tmp_path):
    """ferryd serving a directory on a full file system, where uploads are
    spliced from the connection into the file (Linux): 452, the replaced
    file whole, nothing left behind, and the directory takes writes again.

    The directory is a 2 MiB tmpfs mounted in a mount namespace of ferryd's
    own (`unshare`), so only ferryd sees it: everything is checked over FTP."""
    unshare = tool("unshare")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    wrapper = work / "ferryd-on-small-tmpfs"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec {unshare} --mount --propagation private sh -c '
        "'mount -t tmpfs -o size=2m ferry-full \"$0\" && exec \"$@\"' "
        f'"{store.root}" "{ferryd_path()}" "$@"\n')
    wrapper.chmod(0o755)
    s = Ferryd(wrapper, store, work)
    try:
        s.start(args=["--workers", "1"])
        f = s.connect()
        f.voidcmd("TYPE I")
        old = rand_bytes(40_000, 90)
        f.stor_bytes("keep.bin", old)
        code = upload_until_refused(f, "keep.bin", rand_bytes(3 << 20, 91))
        assert code == 452, code
        assert f.cmd("NOOP")[0] == 200
        assert f.retr_bytes("keep.bin") == old
        # A new file that does not fit either: refused, and removed.
        assert upload_until_refused(f, "new.bin", rand_bytes(3 << 20, 92)) == 452
        assert f.nlst() == ["keep.bin"]
        # Had either refused upload left its bytes, this would not fit.
        big = rand_bytes(1_800_000, 93)
        f.stor_bytes("fits.bin", big)
        assert f.retr_bytes("fits.bin") == big
        assert f.retr_bytes("keep.bin") == old
        f.quit()
    finally:
        s.stop()
        assert "panicked" not in s.stderr(), s.stderr()[-2000:]


@pytest.mark.needs("image")
def test_disk_full_keeps_the_file_being_replaced(start_server, store):
    """A replacement bigger than the free space: 452 (or 552), the old file
    whole, no temporary file left, and the volume takes writes again."""
    # The smallest image of each kind (FAT16 through embedded-sdmmc: 4 MiB).
    small = (4 << 20) if store.kind == "sdfat" else (256 << 10)
    too_big = max(600_000, small + (1 << 20))
    store.resize(small)
    old = rand_bytes(40_000, 80)
    store.write_bytes("keep.bin", old)
    s = start_server()
    f = s.connect()
    f.voidcmd("TYPE I")
    code = upload_until_refused(f, "keep.bin", rand_bytes(too_big, 81))
    assert code in (452, 552), code
    assert f.cmd("NOOP")[0] == 200
    assert f.retr_bytes("keep.bin") == old
    assert store.read_bytes("keep.bin") == old
    assert wait_until(lambda: store.listdir() == ["keep.bin"], timeout=5), store.listdir()
    # A new file that does not fit either: refused, nothing left behind.
    assert upload_until_refused(f, "new.bin", rand_bytes(too_big, 82)) in (452, 552)
    assert store.listdir() == ["keep.bin"]
    # There is room again for what fits.
    f.stor_bytes("small.bin", b"small")
    assert store.read_bytes("small.bin") == b"small"
    assert store.read_bytes("keep.bin") == old
    f.quit()


@pytest.mark.needs("image")
def test_image_is_created_with_the_given_size(start_server, store):
    """`--fs KIND:IMAGE --fs-size SIZE` creates and formats a missing image;
    other tools read what was uploaded; a restart serves the same files."""
    # The smallest image of each kind (FAT16 through embedded-sdmmc: 4 MiB).
    size = (4 << 20) if store.kind == "sdfat" else (1 << 20)
    store.resize(size)
    s = start_server()
    assert store.image.stat().st_size == size
    label = {"littlefs": "littlefs", "fat": "FAT", "sdfat": "FAT (embedded-sdmmc)"}[store.kind]
    assert f"serving {label} image" in s.out_path.read_text()
    name = "grüße.txt" if store.caps.long_names else "gruss.txt"
    f = s.connect()
    f.mkd("d")
    f.stor_bytes(f"d/{name}", "grüße".encode())
    f.quit()
    assert store.listdir("d") == [name]
    assert store.read_bytes(f"d/{name}") == "grüße".encode()
    s.expected_exit = True
    s.stop()
    s2 = start_server()
    g = s2.connect()
    assert g.retr_bytes(f"d/{name}") == "grüße".encode()
    g.quit()


@pytest.mark.needs("image")
def test_image_written_by_another_tool_is_served(start_server, store):
    """Files and times written with mtools or littlefs-python (names escaped
    as ferry-fs stores them) are listed, read and dated by ferryd."""
    when = 1_500_000_000  # 2017-07-14 02:40:00 UTC (even: FAT keeps 2 s steps)
    with store.batch():
        store.write_bytes("Verzeichnis ä/Grüße 100%.txt", b"from another tool", mtime=when)
        store.write_bytes("plain.bin", rand_bytes(50_000, 83))
        if not store.caps.long_names:
            store.write_bytes("Verzeichnis ä/long report.txt", b"report", mtime=when)
    s = start_server()
    f = s.connect()
    if not store.caps.long_names:
        # 8.3 only: long names are listed and reached by their 8.3 aliases;
        # an alias mtools wrote with code-page bytes (from "Grüße") cannot be
        # reached and is not listed.
        listed = sorted(f.nlst())
        assert len(listed) == 2 and "plain.bin" in listed, listed
        alias = next(n for n in listed if n != "plain.bin")
        assert re.fullmatch(r"[A-Z0-9_~]{1,8}", alias), alias
        inner = [n.split("/")[-1] for n in f.nlst(alias)]
        assert len(inner) == 1 and re.fullmatch(r"LONGRE~\d\.TXT", inner[0]), inner
        assert f.retr_bytes(f"{alias}/{inner[0]}") == b"report"
        assert f.retr_bytes("plain.bin") == rand_bytes(50_000, 83)
        assert f.cmd(f"MDTM {alias}/{inner[0]}")[1][4:18] == "20170714024000"
        f.quit()
        return
    assert sorted(f.nlst()) == ["Verzeichnis ä", "plain.bin"]
    assert f.nlst("Verzeichnis ä") in (["Grüße 100%.txt"], ["Verzeichnis ä/Grüße 100%.txt"])
    assert f.retr_bytes("Verzeichnis ä/Grüße 100%.txt") == b"from another tool"
    assert f.retr_bytes("plain.bin") == rand_bytes(50_000, 83)
    assert f.cmd("MDTM Verzeichnis ä/Grüße 100%.txt")[1][4:18] == "20170714024000"
    f.quit()


@pytest.mark.needs("image")
def test_site_chmod_is_unsupported(ftp, store):
    store.write_bytes("f", b"f")
    code, resp = ftp.cmd("SITE CHMOD 600 f")
    assert code == 504, resp
    assert store.read_bytes("f") == b"f"


def test_too_long_name_is_refused_cleanly(ftp, store):
    """A name longer than any backend stores (255 bytes): 553, nothing made."""
    name = "n" * 300
    code, resp = ftp.cmd(f"MKD {name}")
    assert code in (550, 553), resp
    with pytest.raises((ftplib.error_perm, ftplib.error_temp)) as e:
        ftp.stor_bytes(name, b"x")
    # 553 would be right; the engine learns at the final rename of the
    # upload, and answers 451 there.
    assert str(e.value)[:3] in ("451", "550", "553")
    assert store.listdir() == []
    assert ftp.cmd("NOOP")[0] == 200


def test_deep_paths_go_as_deep_as_the_backend_allows(ftp, store):
    """Directories 100 bytes a level, four levels deep: where paths are
    limited (littlefs: 255 stored bytes), the level beyond is refused with
    553 and the session goes on."""
    comp = "d" * 100
    made = 0
    if not store.caps.long_names:
        # 8.3: a 100-byte name is refused at the first level.
        assert ftp.cmd(f"MKD {comp}")[0] == 553
        assert ftp.cmd("NOOP")[0] == 200
        return
    for _ in range(4):
        code, resp = ftp.cmd(f"MKD {comp}")
        if code != 257:
            assert code == 553, resp
            break
        assert ftp.cmd(f"CWD {comp}")[0] == 250
        made += 1
    if store.caps.long_paths:
        assert made == 4
        ftp.stor_bytes("f.txt", b"deep")
        assert store.read_bytes("/".join([comp] * 4) + "/f.txt") == b"deep"
    else:
        assert made == 2
        with pytest.raises((ftplib.error_perm, ftplib.error_temp)) as e:
            ftp.stor_bytes("f" * 60, b"x")
        assert str(e.value)[:3] in ("451", "553")  # see test_too_long_name_...
        assert store.listdir("/".join([comp] * 2)) == []
    assert ftp.cmd("NOOP")[0] == 200


@pytest.mark.needs("image")
def test_case_follows_the_backend(ftp, store):
    """FAT ignores case (the spelling of the last rename sticks); littlefs
    and host directories do not."""
    ftp.stor_bytes("Readme.TXT", b"one")
    if store.caps.case_sensitive:
        ftp.stor_bytes("README.txt", b"two")
        assert store.listdir() == ["README.txt", "Readme.TXT"]
        return
    assert ftp.retr_bytes("README.txt") == b"one"
    assert ftp.cmd("RNFR readme.txt")[0] == 350
    assert ftp.cmd("RNTO README.txt")[0] == 250
    assert store.listdir() == ["README.txt"]
    assert ftp.nlst() == ["README.txt"]


# --------------------------------------------------------------------------
# ferryd's refusals at start (no server runs: the process exits with 2)


def run_ferryd(ferryd_bin, *args):
    port = _free_port()
    return subprocess.run([str(ferryd_bin), "--listen", f"127.0.0.1:{port}", "--user",
                           "test:secret", *map(str, args)], capture_output=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["littlefs", "fat"])
def test_bad_images_are_refused_and_left_alone(ferryd_bin, tmp_path, kind):
    missing = tmp_path / "missing.img"
    p = run_ferryd(ferryd_bin, "--fs", f"{kind}:{missing}")
    assert p.returncode == 2 and b"give a size" in p.stderr, p.stderr
    assert not missing.exists()

    junk = tmp_path / "junk.img"
    content = rand_bytes(256 << 10, 84)
    junk.write_bytes(content)
    p = run_ferryd(ferryd_bin, "--fs", f"{kind}:{junk}")
    assert p.returncode == 2, p.stderr
    assert b"panicked" not in p.stderr
    assert junk.read_bytes() == content, "a foreign image was changed"

    p = run_ferryd(ferryd_bin, "--fs", f"{kind}:{junk}", "--fs-size", "512K")
    assert p.returncode == 2 and b"not the" in p.stderr, p.stderr
    assert junk.read_bytes() == content


def test_image_options_are_checked(ferryd_bin, tmp_path):
    p = run_ferryd(ferryd_bin, "--fs", f"littlefs:{tmp_path / 'a.img'}", "--fs-size", "100K")
    assert p.returncode == 2 and b"power of two" in p.stderr, p.stderr
    assert not (tmp_path / "a.img").exists()
    p = run_ferryd(ferryd_bin, "--fs-size", "1M", "--root", tmp_path / "r")
    assert p.returncode == 2 and b"image" in p.stderr, p.stderr
    p = run_ferryd(ferryd_bin, "--fs", "ext4:x.img")
    assert p.returncode == 2 and b"littlefs:IMAGE" in p.stderr, p.stderr
    p = run_ferryd(ferryd_bin, "--fs", f"fat:{tmp_path / 'b.img'}", "--root", tmp_path)
    assert p.returncode == 2, p.stderr


def test_blank_image_is_formatted(ferryd_bin, tmp_path):
    """An image of zeros (`truncate -s 1M`) is formatted, as for a new SD card."""
    for kind, store in (("fat", FatStore(tmp_path / "z.fat")),
                        ("littlefs", LittleFsStore(tmp_path / "z.lfs"))):
        with open(store.image, "wb") as fh:
            fh.truncate(1 << 20)
        store.image_size = 1 << 20
        p = subprocess.Popen([str(ferryd_bin), "--fs", f"{kind}:{store.image}", "--listen",
                              "127.0.0.1:0", "--user", "test:secret"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = b""
            while b"listening on" not in line:
                line = p.stdout.readline()
                assert line, p.stderr.read()
        finally:
            p.terminate()
            p.wait(timeout=10)
        assert store.listdir() == [], kind
    assert mtools("minfo", "-i", str(tmp_path / "z.fat"), "::").returncode == 0


LEFTOVERS = [".0.ferry-part", "d/.3.ferry-part", "d/e/.12.ferry-part"]
NOT_LEFTOVERS = ["keep.bin", "d/keep.ferry-part", "d/e/.x.ferry-part"]


def test_upload_leftovers_of_an_earlier_run_are_removed_at_start(start_server, store):
    """Issue 15 (3): temporaries of the engine's naming (`.N.ferry-part`)
    that an earlier run left are removed when ferryd starts, on every
    backend, and logged; other names stay."""
    with store.batch():
        for name in LEFTOVERS + NOT_LEFTOVERS:
            store.write_bytes(name, b"left")
    s = start_server()
    log = s.stderr()
    for name in LEFTOVERS:
        assert f"removed /{name}" in log, log[-3000:]
    s.expected_exit = True
    s.stop()
    left = store.snapshot()
    for name in LEFTOVERS:
        assert name not in left, sorted(left)
    for name in NOT_LEFTOVERS:
        assert left.get(name) == b"left", sorted(left)


@pytest.mark.needs("host_dir")
def test_kill_mid_replacing_upload_then_restart_cleans_up(start_server, store, root):
    """The issue's reproduction: `kill -9` during an upload that replaces a
    file keeps the old file and leaves a hidden temporary; the next start
    removes it."""
    old = rand_bytes(1 << 20, 90)
    store.write_bytes("big.bin", old)
    s = start_server()
    raw = s.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("TYPE I")[0] == 200
    d = pasv_connect(raw)
    raw.send(b"STOR big.bin\r\n")
    assert raw.reply()[0] in (125, 150)
    d.sendall(rand_bytes(4 << 20, 91))
    assert wait_until(lambda: any(p.name.endswith(".ferry-part") for p in root.iterdir()))
    s.expected_exit = True
    s.proc.kill()
    s.proc.wait(timeout=10)
    d.close()
    raw.close()
    assert [p.name for p in root.iterdir() if p.name.endswith(".ferry-part")]
    assert store.read_bytes("big.bin") == old
    s2 = start_server()
    assert "an upload's temporary left by an earlier run" in s2.stderr()
    assert not [p.name for p in root.iterdir() if p.name.endswith(".ferry-part")]
    f = s2.connect()
    assert f.retr_bytes("big.bin") == old
    f.close()
