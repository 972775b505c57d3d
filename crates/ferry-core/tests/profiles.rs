//! Protocol profiles: one scripted test that runs in every feature build of
//! `ferry-core`. Every command of the emftp set (the build with no optional
//! feature) works end to end; every command outside it gives its real reply
//! when its feature is built and exactly `502 Command not implemented.`
//! otherwise, logged in or not; and the security properties (bounce check,
//! traversal, session limits, login delay, timeouts) hold in each build.
//!
//! Run it in the emftp profile with
//! `cargo test -p ferry-core --no-default-features --test profiles`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use ferry_core::Config;
use support::*;

const NOT_IMPLEMENTED: &str = "502 Command not implemented.\r\n";
const LOGIN_FIRST: &str = "530 Please login with USER and PASS.\r\n";
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 6, 6);

/// 2020-06-15 12:00:00 UTC: older than six months at the virtual clock's
/// time, so LIST shows the year.
const MTIME: u64 = 1_592_222_400;

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config();
    f(&mut c);
    c
}

/// Sets the modification time of a served file.
fn set_mtime(h: &Harness, rel: &str, unix: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(h.path(rel))
        .expect("open");
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(unix))
        .expect("set_modified");
}

/// How the data connection is made.
#[derive(Debug, Clone, Copy)]
enum DataMode {
    Pasv,
    Epsv,
    Port,
    Eprt,
}

const MODES: [DataMode; 4] = [
    DataMode::Pasv,
    DataMode::Epsv,
    DataMode::Port,
    DataMode::Eprt,
];

/// A data connection being set up: a passive one is already connected, an
/// active one is accepted once the server connects.
enum Data {
    Connected(ClientId),
    Active(SocketAddr),
}

fn prepare(h: &mut Harness, c: ClientId, mode: DataMode) -> Data {
    match mode {
        DataMode::Pasv => Data::Connected(h.pasv_connect(c)),
        DataMode::Epsv => Data::Connected(h.epsv_connect(c)),
        DataMode::Port | DataMode::Eprt => {
            let port = h.stack.ephemeral_port();
            let target = SocketAddr::new(IpAddr::V4(CLIENT_IP), port);
            h.stack.client_listen(target);
            let line = match mode {
                DataMode::Port => format!("PORT 10,0,0,2,{},{}", port >> 8, port & 0xff),
                _ => format!("EPRT |1|10.0.0.2|{port}|"),
            };
            assert_eq!(h.cmd(c, &line), "200 Command okay.\r\n", "{line}");
            Data::Active(target)
        }
    }
}

/// Sends `line` (a command that opens the data connection) and returns the
/// data connection and the control text so far.
fn start(h: &mut Harness, c: ClientId, data: Data, line: &str) -> (ClientId, String) {
    h.send(c, line);
    h.run();
    let text = h.recv(c);
    let d = match data {
        Data::Connected(d) => d,
        Data::Active(target) => h
            .stack
            .client_accept(target)
            .unwrap_or_else(|| panic!("{line}: the server did not connect")),
    };
    (d, text)
}

/// Runs a download or listing `line` over `mode`; returns data and control text.
fn fetch(h: &mut Harness, c: ClientId, mode: DataMode, line: &str) -> (Vec<u8>, String) {
    let data = prepare(h, c, mode);
    let (d, mut text) = start(h, c, data, line);
    let (bytes, rest) = h.drain_transfer(c, d);
    text.push_str(&rest);
    (bytes, text)
}

/// Runs an upload `line` sending `bytes` over `mode`; returns the control text.
fn put(h: &mut Harness, c: ClientId, mode: DataMode, line: &str, bytes: &[u8]) -> String {
    let data = prepare(h, c, mode);
    let (d, mut text) = start(h, c, data, line);
    text.push_str(&h.upload(c, d, bytes));
    text
}

const TRANSFER_OK: &str = "150 Opening data connection.\r\n226 Transfer complete.\r\n";

// --- Login, SYST, NOOP, FEAT -------------------------------------------------------

#[test]
fn login_syst_noop_quit() {
    let mut h = Harness::new();
    let c = h.connect();
    assert_eq!(h.recv(c), "220 Ferry FTP server ready.\r\n");
    assert_eq!(h.cmd(c, "SYST"), "215 UNIX Type: L8\r\n");
    assert_eq!(h.cmd(c, "NOOP"), "200 NOOP ok.\r\n");
    assert_eq!(h.cmd(c, "PASS p"), "503 Login with USER first.\r\n");
    assert_eq!(h.cmd(c, "USER u"), "331 Password required.\r\n");
    assert_eq!(h.cmd(c, "PASS p"), "230 Login successful.\r\n");
    assert_eq!(h.cmd(c, "PASS p"), "230 Already logged in.\r\n");
    assert_eq!(h.cmd(c, "SYST"), "215 UNIX Type: L8\r\n");
    assert_eq!(h.cmd(c, "NOOP"), "200 NOOP ok.\r\n");
    assert_eq!(h.cmd(c, "QUIT"), "221 Goodbye.\r\n");
    assert!(h.stack.server_closed(c));
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.stack.open_sockets(), 1, "only the control listener");
}

#[test]
fn emftp_commands_before_login_get_530() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.connect();
    h.recv(c);
    for line in [
        "PWD",
        "XPWD",
        "CWD /",
        "CDUP",
        "XCUP",
        "MKD d",
        "XMKD d",
        "RMD home",
        "XRMD home",
        "DELE f",
        "RNFR f",
        "RNTO g",
        "SIZE f",
        "TYPE A",
        "LIST",
        "NLST",
        "MLSD",
        "MLST f",
        "RETR f",
        "STOR g",
        "PORT 10,0,0,2,200,1",
        "PASV",
        "EPRT |1|10.0.0.2|51201|",
        "EPSV",
    ] {
        assert_eq!(h.cmd(c, line), LOGIN_FIRST, "{line}");
    }
    assert_eq!(h.stack.listening().len(), 1, "no passive listener opened");
    assert!(h.stack.connect_attempts.is_empty());
    assert_eq!(h.names(""), ["f", "home"], "nothing changed");
}

/// The FEAT reply this build must give: the default build's lines, less
/// those of the features left out, in the same order.
fn expected_feat(tls_available: bool) -> String {
    let mut s = String::from("211-Features:\r\n");
    if cfg!(feature = "tls") && tls_available {
        s.push_str(" AUTH TLS\r\n AUTH SSL\r\n PBSZ\r\n PROT\r\n");
    }
    if cfg!(feature = "compat") {
        s.push_str(" UTF8\r\n");
    }
    if cfg!(feature = "mtime") {
        s.push_str(" MLST type*;size*;modify*;perm*;UNIX.mode*;\r\n SIZE\r\n MDTM\r\n MFMT\r\n");
    } else {
        s.push_str(" MLST type*;size*;perm*;UNIX.mode*;\r\n SIZE\r\n");
    }
    if cfg!(feature = "resume") {
        s.push_str(" REST STREAM\r\n");
    }
    s.push_str(" EPRT\r\n EPSV\r\n TVFS\r\n211 End\r\n");
    s
}

#[test]
fn feat_lists_only_what_the_build_serves() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    let before = h.cmd(c, "FEAT");
    assert_eq!(before, expected_feat(false));
    let c = h.login();
    assert_eq!(h.cmd(c, "FEAT"), expected_feat(false));
    h.stack.tls_available = true;
    let feat = h.cmd(c, "FEAT");
    assert_eq!(feat, expected_feat(true));
    for (line, feature) in [
        (" UTF8\r\n", cfg!(feature = "compat")),
        (" MDTM\r\n", cfg!(feature = "mtime")),
        (" MFMT\r\n", cfg!(feature = "mtime")),
        ("modify*;", cfg!(feature = "mtime")),
        (" REST STREAM\r\n", cfg!(feature = "resume")),
        (" AUTH TLS\r\n", cfg!(feature = "tls")),
        (" SIZE\r\n", true),
        (" MLST type*;size*;", true),
        (" EPRT\r\n", true),
        (" EPSV\r\n", true),
        (" TVFS\r\n", true),
    ] {
        assert_eq!(feat.contains(line), feature, "{line:?} in {feat:?}");
    }
}

// --- Directories and files -----------------------------------------------------------

#[test]
fn directory_commands_and_their_aliases() {
    let mut h = Harness::new();
    let c = h.login();
    assert_eq!(h.cmd(c, "PWD"), "257 \"/\" is the current directory.\r\n");
    assert_eq!(h.cmd(c, "XPWD"), "257 \"/\" is the current directory.\r\n");
    assert_eq!(h.cmd(c, "MKD a"), "257 \"/a\" created.\r\n");
    assert_eq!(h.cmd(c, "XMKD a/b"), "257 \"/a/b\" created.\r\n");
    assert_eq!(h.cmd(c, "MKD a"), "550 File exists.\r\n");
    assert_eq!(h.cmd(c, "CWD a/b"), "250 Directory changed.\r\n");
    assert_eq!(
        h.cmd(c, "PWD"),
        "257 \"/a/b\" is the current directory.\r\n"
    );
    assert_eq!(h.cmd(c, "CDUP"), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(c, "XPWD"), "257 \"/a\" is the current directory.\r\n");
    assert_eq!(h.cmd(c, "XCUP"), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(c, "PWD"), "257 \"/\" is the current directory.\r\n");
    assert_eq!(
        h.cmd(c, "CWD nowhere"),
        "550 No such file or directory.\r\n"
    );
    assert_eq!(h.cmd(c, "RMD a"), "550 Directory not empty.\r\n");
    assert_eq!(
        h.cmd(c, "XRMD a/b"),
        "250 Requested file action okay, completed.\r\n"
    );
    assert_eq!(
        h.cmd(c, "RMD /a"),
        "250 Requested file action okay, completed.\r\n"
    );
    assert_eq!(h.names(""), ["home"]);
}

#[test]
fn dele_rename_and_size() {
    let mut h = Harness::new();
    h.write("f", b"0123456789");
    h.write("d/x", b"x");
    let c = h.login();
    assert_eq!(h.cmd(c, "SIZE f"), "213 10\r\n");
    assert_eq!(h.cmd(c, "SIZE d"), "550 Not a plain file.\r\n");
    assert_eq!(h.cmd(c, "SIZE nope"), "550 No such file or directory.\r\n");
    assert_eq!(h.cmd(c, "RNTO g"), "503 RNFR required first.\r\n");
    assert_eq!(h.cmd(c, "RNFR f"), "350 Ready for RNTO.\r\n");
    assert_eq!(h.cmd(c, "RNTO d/g"), "250 Rename successful.\r\n");
    assert_eq!(h.read("d/g"), b"0123456789");
    assert_eq!(h.cmd(c, "RNFR d"), "350 Ready for RNTO.\r\n");
    assert_eq!(h.cmd(c, "RNTO e"), "250 Rename successful.\r\n");
    assert_eq!(h.names("e"), ["g", "x"]);
    assert_eq!(h.cmd(c, "DELE e"), "550 Is a directory, use RMD.\r\n");
    assert_eq!(h.cmd(c, "DELE e/g"), "250 File deleted.\r\n");
    assert_eq!(h.cmd(c, "DELE e/g"), "550 No such file or directory.\r\n");
    assert_eq!(h.names("e"), ["x"]);
}

/// RETR of what cannot be sent: a directory, a missing file (550, also
/// before any PASV: the file is looked at first), and the data mode is
/// left as it was; then the file itself goes.
#[test]
fn retr_of_a_directory_or_a_missing_file_is_refused_first() {
    let mut h = Harness::new();
    h.write("f", b"0123456789");
    h.write("d/x", b"x");
    let c = h.login();
    assert_eq!(h.cmd(c, "RETR nope"), "550 No such file or directory.\r\n");
    assert_eq!(h.cmd(c, "RETR d"), "550 Not a plain file.\r\n");
    assert!(h.cmd(c, "RETR f").starts_with("425 "), "no data connection");
    let d = h.pasv_connect(c);
    assert_eq!(h.cmd(c, "RETR d"), "550 Not a plain file.\r\n");
    let reply = h.cmd(c, "RETR f");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(data, b"0123456789");
    assert_eq!(codes(&(reply + &text)), [150, 226]);
}

// --- Transfers ---------------------------------------------------------------------------

#[test]
fn retr_and_stor_in_every_data_mode_are_byte_exact() {
    let mut h = Harness::new();
    let content = Rng::new(42).bytes(5 * BUF + 3);
    h.write("f.bin", &content);
    let c = h.login();
    assert_eq!(h.cmd(c, "TYPE I"), "200 Type set to I.\r\n");
    for (i, mode) in MODES.into_iter().enumerate() {
        let (data, text) = fetch(&mut h, c, mode, "RETR f.bin");
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        assert!(data == content, "{mode:?}: download differs");

        let up = Rng::new(100 + i as u64).bytes(3 * BUF + i);
        let name = format!("up{i}.bin");
        let text = put(&mut h, c, mode, &format!("STOR {name}"), &up);
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        assert!(h.read(&name) == up, "{mode:?}: upload differs on disk");
        // STOR over an existing file replaces it.
        let text = put(&mut h, c, mode, &format!("STOR {name}"), b"short");
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        assert_eq!(h.read(&name), b"short", "{mode:?}");
    }
    assert_eq!(
        h.cmd(c, "RETR f.bin"),
        "425 Use PORT, EPRT, PASV or EPSV first.\r\n"
    );
    let _d = h.pasv_connect(c);
    assert_eq!(h.cmd(c, "RETR nope"), "550 No such file or directory.\r\n");
}

#[test]
fn type_a_converts_line_ends_only_with_the_ascii_feature() {
    let mut h = Harness::new();
    h.write("t.txt", b"one\ntwo\r\nthree\n");
    let c = h.login();
    assert_eq!(h.cmd(c, "TYPE A"), "200 Type set to A.\r\n");
    let (data, text) = fetch(&mut h, c, DataMode::Pasv, "RETR t.txt");
    assert_eq!(text, TRANSFER_OK);
    if cfg!(feature = "ascii") {
        assert_eq!(data, b"one\r\ntwo\r\nthree\r\n");
    } else {
        assert_eq!(data, b"one\ntwo\r\nthree\n", "binary without `ascii`");
    }
    let text = put(&mut h, c, DataMode::Epsv, "STOR u.txt", b"a\r\nb\r\n");
    assert_eq!(text, TRANSFER_OK);
    if cfg!(feature = "ascii") {
        assert_eq!(h.read("u.txt"), b"a\nb\n");
    } else {
        assert_eq!(h.read("u.txt"), b"a\r\nb\r\n", "binary without `ascii`");
    }
    assert_eq!(h.cmd(c, "TYPE I"), "200 Type set to I.\r\n");
    let (data, _) = fetch(&mut h, c, DataMode::Pasv, "RETR t.txt");
    assert_eq!(data, b"one\ntwo\r\nthree\n");
}

// --- Listings ------------------------------------------------------------------------

fn lines(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8(data.to_vec()).unwrap();
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    text.split_terminator("\r\n").map(str::to_owned).collect()
}

#[test]
fn list_nlst_mlsd_in_every_data_mode_and_mlst() {
    let mut h = Harness::new();
    h.write("f", b"0123456789");
    set_mtime(&h, "f", MTIME);
    let c = h.login();
    // LIST shows the file's date with `mtime`, the epoch's without.
    let date = if cfg!(feature = "mtime") {
        "Jun 15  2020"
    } else {
        "Jan  1  1970"
    };
    for mode in MODES {
        let (data, text) = fetch(&mut h, c, mode, "LIST");
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        let list = lines(&data);
        assert_eq!(list.len(), 2, "{mode:?}: {list:?}");
        let f = list.iter().find(|l| l.ends_with(" f")).unwrap();
        assert!(f.starts_with("-rw"), "{f:?}");
        assert!(f.ends_with(&format!(" 10 {date} f")), "{mode:?}: {f:?}");
        let home = list.iter().find(|l| l.ends_with(" home")).unwrap();
        assert!(home.starts_with("drwx"), "{home:?}");

        let (data, text) = fetch(&mut h, c, mode, "NLST");
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        let mut names = lines(&data);
        names.sort();
        assert_eq!(names, ["f", "home"], "{mode:?}");

        let (data, text) = fetch(&mut h, c, mode, "MLSD");
        assert_eq!(text, TRANSFER_OK, "{mode:?}");
        let mlsd = lines(&data);
        let f = mlsd.iter().find(|l| l.ends_with("; f")).unwrap();
        assert!(f.starts_with("type=file;size=10;"), "{f:?}");
        assert_eq!(
            f.contains(";modify=20200615120000;"),
            cfg!(feature = "mtime"),
            "{f:?}"
        );
        if !cfg!(feature = "mtime") {
            assert!(mlsd.iter().all(|l| !l.contains("modify=")), "{mlsd:?}");
        }
        assert!(mlsd
            .iter()
            .any(|l| l.starts_with("type=dir;") && l.ends_with("; home")));
    }
    // A listing of one file, and of a directory by name.
    let (data, _) = fetch(&mut h, c, DataMode::Pasv, "NLST home");
    assert_eq!(lines(&data), ["h"]);
    let (data, _) = fetch(&mut h, c, DataMode::Epsv, "LIST f");
    assert_eq!(lines(&data).len(), 1);

    let mlst = h.cmd(c, "MLST f");
    assert!(
        mlst.starts_with("250-Start of list\r\n type=file;size=10;"),
        "{mlst:?}"
    );
    assert!(mlst.ends_with("; /f\r\n250 End\r\n"), "{mlst:?}");
    assert_eq!(
        mlst.contains("modify=20200615120000;"),
        cfg!(feature = "mtime")
    );
    if !cfg!(feature = "mtime") {
        assert!(!mlst.contains("modify="), "{mlst:?}");
    }
    assert_eq!(h.cmd(c, "MLST nope"), "550 No such file or directory.\r\n");
}

// --- Commands outside the emftp set ------------------------------------------------------

/// What a command outside the emftp set answers when its feature is built.
enum Want {
    Exact(&'static str),
    /// The reply starts with the first text and ends with the second.
    Around(&'static str, &'static str),
}

impl Want {
    fn check(&self, line: &str, got: &str) {
        match *self {
            Want::Exact(w) => assert_eq!(got, w, "{line}"),
            Want::Around(head, tail) => assert!(
                got.starts_with(head) && got.ends_with(tail),
                "{line}: {got:?}"
            ),
        }
    }
}

/// One command outside the emftp set.
struct LeftOut {
    line: &'static str,
    /// Whether its feature is built.
    built: bool,
    /// Its reply when built, logged in as "u" (a file `f` exists).
    logged_in: Want,
    /// Its reply when built, before login.
    before_login: Want,
}

const STAT_HEAD: &str = "211-Ferry FTP server status:\r\n Connected from 10.0.0.2\r\n";
const STAT_TAIL: &str =
    " TYPE: BINARY, STRUcture: File, MODE: Stream\r\n No data connection\r\n211 End of status\r\n";
const HELP_HEAD: &str = "214-The following commands are recognized:\r\n";
const SITE_HELP: &str = "214-SITE commands:\r\n HELP\r\n CHMOD <mode> <path>\r\n214 End\r\n";
const NO_DATA: &str = "425 Use PORT, EPRT, PASV or EPSV first.\r\n";
const USE_AUTH: &str = "503 Use AUTH TLS first.\r\n";
const NO_TLS: &str = "502 TLS is not available on this server.\r\n";

fn left_out() -> Vec<LeftOut> {
    use Want::*;
    let row = |line, built, logged_in, before_login| LeftOut {
        line,
        built,
        logged_in,
        before_login,
    };
    vec![
        // resume
        row(
            "REST 5",
            cfg!(feature = "resume"),
            Exact("350 Restarting at 5. Send STOR or RETR.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "APPE f",
            cfg!(feature = "resume"),
            Exact(NO_DATA),
            Exact(LOGIN_FIRST),
        ),
        row(
            "STOU",
            cfg!(feature = "resume"),
            Exact(NO_DATA),
            Exact(LOGIN_FIRST),
        ),
        // mtime
        row(
            "MDTM f",
            cfg!(feature = "mtime"),
            Exact("213 20200615120000\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "MFMT 20210101000000 f",
            cfg!(feature = "mtime"),
            Exact("213 Modify=20210101000000; f\r\n"),
            Exact(LOGIN_FIRST),
        ),
        // status
        row(
            "STAT",
            cfg!(feature = "status"),
            Around(STAT_HEAD, STAT_TAIL),
            Around(STAT_HEAD, STAT_TAIL),
        ),
        row(
            "STAT f",
            cfg!(feature = "status"),
            Around("213-Status of file:\r\n -rw", " f\r\n213 End of status\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "STAT /",
            cfg!(feature = "status"),
            Around("212-Status of directory:\r\n", "212 End of status\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "HELP",
            cfg!(feature = "status"),
            Around(HELP_HEAD, "214 Help OK.\r\n"),
            Around(HELP_HEAD, "214 Help OK.\r\n"),
        ),
        row(
            "HELP RETR",
            cfg!(feature = "status"),
            Exact("214 Command is supported.\r\n"),
            Exact("214 Command is supported.\r\n"),
        ),
        row(
            "SITE HELP",
            cfg!(feature = "status"),
            Exact(SITE_HELP),
            Exact(LOGIN_FIRST),
        ),
        row(
            "SITE CHMOD 600 f",
            cfg!(feature = "status"),
            Exact("200 SITE CHMOD command successful.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        // compat
        row(
            "ABOR",
            cfg!(feature = "compat"),
            Exact("226 ABOR command successful.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "ACCT x",
            cfg!(feature = "compat"),
            Exact("202 ACCT not needed.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "ALLO 100",
            cfg!(feature = "compat"),
            Exact("202 ALLO not needed.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "MODE S",
            cfg!(feature = "compat"),
            Exact("200 Mode set to S.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "STRU F",
            cfg!(feature = "compat"),
            Exact("200 Structure set to F.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "REIN",
            cfg!(feature = "compat"),
            Exact("220 Ready for new user.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        row(
            "OPTS UTF8 ON",
            cfg!(feature = "compat"),
            Exact("200 UTF8 mode enabled.\r\n"),
            Exact("200 UTF8 mode enabled.\r\n"),
        ),
        row(
            "XCWD home",
            cfg!(feature = "compat"),
            Exact("250 Directory changed.\r\n"),
            Exact(LOGIN_FIRST),
        ),
        // tls (the security layer of these tests has no TLS)
        row(
            "AUTH TLS",
            cfg!(feature = "tls"),
            Exact(NO_TLS),
            Exact(NO_TLS),
        ),
        row(
            "PBSZ 0",
            cfg!(feature = "tls"),
            Exact(USE_AUTH),
            Exact(USE_AUTH),
        ),
        row(
            "PROT P",
            cfg!(feature = "tls"),
            Exact(USE_AUTH),
            Exact(USE_AUTH),
        ),
        row(
            "CCC",
            cfg!(feature = "tls"),
            Exact(USE_AUTH),
            Exact(USE_AUTH),
        ),
    ]
}

/// A fresh server with `f` (10 bytes, dated [`MTIME`]).
fn harness_with_f() -> Harness {
    let h = Harness::new();
    h.write("f", b"0123456789");
    set_mtime(&h, "f", MTIME);
    h
}

#[test]
fn left_out_commands_get_502_or_their_reply() {
    for row in left_out() {
        for logged_in in [true, false] {
            let mut h = harness_with_f();
            let c = if logged_in {
                h.login()
            } else {
                let c = h.connect();
                h.recv(c);
                c
            };
            let got = h.cmd(c, row.line);
            let ctx = format!("{} (logged in: {logged_in})", row.line);
            if row.built {
                let want = if logged_in {
                    &row.logged_in
                } else {
                    &row.before_login
                };
                want.check(&ctx, &got);
            } else {
                assert_eq!(got, NOT_IMPLEMENTED, "{ctx}");
                // Nothing happened: the file and the session are as before.
                assert_eq!(h.read("f"), b"0123456789", "{ctx}");
                assert_eq!(h.names(""), ["f", "home"], "{ctx}");
                let pwd = h.cmd(c, "PWD");
                if logged_in {
                    assert_eq!(pwd, "257 \"/\" is the current directory.\r\n", "{ctx}");
                } else {
                    assert_eq!(pwd, LOGIN_FIRST, "{ctx}");
                }
            }
            assert!(!h.stack.server_closed(c), "{ctx}");
        }
    }
}

/// With a TLS-capable security layer, the `tls` feature is what decides.
#[test]
fn auth_tls_needs_the_tls_feature() {
    let mut h = Harness::new();
    h.stack.tls_available = true;
    let c = h.connect();
    h.recv(c);
    let got = h.cmd(c, "AUTH TLS");
    if cfg!(feature = "tls") {
        assert_eq!(got, "234 AUTH TLS successful.\r\n");
        assert_eq!(h.stack.tls_log.len(), 1);
    } else {
        assert_eq!(got, NOT_IMPLEMENTED);
        assert!(h.stack.tls_log.is_empty(), "no TLS started");
        assert_eq!(h.cmd(c, "PBSZ 0"), NOT_IMPLEMENTED);
        assert_eq!(h.cmd(c, "PROT P"), NOT_IMPLEMENTED);
        assert_eq!(h.cmd(c, "CCC"), NOT_IMPLEMENTED);
    }
}

/// Without `resume`, REST does not change the next transfer, APPE does not
/// append and STOU stores nothing, and the prepared data connection is still
/// there for the next command.
#[test]
fn resume_commands_leave_no_trace_when_left_out() {
    let mut h = harness_with_f();
    let c = h.login();
    let d = h.pasv_connect(c);
    let rest = h.cmd(c, "REST 4");
    h.send(c, "RETR f");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(text, TRANSFER_OK);
    if cfg!(feature = "resume") {
        assert_eq!(rest, "350 Restarting at 4. Send STOR or RETR.\r\n");
        assert_eq!(data, b"456789");
    } else {
        assert_eq!(rest, NOT_IMPLEMENTED);
        assert_eq!(data, b"0123456789");
    }

    let d = h.pasv_connect(c);
    let appe = h.cmd(c, "APPE f");
    if cfg!(feature = "resume") {
        assert_eq!(appe, "150 Opening data connection.\r\n");
        assert_eq!(h.upload(c, d, b"ab"), "226 Transfer complete.\r\n");
        assert_eq!(h.read("f"), b"0123456789ab");
    } else {
        assert_eq!(appe, NOT_IMPLEMENTED);
        assert_eq!(h.cmd(c, "STOU"), NOT_IMPLEMENTED);
        // The data connection made for APPE serves the next STOR.
        h.send(c, "STOR g");
        h.run();
        assert_eq!(h.recv(c), "150 Opening data connection.\r\n");
        assert_eq!(h.upload(c, d, b"ab"), "226 Transfer complete.\r\n");
        assert_eq!(h.read("f"), b"0123456789");
        assert_eq!(h.read("g"), b"ab");
        assert_eq!(h.names(""), ["f", "g", "home"]);
    }
}

/// Without `compat`, REIN does not log out and ABOR does not drop a
/// prepared data connection.
#[test]
fn compat_commands_leave_no_trace_when_left_out() {
    let mut h = harness_with_f();
    let c = h.login();
    let d = h.pasv_connect(c);
    let abor = h.cmd(c, "ABOR");
    if cfg!(feature = "compat") {
        assert_eq!(abor, "226 ABOR command successful.\r\n");
        assert!(h.stack.server_closed(d), "ABOR closes the data connection");
    } else {
        assert_eq!(abor, NOT_IMPLEMENTED);
        h.send(c, "RETR f");
        let (data, text) = h.drain_transfer(c, d);
        assert_eq!(text, TRANSFER_OK);
        assert_eq!(data, b"0123456789");
    }
    let rein = h.cmd(c, "REIN");
    let pwd = h.cmd(c, "PWD");
    if cfg!(feature = "compat") {
        assert_eq!(rein, "220 Ready for new user.\r\n");
        assert_eq!(pwd, LOGIN_FIRST);
    } else {
        assert_eq!(rein, NOT_IMPLEMENTED);
        assert_eq!(pwd, "257 \"/\" is the current directory.\r\n");
    }
}

/// Verbs no Ferry build serves get 502 in every build.
#[test]
fn never_implemented_verbs_get_502() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    for line in ["SMNT x", "LPSV", "LANG EN"] {
        assert_eq!(h.cmd(c, line), NOT_IMPLEMENTED, "{line}");
    }
    let c = h.login();
    for line in ["SMNT x", "LPSV", "LANG EN"] {
        assert_eq!(h.cmd(c, line), NOT_IMPLEMENTED, "{line}");
    }
}

// --- Path capacity -----------------------------------------------------------------------

/// The longest path this build holds.
const PATH_LEN: usize = if cfg!(feature = "long-paths") {
    4096
} else if cfg!(feature = "paths-256") {
    256
} else {
    128
};

#[test]
fn path_capacity_follows_the_features() {
    assert_eq!(ferry_core::session::PATH_LEN, PATH_LEN);
    let mut h = Harness::new();
    let c = h.login();
    let name = |n: usize| "p".repeat(n);
    // "/" and 127 bytes: 128, held by every build.
    let at_128 = format!("/{}", name(127));
    assert_eq!(
        h.cmd(c, &format!("MKD {at_128}")),
        format!("257 \"{at_128}\" created.\r\n")
    );
    let over_128 = format!("/{}", name(128));
    let got = h.cmd(c, &format!("MKD {over_128}"));
    if PATH_LEN >= 256 {
        assert_eq!(got, format!("257 \"{over_128}\" created.\r\n"));
        let at_256 = format!("/{}", name(255));
        assert!(h.cmd(c, &format!("MKD {at_256}")).starts_with("257 "));
        let over_256 = format!("{at_128}/{}", name(128));
        let got = h.cmd(c, &format!("MKD {over_256}"));
        assert_eq!(got.starts_with("257 "), PATH_LEN > 256, "{got:?}");
        if PATH_LEN == 256 {
            assert_eq!(got, "553 Path too long.\r\n");
        }
    } else {
        assert_eq!(got, "553 Path too long.\r\n");
        assert_eq!(
            h.cmd(c, &format!("CWD {over_128}")),
            "553 Path too long.\r\n"
        );
    }
    assert_eq!(h.cmd(c, "NOOP"), "200 NOOP ok.\r\n");
}

// --- Security properties, in every build ------------------------------------------------

#[test]
fn port_and_eprt_refuse_a_bounce() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    h.stack.client_listen("10.9.9.9:50000".parse().unwrap());
    let other = "504 Data connections only to the client's own address.\r\n";
    let low = "504 Data connections to ports below 1024 are refused.\r\n";
    assert_eq!(h.cmd(c, "PORT 10,9,9,9,195,80"), other);
    assert_eq!(h.cmd(c, "EPRT |1|10.9.9.9|50000|"), other);
    assert_eq!(h.cmd(c, "PORT 10,0,0,2,0,21"), low);
    assert_eq!(h.cmd(c, "EPRT |1|10.0.0.2|1023|"), low);
    assert_eq!(h.cmd(c, "RETR f"), NO_DATA, "no data address was accepted");
    assert!(h.stack.connect_attempts.is_empty());
}

#[test]
fn a_passive_connection_from_another_ip_is_refused() {
    let mut h = Harness::new();
    h.write("f", b"mine");
    let c = h.login();
    let addr = h.pasv(c);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    let thief = h.data_connect(addr, IpAddr::V4(OTHER_IP));
    assert!(h.stack.server_closed(thief));
    assert!(h.stack.client_recv(thief).is_empty());
    let d = h.data_connect(addr, IpAddr::V4(CLIENT_IP));
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(data, b"mine");
    assert_eq!(text, "226 Transfer complete.\r\n");
}

#[test]
fn paths_cannot_climb_above_the_root_or_the_home() {
    let mut h = Harness::new();
    h.write("secret.txt", b"top secret");
    h.write("home/h/inside.txt", b"mine");
    let u = h.login();
    assert_eq!(h.cmd(u, "CWD ../../.."), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(u, "PWD"), "257 \"/\" is the current directory.\r\n");
    assert_eq!(
        h.cmd(u, "SIZE ../../etc/passwd"),
        "550 No such file or directory.\r\n"
    );

    let c = h.login_as("h");
    let root = "257 \"/\" is the current directory.\r\n";
    assert_eq!(h.cmd(c, "CWD ../../.."), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(c, "PWD"), root);
    assert_eq!(h.cmd(c, "CDUP"), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(c, "XCUP"), "250 Directory changed.\r\n");
    assert_eq!(h.cmd(c, "XPWD"), root);
    assert!(h.cmd(c, "CWD ../home").starts_with("550 "));
    assert!(h.cmd(c, "SIZE ../secret.txt").starts_with("550 "));
    assert!(h.cmd(c, "SIZE /../../secret.txt").starts_with("550 "));
    assert!(h.cmd(c, "DELE ../secret.txt").starts_with("550 "));
    assert!(h.cmd(c, "RNFR ../secret.txt").starts_with("550 "));
    assert_eq!(h.cmd(c, "SIZE inside.txt"), "213 4\r\n");
    let _d = h.pasv_connect(c);
    assert!(h.cmd(c, "RETR ../secret.txt").starts_with("550 "));
    let text = put(&mut h, c, DataMode::Epsv, "STOR ../../escape.txt", b"x");
    assert_eq!(text, TRANSFER_OK);
    assert_eq!(h.names(""), ["home", "secret.txt"]);
    assert_eq!(h.names("home/h"), ["escape.txt", "inside.txt"]);
    assert_eq!(h.read("secret.txt"), b"top secret");
}

#[test]
fn read_only_user_changes_nothing() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login_as("ro");
    let _d = h.pasv_connect(c);
    for line in [
        "STOR g",
        "DELE f",
        "MKD d",
        "XMKD d",
        "RNFR f",
        "RMD home",
        "XRMD home",
    ] {
        assert_eq!(h.cmd(c, line), "550 Permission denied.\r\n", "{line}");
    }
    assert_eq!(h.names(""), ["f", "home"]);
}

#[test]
fn session_limits_answer_421() {
    // Logged in: a full table of sessions that have not logged in makes
    // room instead (see the lockout tests).
    let mut h = Harness::with_config(config(|c| c.max_sessions = 2));
    let _a = h.login_from(Ipv4Addr::new(10, 0, 0, 2), "u", "p");
    let _b = h.login_from(Ipv4Addr::new(10, 0, 0, 3), "u", "p");
    let x = h.connect_from(Ipv4Addr::new(10, 0, 0, 4));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    assert!(h.stack.server_closed(x));
    assert_eq!(h.server.session_count(), 2);

    let mut h = Harness::with_config(config(|c| c.max_per_ip = 1));
    let a = h.connect();
    let b = h.connect();
    assert!(h.recv(a).starts_with("220 "));
    assert_eq!(h.recv(b), "421 Too many connections from your address.\r\n");
    assert!(h.stack.server_closed(b));

    // The session table itself (4 slots, and with the feature `scale`
    // the parked entries that idle sessions leave them for).
    #[cfg(not(feature = "scale"))]
    let capacity = 4;
    #[cfg(feature = "scale")]
    let capacity = 4 + PARKED as u8;
    let mut h = Harness::new();
    for i in 1..=capacity {
        let _ = h.login_from(Ipv4Addr::new(10, 0, 1, i), "u", "p");
    }
    let x = h.connect_from(Ipv4Addr::new(10, 0, 1, capacity + 1));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    assert_eq!(h.server.session_count(), usize::from(capacity));
}

#[test]
fn a_failed_login_is_answered_after_the_delay_and_three_close() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    for round in 1..=3 {
        assert_eq!(h.cmd(c, "USER u"), "331 Password required.\r\n");
        assert_eq!(
            h.cmd(c, "PASS wrong"),
            "",
            "round {round}: no reply at once"
        );
        h.advance(999);
        assert_eq!(h.recv(c), "", "round {round}: still inside the delay");
        h.advance(1);
        let r = h.recv(c);
        if round < 3 {
            assert_eq!(r, "530 Login incorrect.\r\n");
            assert!(!h.stack.server_closed(c));
        } else {
            assert_eq!(r, "530 Login incorrect. Too many failures, closing.\r\n");
            assert!(h.stack.server_closed(c));
        }
    }
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn idle_and_data_timeouts() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    let _ = h.pasv(c);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    h.advance(4_999);
    assert_eq!(h.recv(c), "");
    h.advance(2);
    assert_eq!(h.recv(c), "425 Can't open data connection.\r\n");
    h.advance(59_999);
    assert_eq!(h.recv(c), "");
    h.advance(2);
    assert_eq!(
        h.recv(c),
        "421 Idle timeout, closing control connection.\r\n"
    );
    assert!(h.stack.server_closed(c));
    assert_eq!(h.stack.open_sockets(), 1);
}
