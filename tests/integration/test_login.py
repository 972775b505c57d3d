"""Login: USER/PASS, failures, anonymous, read-only users."""
import ftplib
import select
import threading
import time

import pytest

from ferry_helpers import PASSWORD, USER


def test_greeting_and_login(server):
    f = server.connect(login=False)
    assert f.welcome.startswith("220")
    assert f.cmd(f"USER {USER}")[0] == 331
    assert f.cmd(f"PASS {PASSWORD}")[0] == 230
    assert f.cmd("NOOP")[0] == 200
    code, _ = f.cmd("QUIT")
    assert code == 221
    f.close()


def test_bad_password_530_after_delay_and_others_not_blocked(server):
    """A failed login is answered 530 after a delay; the delay must not stall
    the (single-threaded) server for other clients."""
    bad = server.raw()
    assert bad.reply()[0] == 220
    assert bad.cmd(f"USER {USER}")[0] == 331
    t0 = time.monotonic()
    bad.send(b"PASS wrong\r\n")
    result = {}

    def other():
        f = server.connect()  # full login of another client
        assert f.cmd("NOOP")[0] == 200
        result["other_done"] = time.monotonic()
        f.close()

    th = threading.Thread(target=other)
    th.start()
    code, lines = bad.reply()
    t_bad = time.monotonic()
    th.join(15)
    assert code == 530, lines
    assert t_bad - t0 >= 0.3, "failed login answered without a delay"
    assert "other_done" in result, "second client could not log in"
    assert result["other_done"] < t_bad, "a failed login's delay blocked another client"
    # the same connection can retry and succeed
    assert bad.cmd(f"USER {USER}")[0] == 331
    assert bad.cmd(f"PASS {PASSWORD}")[0] == 230
    bad.close()


def test_unknown_user_530(server):
    f = server.connect(login=False)
    code, _ = f.cmd("USER nosuchuser")
    assert code in (331, 530)
    if code == 331:
        assert f.cmd("PASS whatever")[0] == 530
    f.close()


def test_pass_without_user_503(server):
    f = server.connect(login=False)
    assert f.cmd("PASS secret")[0] == 503
    f.close()


@pytest.mark.parametrize("line", [
    "PWD", "CWD /", "CDUP", "LIST", "NLST", "MLSD", "RETR x", "STOR x", "MKD x",
    "RMD x", "DELE x", "SIZE x", "MDTM x", "RNFR x", "PASV", "EPSV",
    "PORT 127,0,0,1,200,1", "STAT /",
])
def test_commands_before_login_530(server, line):
    f = server.connect(login=False)
    code, resp = f.cmd(line)
    assert code == 530, resp
    # nothing was created
    assert server.store.listdir() == []
    f.close()


def test_feat_allowed_before_login(server):
    """Clients (lftp, FileZilla) send FEAT before logging in, e.g. to look for AUTH TLS."""
    f = server.connect(login=False)
    code, resp = f.cmd("FEAT")
    assert code == 211, resp
    f.close()


def test_anonymous_disabled_by_default(server):
    f = server.connect(login=False)
    code, _ = f.cmd("USER anonymous")
    if code == 331:
        code, _ = f.cmd("PASS guest@example.com")
    assert code == 530
    f.close()


def test_anonymous_read_only(start_server, store):
    store.write_bytes("pub.txt", b"public\n")
    s = start_server(["--anonymous"])
    ftp_alias = s.connect(user="ftp", password="")
    assert ftp_alias.retr_bytes("pub.txt") == b"public\n"
    ftp_alias.close()
    f = s.connect(user="anonymous", password="guest@example.com")
    assert f.retr_bytes("pub.txt") == b"public\n"
    assert "pub.txt" in f.nlst()
    with pytest.raises(ftplib.error_perm) as e:
        f.stor_bytes("new.txt", b"x")
    assert str(e.value)[:3] in ("550", "553")
    assert f.cmd("MKD d")[0] == 550
    assert f.cmd("DELE pub.txt")[0] == 550
    c1, _ = f.cmd("RNFR pub.txt")
    if c1 == 350:
        assert f.cmd("RNTO moved.txt")[0] == 550
    else:
        assert c1 == 550
    assert store.listdir() == ["pub.txt"]
    assert store.read_bytes("pub.txt") == b"public\n"
    # the real user still logs in and may write
    g = s.connect()
    g.stor_bytes("w.txt", b"w")
    assert store.read_bytes("w.txt") == b"w"
    f.close()
    g.close()


def test_read_only_server_refuses_changes(start_server, store):
    store.write_bytes("f.txt", b"data")
    store.mkdir("d")
    store.write_bytes("d/inner", b"i")
    s = start_server(["--read-only"])
    f = s.connect()
    assert f.retr_bytes("f.txt") == b"data"
    with pytest.raises(ftplib.error_perm) as e:
        f.stor_bytes("new.txt", b"x")
    assert str(e.value)[:3] in ("550", "553")
    with pytest.raises(ftplib.error_perm) as e:
        f.stor_bytes("f.txt", b"overwrite")
    assert str(e.value)[:3] in ("550", "553")
    with pytest.raises(ftplib.error_perm) as e:
        f.stor_bytes("f.txt", b"more", cmd="APPE")
    assert str(e.value)[:3] in ("550", "553")
    assert f.cmd("DELE f.txt")[0] == 550
    assert f.cmd("MKD x")[0] == 550
    assert f.cmd("RMD d")[0] == 550
    assert f.cmd("MFMT 20000101000000 f.txt")[0] == 550
    c1, _ = f.cmd("RNFR f.txt")
    if c1 == 350:
        assert f.cmd("RNTO g.txt")[0] == 550
    else:
        assert c1 == 550
    assert store.listdir() == ["d", "f.txt"]
    assert store.read_bytes("f.txt") == b"data"
    assert store.read_bytes("d/inner") == b"i"
    f.close()


def test_quit_closes_connection(server):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    assert raw.cmd("QUIT")[0] == 221
    assert raw.at_eof(), "server kept the connection open after QUIT"
    raw.close()


def test_prints_where_it_listens_and_how_to_log_in(start_server):
    """With no --user, ferryd makes up a password and prints it; that login works."""
    import re
    s = start_server(users=())
    out = s.out_path.read_text()
    assert f"listening on ftp://127.0.0.1:{s.port}" in out, out
    m = re.search(r'user "([^"]+)", password "([^"]+)"', out)
    assert m, f"no login hint in: {out!r}"
    f = s.connect(user=m.group(1), password=m.group(2))
    assert f.cmd("NOOP")[0] == 200
    f.close()
    with pytest.raises(ftplib.error_perm):
        s.connect(user=m.group(1), password=m.group(2) + "x")


# argon2id of "slow-pw" with m=64 MiB, t=12: about 0.5 s per check in a
# release build, far longer than a NOOP round trip.
SLOW_HASH = ("$argon2id$v=19$m=65536,t=12,p=1$ZmVycnlzbG93c2FsdDEyMw$"
             "1mrVs7tsMiIIVwuIoqsDwKcaoGCwPc2TvosIgv47/tU")


@pytest.mark.needs("host_dir")
def test_a_slow_password_check_does_not_stall_other_sessions(start_server, store):
    """Issue 15 (2): password hashes are checked off the poll loop. While
    the server checks slow hashes for several guessing connections, a
    logged-in session's NOOPs are all answered before the first check's
    reply (inside the loop, each NOOP waited for the hashes ahead of it)."""
    def config(port, port6):
        return f"""
{store.config_toml()}
listen = ["127.0.0.1:{port}"]
[[user]]
name = "test"
password = "secret"
[[user]]
name = "slow"
password_hash = "{SLOW_HASH}"
"""
    s = start_server(config=config)
    user = s.connect()
    guessers = [s.raw() for _ in range(4)]
    for g in guessers:
        assert g.reply()[0] == 220
        assert g.cmd("USER slow")[0] == 331
    for i, g in enumerate(guessers):
        g.send(b"PASS slow-pw\r\n" if i == 0 else b"PASS wrong\r\n")
    t0 = time.monotonic()
    noops = []
    for _ in range(20):
        t = time.monotonic()
        assert user.cmd("NOOP")[0] == 200
        noops.append(time.monotonic() - t)
    answered_noops = time.monotonic() - t0
    # The check of the right password is not done yet: nothing has come.
    readable, _, _ = select.select([guessers[0].sock], [], [], 0)
    assert not readable and not guessers[0].buf, (answered_noops, guessers[0].buf)
    code, lines = guessers[0].reply()
    answered_login = time.monotonic() - t0
    assert code == 230, lines
    for g in guessers[1:]:
        assert g.reply()[0] == 530
        g.close()
    guessers[0].close()
    print(f"\nNOOP during 4 slow checks: worst {max(noops) * 1000:.1f} ms; "
          f"the correct password answered after {answered_login * 1000:.0f} ms")
    user.close()
