"""The TOML config file: users with homes, hashed passwords, read-only users,
and the passive-mode settings."""
import ftplib
import re

import pytest

from ferry_helpers import free_port_range, set_mode

# argon2id PHC string of the password "hashed-pw"
HASH = "$argon2id$v=19$m=8192,t=1,p=1$ZmVycnl0ZXN0c2FsdDEyMw$us0Qhma/SGRkT5G2vOiM9s63JGiOzoXhTO+KoE/z7gU"


def toml_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def homes(store):
    store.write_bytes("top.txt", b"top secret of the admin")
    store.mkdir("alice")
    store.write_bytes("alice/mine.txt", b"alice's")
    store.mkdir("alice/docs")
    store.mkdir("bob")
    store.write_bytes("bob/b.txt", b"bob's")
    return store


@pytest.fixture
def cfg_server(start_server, homes):
    def config(port, port6):
        return f"""
{homes.config_toml()}
listen = ["127.0.0.1:{port}"]

[[user]]
name = "test"
password = "secret"

[[user]]
name = "alice"
password = "wonderland"
home = "/alice"

[[user]]
name = "bob"
password_hash = {toml_str(HASH)}
home = "/bob"
read_only = true
"""
    return start_server(config=config)


def test_user_home_is_root(cfg_server, homes):
    f = cfg_server.connect(user="alice", password="wonderland")
    assert ftplib.parse257(f.cmd("PWD")[1]) == "/"
    assert sorted(f.nlst()) == ["docs", "mine.txt"]
    assert f.retr_bytes("mine.txt") == b"alice's"
    assert f.retr_bytes("/mine.txt") == b"alice's"
    for path in ("/top.txt", "../top.txt", "/../top.txt", "/alice/mine.txt", "../bob/b.txt"):
        with pytest.raises(ftplib.error_perm):
            f.retr_bytes(path)
    f.cmd("CWD ..")
    assert ftplib.parse257(f.cmd("PWD")[1]) == "/"
    assert sorted(f.nlst()) == ["docs", "mine.txt"]
    assert f.cmd("CWD docs")[0] == 250
    assert ftplib.parse257(f.cmd("PWD")[1]) == "/docs"
    f.stor_bytes("new.txt", b"in docs")
    f.stor_bytes("/up.txt", b"at home")
    assert homes.read_bytes("alice/docs/new.txt") == b"in docs"
    assert homes.read_bytes("alice/up.txt") == b"at home"
    assert not homes.exists("up.txt")
    names = {k for k, v in f.mlsd("/") if v["type"] not in ("cdir", "pdir")}
    assert names == {"docs", "mine.txt", "up.txt"}
    f.close()


def test_password_hash_and_read_only_user(cfg_server, homes):
    with pytest.raises(ftplib.error_perm):
        cfg_server.connect(user="bob", password="wrong")
    f = cfg_server.connect(user="bob", password="hashed-pw")
    assert f.nlst() == ["b.txt"]
    assert f.retr_bytes("b.txt") == b"bob's"
    with pytest.raises(ftplib.error_perm) as e:
        f.stor_bytes("x.txt", b"x")
    assert str(e.value)[:3] in ("550", "553")
    assert f.cmd("DELE b.txt")[0] == 550
    assert f.cmd("MKD d")[0] == 550
    assert homes.listdir("bob") == ["b.txt"]
    f.close()


def test_config_user_without_home_sees_everything(cfg_server, homes):
    f = cfg_server.connect()
    assert sorted(f.nlst()) == ["alice", "bob", "top.txt"]
    assert f.retr_bytes("alice/mine.txt") == b"alice's"
    f.close()


def test_passive_ports_and_address(start_server, store):
    lo, hi = free_port_range(21)
    s = start_server(["--passive-ports", f"{lo}-{hi}", "--passive-address", "127.0.0.5"])
    f = s.connect()
    for _ in range(5):
        code, resp = f.cmd("PASV")
        assert code == 227, resp
        host, port = ftplib.parse227(resp)
        assert host == "127.0.0.5", resp
        assert lo <= port <= hi, resp
        code, resp = f.cmd("EPSV")
        assert code == 229, resp
        port = int(re.search(r"\|\|\|(\d+)\|", resp).group(1))
        assert lo <= port <= hi, resp
    # transfers work through the range (ftplib connects to the control address)
    store.write_bytes("f", b"ranged")
    set_mode(f, "pasv")
    assert f.retr_bytes("f") == b"ranged"
    set_mode(f, "epsv")
    assert f.retr_bytes("f") == b"ranged"
    f.close()


def test_passive_range_exhausted_is_an_error_not_a_hang(start_server, store):
    lo, _ = free_port_range(1)
    s = start_server(["--passive-ports", f"{lo}-{lo}"])
    a = s.connect()
    b = s.connect()
    code, resp = a.cmd("PASV")
    assert code == 227, resp
    code, resp = b.cmd("EPSV")
    # the only port is taken by a's pending listener: 425 (or 421/451)
    assert code in (425, 421, 451, 229), resp
    assert b.cmd("NOOP")[0] == 200 or code == 421
    a.close()
    b.close()
