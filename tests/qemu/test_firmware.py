"""Ferry's Cortex-M3 firmware (QEMU mps2-an385: LAN9118, smoltcp, littlefs on
a RAM disk) against real clients: Python's ftplib, curl and lftp, run inside
the test's network namespace, once for each protocol profile of the engine
(default, and emftp: emFTP's command set, 502 to the rest).

See conftest.py for the setup and how to run it. tests/w5500 runs these same
tests (all but the last, which is about the LAN9118) against host-w5500: the
fixture `fw` gives `client`, `exec`, `log`, `work`, `server_ip`, `port` and
`url`, and conftest gives USER, PASSWORD, need_tool and wait_until.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from conftest import PASSWORD, USER, need_tool, wait_until

KIB = 1024
SIZE = 256 * KIB  # the firmware's RAM disk is 2 MiB: files are deleted after use


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_file(path: Path, size: int = SIZE) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def profile(fw) -> str:
    """The engine's protocol profile under test (tests/w5500 has one only)."""
    return getattr(fw, "profile", "default")


def sessions_closed(fw) -> bool:
    log = fw.log()
    return log.count(" connected\n") == log.count(" disconnected\n")


def test_login_and_directory_commands(fw):
    out = fw.client("session")
    assert out["welcome"] == "220"
    assert out["pwd"] == "/"
    assert out["mkd"] == "/fwdir"
    assert out["pwd_in_dir"] == "/fwdir"
    assert any(line.endswith(" hello.txt") for line in out["list"]), out["list"]
    assert out["list"][0].startswith("-rw"), out["list"]
    assert [Path(n).name for n in out["nlst"]] == ["hello.txt"]
    facts = out["mlsd"]["hello.txt"]
    assert facts["type"] == "file" and facts["size"] == "25", facts
    assert out["mlst"].startswith("250"), out["mlst"]
    assert "type=file;" in out["mlst"] and "size=25;" in out["mlst"], out["mlst"]
    assert out["size"] == 25
    assert (out["rnfr"], out["rnto"]) == ("350", "250")
    assert [Path(n).name for n in out["after_rename"]] == ["renamed.txt"]
    assert out["renamed_content"] == "hello from the Cortex-M3\n"
    assert out["dele"] == "250"
    assert out["deleted"] == "550"
    assert out["rmd"] == "250"
    assert "fwdir" not in out["root_after"]
    assert out["bad_login"] == "530"


def transfer_both_ways(fw, active: bool, name: str):
    flag = ["--active"] if active else []
    src = random_file(fw.work / f"{name}.src")
    up = fw.client("put", str(src), f"{name}.bin", *flag)
    assert up["reply"].startswith("226"), up
    assert up["size"] == SIZE
    back = fw.work / f"{name}.back"
    down = fw.client("get", f"{name}.bin", str(back), *flag)
    assert down["reply"].startswith("226"), down
    assert sha256(back) == sha256(src), "not byte-exact"
    fw.client("delete", f"{name}.bin")


def test_passive_transfers_of_256_kib_both_ways(fw):
    transfer_both_ways(fw, active=False, name="passive")


def test_active_transfers_of_256_kib_both_ways(fw):
    transfer_both_ways(fw, active=True, name="active")


def test_two_clients_at_once(fw):
    out = fw.client("concurrent", "2", str(SIZE))
    clients = out["clients"]
    assert len(clients) == 2
    for i, c in enumerate(clients):
        assert c.get("ok") and c.get("listed"), f"client {i}: {c}"
    assert {c["mode"] for c in clients} == {"passive", "active"}


def test_a_client_that_drops_mid_transfer_then_a_new_client(fw):
    src = random_file(fw.work / "dropped.src")
    assert fw.client("put", str(src), "dropped.bin")["reply"].startswith("226")
    got = fw.client("drop-download", "dropped.bin")
    assert got["received"] > 0
    fw.client("drop-upload", "half.bin", str(64 * KIB))
    # The firmware notices the resets and frees both sessions.
    assert wait_until(lambda: sessions_closed(fw)), fw.log()[-3000:]
    log = fw.log()
    assert "download /dropped.bin" in log and "upload /half.bin" in log, log[-3000:]

    # A new client works: a full transfer each way, byte-exact.
    back = fw.work / "dropped.back"
    down = fw.client("get", "dropped.bin", str(back))
    assert down["reply"].startswith("226")
    assert sha256(back) == sha256(src)
    again = random_file(fw.work / "after.src")
    assert fw.client("put", str(again), "after.bin", "--active")["reply"].startswith("226")
    back2 = fw.work / "after.back"
    fw.client("get", "after.bin", str(back2))
    assert sha256(back2) == sha256(again)
    fw.client("delete", "dropped.bin", "after.bin")
    # The cut upload left either nothing or a partial file, never a hang.
    names = fw.exec(["curl", "-sS", "--max-time", "20", "-u", f"{USER}:{PASSWORD}", "-l",
                     fw.url]).stdout.split()
    if "half.bin" in names:
        fw.client("delete", "half.bin")


def test_curl_passive_active_rename_and_delete(fw):
    need_tool("curl")
    src = random_file(fw.work / "curl.src")
    url = fw.url
    base = ["curl", "-sS", "--max-time", "60", "-u", f"{USER}:{PASSWORD}"]
    fw.exec([*base, "-T", str(src), url + "curl-up.bin"])
    for mode, extra in (("epsv", []), ("pasv", ["--disable-epsv"]), ("port", ["-P", "-"]),
                        ("eprt", ["-P", "-", "--disable-eprt"])):
        out = fw.work / f"curl-{mode}.bin"
        fw.exec([*base, *extra, "-o", str(out), url + "curl-up.bin"])
        assert sha256(out) == sha256(src), f"curl {mode} download differs"
    fw.exec([*base, "-P", "-", "-T", str(src), url + "curl-active-up.bin"])
    back = fw.work / "curl-active-up.back"
    fw.exec([*base, "-o", str(back), url + "curl-active-up.bin"])
    assert sha256(back) == sha256(src)
    # RNFR/RNTO and DELE as quote commands, then a listing.
    fw.exec([*base, "-Q", "RNFR curl-up.bin", "-Q", "RNTO curl-moved.bin",
             "-Q", "DELE curl-active-up.bin", "-l", url])
    listing = fw.exec([*base, "-l", url]).stdout.split()
    assert "curl-moved.bin" in listing and "curl-up.bin" not in listing, listing
    assert "curl-active-up.bin" not in listing, listing
    fw.exec([*base, "-Q", "DELE curl-moved.bin", "-l", url])


def test_lftp_put_get_mkdir_mv_rm(fw):
    need_tool("lftp")
    src = random_file(fw.work / "lftp.src")
    back = fw.work / "lftp.back"
    # lftp sends OPTS UTF8 ON after FEAT, MDTM after a download, SITE UTIME
    # (or MFMT, when FEAT lists it) after an upload, REST to resume an
    # upload, ABOR to cut a transfer short and STAT while one stalls: the
    # emftp firmware answers 502 to each, so lftp is told not to use them.
    # curl sends nothing outside emFTP's set here.
    emftp = ("set ftp:use-utf8 no; set ftp:use-mdtm no; set ftp:use-site-utime no; "
             "set ftp:use-site-utime2 no; set ftp:rest-stor no; set ftp:use-abor no; "
             "set ftp:use-stat no; ") if profile(fw) == "emftp" else ""
    script = emftp + (
        "set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; "
        "mkdir lftpdir; cd lftpdir; "
        f"put {src} -o lftp.bin; get lftp.bin -o {back}; "
        f"set ftp:passive-mode off; get lftp.bin -o {back}.active; "
        "mv lftp.bin moved.bin; cls -1; rm moved.bin; cd ..; rmdir lftpdir; cls -1; bye"
    )
    res = fw.exec(["lftp", "-u", f"{USER},{PASSWORD}", "-p", str(fw.port), "-e", script,
                   fw.server_ip])
    listed = res.stdout.split()
    assert "moved.bin" in listed, res.stdout
    assert "lftpdir/" not in listed and "lftpdir" not in listed[1:], res.stdout
    assert sha256(back) == sha256(src)
    assert sha256(Path(f"{back}.active")) == sha256(src)


def test_no_frame_was_lost_to_a_driver_error(fw):
    """The LAN9118 driver threw no received frame away as broken, and the
    log has no sign of trouble (the fixture also fails on a panic)."""
    assert wait_until(lambda: sessions_closed(fw))
    idle = [line for line in fw.log().splitlines() if line.startswith("idle:")]
    assert idle, fw.log()[-2000:]
    assert "(0 dropped), " in idle[-1], idle[-1]


# Commands of the default profile that the emftp profile leaves out
# (ferry-core's features resume, mtime, status, compat), each sent without a
# data connection.
LEFT_OUT_OF_EMFTP = [
    "REST 0", "APPE left-out.bin", "STOU", "MDTM left-out.bin",
    "MFMT 20240101000000 left-out.bin", "STAT", "HELP", "SITE HELP", "ABOR", "ACCT x",
    "ALLO 100", "MODE S", "STRU F", "OPTS UTF8 ON", "XCWD /",
]


def test_emftp_profile_answers_502_to_what_it_leaves_out(fw):
    """The emftp firmware answers 502 to every command outside emFTP's set
    and still serves the session; the default firmware serves them all."""
    replies = fw.client("commands", *LEFT_OUT_OF_EMFTP, "TYPE A", "TYPE I", "NOOP")["replies"]
    if profile(fw) == "emftp":
        not_502 = {c: r for c, r in replies.items() if c in LEFT_OUT_OF_EMFTP and r != "502"}
        assert not not_502, f"the emftp profile served commands it leaves out: {not_502}"
    else:
        got_502 = {c: r for c, r in replies.items() if r == "502"}
        assert not got_502, f"the default profile answered 502: {got_502}"
    # TYPE A is accepted in both (transfers are binary in emftp).
    assert (replies["TYPE A"], replies["TYPE I"], replies["NOOP"]) == ("200", "200", "200"), replies


def test_renaming_a_directory_tree(fw):
    """A directory rename walks the tree below it (the storage refuses a
    rename that would make a path too long): the deepest storage path the
    firmware serves, so the stack test below covers it."""
    made = ["/deep", "/deep/a", "/deep/a/b", "/deep/a/b/c", "/deep/a/b/c/d"]
    moved = [p.replace("/deep", "/moved", 1) for p in made]
    lines = [*(f"MKD {p}" for p in made), "RNFR /deep", "RNTO /moved",
             "CWD /moved/a/b/c/d", "CWD /deep", *(f"RMD {p}" for p in reversed(moved))]
    replies = fw.client("commands", *lines)["replies"]
    want = {**{f"MKD {p}": "257" for p in made}, "RNFR /deep": "350", "RNTO /moved": "250",
            "CWD /moved/a/b/c/d": "250", "CWD /deep": "550",
            **{f"RMD {p}": "250" for p in moved}}
    assert replies == want


def test_a_flood_of_idle_connections_does_not_lock_users_out(fw):
    """Issue 12: with the 4-session table held by a session from before and
    3 connections that never log in (from two other addresses, reopened as
    soon as the firmware closes them), a client logs in within 2 s every
    time, and the session from before keeps working."""
    # Imported here: the W5500 suite imports this module under its own
    # conftest, which has no flood addresses.
    from conftest import FLOOD_IPS

    out = fw.client("flood", ",".join(FLOOD_IPS), "3", "5", "2", str(16 * KIB))
    assert out["held"] == 3, out
    assert len(out["logins_ms"]) == 5 and all(t < 2000 for t in out["logins_ms"]), out
    assert all(out["fetched"]) and all(out["before"]), out
    assert out["evicted"] >= 5, out
    print(f"\n{fw.profile} firmware: logins under a flood {out['logins_ms']} ms, "
          f"{out['evicted']} flood connections evicted of {out['opened']}")
    assert wait_until(lambda: sessions_closed(fw)), fw.log()[-3000:]
    assert "closed to make room" in fw.log()


def test_stack_within_budget(fw):
    """The firmware's own stack measurement (it paints its stack): serving
    stays within the budget (xtask's QEMU_SERVING_STACK_LIMIT), and start-up
    (building the statics) needs no more than serving. Runs last, after
    every other test has driven the firmware."""
    # Imported here: the W5500 suite imports this module under its own
    # conftest, which has no stack figures.
    from conftest import STACK_FIGURES, stack_limit

    # One more session, so that there is an idle line even when this test
    # runs alone.
    fw.client("commands", "NOOP")
    assert wait_until(lambda: sessions_closed(fw) and fw.log().rstrip().endswith("bytes"))
    log = fw.log()
    start_up = re.search(r"start-up used (\d+) bytes of stack", log)
    serving = [int(n) for n in re.findall(r"serving stack high water (\d+) bytes", log)]
    assert start_up and serving, log[-2000:]
    figures = {"start_up": int(start_up.group(1)), "serving": max(serving), "limit": stack_limit()}
    STACK_FIGURES[profile(fw)] = figures
    assert figures["serving"] <= figures["limit"], \
        f"{profile(fw)} profile: serving stack {figures['serving']} > limit {figures['limit']} bytes"
    assert figures["start_up"] <= figures["serving"], \
        f"{profile(fw)} profile: start-up stack {figures['start_up']} > serving {figures['serving']}"
