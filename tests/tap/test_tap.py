"""Ferry on smoltcp (host-tap) against real clients over a TAP device:
Python's ftplib, curl and lftp, run inside the test's network namespace.

See conftest.py for the setup and how to run it.
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from conftest import PASSWORD, REPO, USER, need_tool, tap_server, wait_until

MIB = 1024 * 1024


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n
    return path


def test_login_listing_and_a_failed_login(net):
    out = net.client("session")
    assert out["pwd"] == "/"
    assert any(line.endswith(" hello.txt") for line in out["list"]), out["list"]
    assert [Path(n).name for n in out["nlst"]] == ["hello.txt"]
    assert "hello.txt" in out["mlsd"]
    assert out["size"] == len(b"hello over smoltcp\n")
    assert out["bad_login"] == "530"
    assert (net.root / "tapdir" / "hello.txt").read_bytes() == b"hello over smoltcp\n"


def transfer_both_ways(net, active: bool, name: str):
    flag = ["--active"] if active else []
    src = random_file(net.work / f"{name}.src", 5 * MIB)
    up = net.client("put", str(src), f"{name}.bin", *flag)
    assert up["reply"].startswith("226"), up
    assert sha256(net.root / f"{name}.bin") == sha256(src), "upload not byte-exact"
    back = net.work / f"{name}.back"
    down = net.client("get", f"{name}.bin", str(back), *flag)
    assert down["reply"].startswith("226"), down
    assert sha256(back) == sha256(src), "download not byte-exact"


def test_passive_transfers_of_5_mib_both_ways(net):
    transfer_both_ways(net, active=False, name="passive5")


def test_active_transfers_of_5_mib_both_ways(net):
    transfer_both_ways(net, active=True, name="active5")


def test_five_concurrent_clients(net):
    out = net.client("concurrent", "5", str(512 * 1024))
    clients = out["clients"]
    assert len(clients) == 5
    for i, c in enumerate(clients):
        assert c.get("ok") and c.get("listed"), f"client {i}: {c}"
        assert hashlib.sha256((net.root / f"client{i}.bin").read_bytes()).hexdigest() == c["sha256"]


def test_abort_during_a_download(net):
    random_file(net.root / "abort.bin", 5 * MIB)
    out = net.client("abort", "abort.bin")
    assert out["received"] > 0
    assert out["abort"][:3] in ("225", "226", "426"), out  # RFC 959 ABOR
    assert out["noop"].startswith("200"), out


def test_reconnects_and_dropped_sessions(net):
    # 24 sessions, 8 of them dropped without QUIT: had the dropped ones
    # kept their slots, the last connection would get 421 (8 slots).
    out = net.client("reconnect", "24")
    assert out["sessions"] == 24

    def all_closed():
        log = net.stderr()
        return log.count(" connected\n") == log.count(" disconnected\n")

    assert wait_until(all_closed), "some sessions were never freed"


def test_curl_passive_and_active(net):
    need_tool("curl")
    src = random_file(net.work / "curl.src", 5 * MIB)
    url = f"ftp://{net.server_ip}/"
    auth = f"{USER}:{PASSWORD}"
    base = ["curl", "-sS", "--max-time", "60", "-u", auth]
    net.exec([*base, "-T", str(src), url + "curl-up.bin"])
    assert sha256(net.root / "curl-up.bin") == sha256(src)
    for mode, extra in (("epsv", []), ("pasv", ["--disable-epsv"]), ("port", ["-P", "-"])):
        out = net.work / f"curl-{mode}.bin"
        net.exec([*base, *extra, "-o", str(out), url + "curl-up.bin"])
        assert sha256(out) == sha256(src), f"curl {mode} download differs"
    listing = net.exec([*base, "-l", url]).stdout.split()
    assert "curl-up.bin" in listing


def test_lftp_put_get_and_ls(net):
    need_tool("lftp")
    src = random_file(net.work / "lftp.src", 5 * MIB)
    back = net.work / "lftp.back"
    script = (
        "set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; "
        f"put {src} -o lftp.bin; get lftp.bin -o {back}; "
        "set ftp:passive-mode off; get lftp.bin -o {back}.active; cls -1; bye"
    ).replace("{back}", str(back))
    res = net.exec(["lftp", "-u", f"{USER},{PASSWORD}", "-e", script, net.server_ip])
    assert "lftp.bin" in res.stdout.split()
    assert sha256(net.root / "lftp.bin") == sha256(src)
    assert sha256(back) == sha256(src)
    assert sha256(Path(f"{back}.active")) == sha256(src)


def test_retr_64_mib_throughput(net, capsys):
    """Prints (does not assert) the RETR speed through host-tap, and keeps it
    in target/host-tap-bench.txt as a baseline for tuning."""
    size = 64 * MIB
    random_file(net.root / "big64.bin", size)
    sink = net.work / "big64.back"
    out = net.client("get", "big64.bin", str(sink))
    assert out["bytes"] == size
    mib_s = size / MIB / out["seconds"]
    line = f"host-tap RETR 64 MiB: {mib_s:.1f} MiB/s"
    with capsys.disabled():
        print(f"\n{line}")
    target = REPO / "target"
    target.mkdir(exist_ok=True)
    (target / "host-tap-bench.txt").write_text(
        f"{line} ({time.strftime('%Y-%m-%d %H:%M:%S')}, ftplib RETR, 64 KiB socket buffers)\n")
    sink.unlink()
    (net.root / "big64.bin").unlink()


@pytest.mark.parametrize("kind", ["littlefs", "fat"])
def test_an_image_file_system_survives_a_restart(tmp_path, kind):
    """The firmware's storage path: host-tap on a littlefs (or FAT) image;
    what one run stored, the next run serves."""
    image = tmp_path / f"{kind}.img"
    src = random_file(tmp_path / "src.bin", MIB + 12345)
    with tap_server(tmp_path / "first", ["--fs", f"{kind}:{image}", "--fs-size", "8M"]) as net:
        up = net.client("put", str(src), "kept.bin")
        assert up["reply"].startswith("226"), up
        back = net.work / "back.bin"
        net.client("get", "kept.bin", str(back), "--active")
        assert sha256(back) == sha256(src)
        out = net.client("session")
        assert out["size"] == len(b"hello over smoltcp\n")
    with tap_server(tmp_path / "second", ["--fs", f"{kind}:{image}"]) as net:
        again = net.work / "again.bin"
        net.client("get", "kept.bin", str(again))
        assert sha256(again) == sha256(src), f"{kind} image lost the file across a restart"
