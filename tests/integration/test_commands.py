"""Protocol-level commands: SYST, FEAT, OPTS, NOOP, HELP, STAT, TYPE, MODE,
STRU, ALLO and the error replies for unknown commands and bad arguments."""
import socket
import threading
import time

import pytest


def test_syst(ftp):
    code, resp = ftp.cmd("SYST")
    assert code == 215, resp
    assert resp.startswith("215 UNIX") or resp.startswith("215 ")


def feat_lines(ftp):
    code, resp = ftp.cmd("FEAT")
    assert code == 211, resp
    lines = resp.split("\n")
    assert lines[0].startswith("211-"), resp
    assert lines[-1].startswith("211 "), resp
    body = lines[1:-1]
    for ln in body:
        # RFC 2389: each feature line starts with exactly one space
        assert ln.startswith(" ") and not ln.startswith("  "), repr(ln)
    return [ln.strip() for ln in body]


def test_feat_lists_features(ftp):
    feats = feat_lines(ftp)
    names = {f.split(" ")[0].upper() for f in feats}
    for want in ["UTF8", "MLST", "SIZE", "MDTM", "REST", "EPSV", "EPRT", "MFMT", "TVFS"]:
        assert want in names, f"FEAT lacks {want}: {feats}"
    assert "REST STREAM" in [f.upper() for f in feats], feats
    mlst = next(f for f in feats if f.upper().startswith("MLST"))
    facts = [x.rstrip("*").lower() for x in mlst.split(" ", 1)[1].split(";") if x]
    for fact in ("type", "size", "modify"):
        assert fact in facts, mlst


def test_opts_utf8_on(ftp):
    assert ftp.cmd("OPTS UTF8 ON")[0] == 200
    assert ftp.cmd("OPTS utf8 on")[0] == 200


def test_noop_help_stat(ftp):
    assert ftp.cmd("NOOP")[0] == 200
    code, resp = ftp.cmd("HELP")
    assert code == 214, resp
    code, resp = ftp.cmd("STAT")
    assert code == 211, resp


def test_unknown_command_500(ftp):
    assert ftp.cmd("FOOBAR")[0] == 500
    assert ftp.cmd("XYZZY with args")[0] == 500
    assert ftp.cmd("NOOP")[0] == 200


def test_commands_are_case_insensitive(ftp):
    assert ftp.cmd("noop")[0] == 200
    assert ftp.cmd("pWd")[0] == 257


@pytest.mark.parametrize("line", [
    "TYPE X",
    "TYPE",
    "PORT 1,2",
    "PORT 1,2,3,4,5,6,7",
    "PORT 999,0,0,1,4,1",
    "PORT 127,0,0,1,300,1",
    "PORT a,b,c,d,e,f",
    "EPRT |1|127.0.0.1|99999|",
    "EPRT |1|not-an-ip|2000|",
    "EPRT garbage",
    "REST abc",
    "REST -1",
    "REST 99999999999999999999999999",
    "MFMT 2020 f",
    "MFMT 20201301000000 f",
    "MFMT notatime f",
    "MODE",
    "STRU",
    "CWD",
    "XCWD",
    "MKD",
    "RMD",
    "DELE",
    "RNFR",
    "RETR",
    "STOR",
    "APPE",
    "SIZE",
    "MDTM",
    "OPTS",
])
def test_bad_arguments_501(ftp, line):
    code, resp = ftp.cmd(line)
    assert code == 501, f"{line!r} -> {resp!r}"
    assert ftp.cmd("NOOP")[0] == 200


def test_eprt_unknown_protocol_522(ftp):
    code, resp = ftp.cmd("EPRT |3|127.0.0.1|2000|")
    assert code == 522, resp
    code, resp = ftp.cmd("EPSV 3")
    assert code == 522, resp


@pytest.mark.parametrize("line", ["TYPE I", "TYPE A", "TYPE A N", "TYPE L 8", "type i"])
def test_type_ok(ftp, line):
    assert ftp.cmd(line)[0] == 200


def test_mode_stru_allo(ftp):
    assert ftp.cmd("MODE S")[0] == 200
    assert ftp.cmd("MODE B")[0] == 504
    assert ftp.cmd("MODE C")[0] == 504
    assert ftp.cmd("STRU F")[0] == 200
    assert ftp.cmd("STRU R")[0] == 504
    assert ftp.cmd("STRU P")[0] == 504
    assert ftp.cmd("ALLO 1000")[0] in (200, 202)
    assert ftp.cmd("ALLO 1000 R 100")[0] in (200, 202)


def test_pipelined_commands(server):
    """Several commands in one TCP segment are all answered, in order."""
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.send(b"USER test\r\nPASS secret\r\nNOOP\r\nPWD\r\nSYST\r\n")
    codes = [raw.reply()[0] for _ in range(5)]
    assert codes == [331, 230, 200, 257, 215]
    raw.close()


def test_lf_only_line_ending(server):
    """A bare LF ends a line too (some clients, and humans with nc)."""
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.send(b"USER test\nPASS secret\nNOOP\n")
    assert [raw.reply()[0] for _ in range(3)] == [331, 230, 200]
    raw.close()


def test_telnet_iac_is_stripped(server):
    """IAC IP / IAC DM (as sent before ABOR) and IAC IAC are handled in the line."""
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    raw.send(b"\xff\xf4\xff\xf2NOOP\r\n")
    assert raw.reply()[0] == 200
    raw.close()


def test_line_split_across_segments(server):
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for part in (b"US", b"ER te", b"st\r", b"\nPA", b"SS secret\r\n"):
        raw.send(part)
        time.sleep(0.05)
    assert raw.reply()[0] == 331
    assert raw.reply()[0] == 230
    raw.close()


def test_reply_backpressure_many_pipelined_commands(server):
    """20000 commands sent without reading: every reply arrives, in order,
    none dropped when the server's output is blocked."""
    raw = server.raw()
    assert raw.reply()[0] == 220
    raw.login()
    n = 20000
    batch = b"".join(b"FEAT\r\n" if i % 10 == 9 else b"NOOP\r\n" for i in range(n))
    err = []

    def sender():
        try:
            raw.sock.sendall(batch)
        except OSError as e:
            err.append(e)

    th = threading.Thread(target=sender)
    th.start()
    time.sleep(1.0)  # let the server's output back up
    raw.sock.settimeout(30)
    for i in range(n):
        code, lines = raw.reply()
        assert code == (211 if i % 10 == 9 else 200), (i, lines)
    th.join(30)
    assert not err, err
    assert raw.cmd("PWD")[0] == 257
    raw.close()


def test_rein(ftp):
    code, resp = ftp.cmd("REIN")
    assert code in (220, 502), resp
    if code == 220:
        assert ftp.cmd("PWD")[0] == 530
        assert ftp.cmd("USER test")[0] == 331
        assert ftp.cmd("PASS secret")[0] == 230
