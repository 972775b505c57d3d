//! Scripted sessions: the whole server over an in-memory stack, a virtual
//! clock and a temporary directory, with the test playing every client.
//! Each test drives one state transition deterministically.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferry_core::server::TransferKind;
use ferry_core::Config;
use support::*;

const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 6, 6);

fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config();
    f(&mut c);
    c
}

fn transfers(h: &Harness) -> Vec<(TransferKind, Vec<u8>, u64, bool)> {
    h.events()
        .iter()
        .filter_map(|e| match e {
            Ev::Transfer {
                kind,
                path,
                bytes,
                ok,
                ..
            } => Some((*kind, path.clone(), *bytes, *ok)),
            _ => None,
        })
        .collect()
}

fn has_temp(names: &[String]) -> bool {
    names.iter().any(|n| n.ends_with(".ferry-part"))
}

// --- Greeting and login ----------------------------------------------------

#[test]
fn greeting_is_220() {
    let mut h = Harness::new();
    let c = h.connect();
    assert_eq!(h.recv(c), "220 Ferry FTP server ready.\r\n");
    let peer = h.client_addr(c);
    assert_eq!(h.events(), [Ev::Connected { session: 0, peer }]);
    assert_eq!(h.server.session_count(), 1);
}

#[test]
fn user_pass_logs_in_and_the_password_is_not_logged() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    assert_eq!(h.cmd(c, "USER u"), "331 Password required.\r\n");
    assert_eq!(h.cmd(c, "PASS p"), "230 Login successful.\r\n");
    assert_eq!(h.cmd(c, "PWD"), "257 \"/\" is the current directory.\r\n");
    assert!(h.events().contains(&Ev::Login {
        session: 0,
        user: b"u".to_vec(),
        ok: true
    }));
    let lines: Vec<&[u8]> = h
        .events()
        .iter()
        .filter_map(|e| match e {
            Ev::Command { line, .. } => Some(line.as_slice()),
            _ => None,
        })
        .collect();
    assert_eq!(lines, [&b"USER u"[..], b"PASS ***", b"PWD"]);
    assert_eq!(h.auth.attempts, [(b"u".to_vec(), IpAddr::V4(CLIENT_IP))]);
}

#[test]
fn bad_password_answers_530_only_after_the_delay() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    let t0 = h.now();
    assert_eq!(h.cmd(c, "PASS wrong"), "", "no reply before the delay");
    assert_eq!(h.last_poll.unwrap().deadline, Some(t0.add_millis(1_000)));
    // Input waits during the delay: this NOOP is answered after the 530.
    h.send(c, "NOOP");
    h.run();
    assert_eq!(h.recv(c), "");
    h.advance(999);
    assert_eq!(h.recv(c), "", "still inside the delay");
    assert!(!h.events().iter().any(|e| matches!(e, Ev::Login { .. })));
    h.advance(1);
    assert_eq!(h.recv(c), "530 Login incorrect.\r\n200 NOOP ok.\r\n");
    assert!(h.events().contains(&Ev::Login {
        session: 0,
        user: b"u".to_vec(),
        ok: false
    }));
    // A second try works.
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert!(h.cmd(c, "PASS p").starts_with("230 "));
}

#[test]
fn three_failed_logins_close_the_connection() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    for round in 1..=3 {
        assert!(h.cmd(c, "USER u").starts_with("331 "), "round {round}");
        assert_eq!(h.cmd(c, "PASS nope"), "");
        h.advance(1_000);
        let r = h.recv(c);
        assert!(r.starts_with("530 "), "round {round}: {r:?}");
        assert_eq!(h.stack.server_closed(c), round == 3, "round {round}: {r:?}");
    }
    assert!(h.events().contains(&Ev::Disconnected { session: 0 }));
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(
        h.stack.open_sockets(),
        1,
        "only the control listener is left"
    );
}

#[cfg(feature = "resume")]
#[test]
fn commands_before_login_get_530() {
    let mut h = Harness::new();
    h.write("x", b"data");
    let c = h.connect();
    h.recv(c);
    for line in [
        "PWD",
        "CWD /",
        "LIST",
        "NLST",
        "RETR x",
        "STOR y",
        "MKD d",
        "DELE x",
        "RNFR x",
        "PASV",
        "EPSV",
        "PORT 10,0,0,2,200,1",
        "TYPE A",
        "SIZE x",
        "REST 5",
        "MLST x",
    ] {
        let r = h.cmd(c, line);
        assert!(r.starts_with("530 "), "{line}: {r:?}");
    }
    assert!(h.cmd(c, "SYST").starts_with("215 "));
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
    assert!(h.cmd(c, "FEAT").starts_with("211-"));
    assert!(
        h.stack.listening().len() == 1,
        "no passive listener was opened"
    );
    assert!(h.stack.connect_attempts.is_empty());
    assert_eq!(h.names(""), ["home", "x"], "nothing was changed");
    // USER, a refused command, then PASS still logs in.
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert!(h.cmd(c, "PWD").starts_with("530 "));
    assert!(h.cmd(c, "PASS p").starts_with("230 "));
}

#[test]
fn pass_without_user_is_503() {
    let mut h = Harness::new();
    let c = h.connect();
    h.recv(c);
    assert!(h.cmd(c, "PASS p").starts_with("503 "));
    assert!(h.auth.attempts.is_empty(), "no authentication attempted");
    assert!(h.cmd(c, "PWD").starts_with("530 "));
}

#[test]
fn rnto_without_rnfr_is_503() {
    let mut h = Harness::new();
    h.write("a", b"A");
    let c = h.login();
    assert!(h.cmd(c, "RNTO b").starts_with("503 "));
    assert!(h.cmd(c, "RNFR a").starts_with("350 "));
    assert!(h.cmd(c, "RNTO b").starts_with("250 "));
    assert_eq!(h.read("b"), b"A");
    // RNFR is used up by RNTO, and by any other command in between.
    assert!(h.cmd(c, "RNTO c").starts_with("503 "));
    assert!(h.cmd(c, "RNFR b").starts_with("350 "));
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
    assert!(h.cmd(c, "RNTO c").starts_with("503 "));
    assert_eq!(h.names(""), ["b", "home"]);
}

/// Engine bug: RNFR/RNTO reuse the buffer holding the user name, so STAT
/// afterwards reports the wrong user.
#[cfg(feature = "status")]
#[test]
fn stat_names_the_logged_in_user_after_a_rename() {
    let mut h = Harness::new();
    h.write("a", b"A");
    let c = h.login();
    assert!(h.cmd(c, "STAT").contains(" Logged in as u\r\n"));
    assert!(h.cmd(c, "RNFR a").starts_with("350 "));
    assert!(h.cmd(c, "RNTO b").starts_with("250 "));
    let stat = h.cmd(c, "STAT");
    assert!(
        stat.contains(" Logged in as u\r\n"),
        "STAT after a rename: {stat:?}"
    );
}

// --- Downloads ---------------------------------------------------------------

#[cfg(feature = "resume")]
#[test]
fn rest_then_retr_resumes_at_the_offset() {
    let mut h = Harness::new();
    let content = Rng::new(7).bytes(5_000);
    h.write("f.bin", &content);
    let c = h.login();
    let d = h.pasv_connect(c);
    assert_eq!(
        h.cmd(c, "REST 1234"),
        "350 Restarting at 1234. Send STOR or RETR.\r\n"
    );
    h.send(c, "RETR f.bin");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(codes(&text), [150, 226]);
    assert_eq!(data, content[1234..]);
    assert_eq!(
        transfers(&h),
        [(TransferKind::Download, b"/f.bin".to_vec(), 3766, true)]
    );

    // REST waits for the next transfer command, across PASV (as ftplib
    // sends it), and that transfer uses it up.
    assert!(h.cmd(c, "REST 10").starts_with("350 "));
    let d = h.pasv_connect(c);
    h.send(c, "RETR f.bin");
    let (data, _) = h.drain_transfer(c, d);
    assert_eq!(data, content[10..]);
    let d = h.pasv_connect(c);
    h.send(c, "RETR f.bin");
    let (data, _) = h.drain_transfer(c, d);
    assert_eq!(data, content);

    // An offset past the end is refused.
    let _d = h.pasv_connect(c);
    assert!(h.cmd(c, "REST 5001").starts_with("350 "));
    assert!(h.cmd(c, "RETR f.bin").starts_with("554 "));
}

fn download(
    h: &mut Harness,
    c: ClientId,
    name: &str,
    cap: Option<usize>,
) -> (Vec<u8>, String, ClientId) {
    let d = h.pasv_connect(c);
    h.stack.set_send_cap(d, cap);
    h.send(c, &format!("RETR {name}"));
    let (data, text) = h.drain_transfer(c, d);
    (data, text, d)
}

#[test]
fn retr_binary_with_partial_sends_is_byte_exact() {
    let mut h = Harness::new();
    let big = Rng::new(11).bytes(20_000);
    let small = Rng::new(12).bytes(3 * BUF + 17);
    h.write("big.bin", &big);
    h.write("small.bin", &small);
    let c = h.login();
    let (data, text, d) = download(&mut h, c, "big.bin", Some(100));
    assert_eq!(codes(&text), [150, 226]);
    assert!(data == big, "binary download differs");
    let conn = h.stack.connection(d);
    assert!(conn.partial_sends > 0 && conn.would_blocks > 0, "{conn:?}");
    for cap in [1, 7, 100, BUF - 1, BUF, BUF + 1, 5_000] {
        let (data, text, _) = download(&mut h, c, "small.bin", Some(cap));
        assert_eq!(codes(&text), [150, 226], "cap {cap}");
        assert!(data == small, "binary download with cap {cap} differs");
    }
}

/// A text file with lines of varying length, a CR LF straddling the first
/// 512-byte source chunk (TYPE A reads half the buffer), a lone CR, and
/// existing CR LFs.
#[cfg(feature = "ascii")]
fn text_file(lines: usize) -> Vec<u8> {
    let mut v = vec![b'x'; BUF / 2 - 1];
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(b"lone\rcr\n\n\r\n");
    for i in 0..lines {
        let len = (i * 37 + i / 3) % 97;
        v.extend((0..len).map(|k| b'a' + ((i + k) % 26) as u8));
        v.extend_from_slice(if i % 11 == 5 { b"\r\n" } else { b"\n" });
    }
    v
}

#[cfg(feature = "ascii")]
#[test]
fn retr_type_a_converts_lf_to_crlf_across_chunk_edges() {
    let mut h = Harness::new();
    let text = text_file(150);
    assert!(text.len() > 3 * BUF);
    h.write("t.txt", &text);
    let want = to_crlf(&text);
    let c = h.login();
    assert!(h.cmd(c, "TYPE A").starts_with("200 "));
    for cap in [
        None,
        Some(1),
        Some(2),
        Some(3),
        Some(7),
        Some(100),
        Some(511),
        Some(512),
        Some(513),
        Some(1000),
    ] {
        let (data, reply, d) = download(&mut h, c, "t.txt", cap);
        assert_eq!(codes(&reply), [150, 226], "cap {cap:?}");
        if let Some(first) = data.iter().zip(&want).position(|(a, b)| a != b) {
            panic!(
                "cap {cap:?}: differs at byte {first}: got {:?}, want {:?}",
                String::from_utf8_lossy(
                    &data[first.saturating_sub(8)..(first + 8).min(data.len())]
                ),
                String::from_utf8_lossy(
                    &want[first.saturating_sub(8)..(first + 8).min(want.len())]
                ),
            );
        }
        assert_eq!(data.len(), want.len(), "cap {cap:?}");
        if cap.is_some_and(|c| c < BUF) {
            assert!(
                h.stack.connection(d).partial_sends > 0,
                "cap {cap:?} exercised partial sends"
            );
        }
    }
}

#[test]
fn data_timeout_aborts_a_stalled_download() {
    let mut h = Harness::new();
    h.write("f", &vec![7u8; 10_000]);
    let c = h.login();
    let d = h.pasv_connect(c);
    h.stack.set_send_cap(d, Some(100));
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    h.advance(4_999);
    assert_eq!(h.recv(c), "");
    assert!(!h.stack.server_closed(d));
    h.advance(2);
    assert!(h.recv(c).starts_with("426 "));
    assert!(h.stack.server_closed(d));
    assert_eq!(
        transfers(&h),
        [(TransferKind::Download, b"/f".to_vec(), 100, false)]
    );
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
}

#[cfg(feature = "ascii")]
#[test]
fn two_sessions_download_at_once_through_the_shared_buffer() {
    let mut h = Harness::new();
    let bin = Rng::new(21).bytes(9_000);
    let text = text_file(100);
    h.write("bin", &bin);
    h.write("text", &text);
    let a = h.login();
    let b = h.login();
    assert!(h.cmd(b, "TYPE A").starts_with("200 "));
    let da = h.pasv_connect(a);
    let db = h.pasv_connect(b);
    h.stack.set_send_cap(da, Some(100));
    h.stack.set_send_cap(db, Some(77));
    h.send(a, "RETR bin");
    h.send(b, "RETR text");
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let (mut text_a, mut text_b) = (String::new(), String::new());
    for _ in 0..10_000 {
        h.run();
        got_a.extend(h.stack.client_recv(da));
        got_b.extend(h.stack.client_recv(db));
        text_a.push_str(&h.recv(a));
        text_b.push_str(&h.recv(b));
        if h.stack.client_eof(da) && h.stack.client_eof(db) {
            break;
        }
    }
    h.run();
    text_a.push_str(&h.recv(a));
    text_b.push_str(&h.recv(b));
    assert_eq!(codes(&text_a), [150, 226]);
    assert_eq!(codes(&text_b), [150, 226]);
    assert!(got_a == bin, "binary download differs");
    assert!(got_b == to_crlf(&text), "text download differs");
}

// --- Uploads -----------------------------------------------------------------

#[cfg(feature = "ascii")]
#[test]
fn stor_type_a_collapses_crlf_split_across_segments() {
    let mut h = Harness::new();
    let c = h.login();
    assert!(h.cmd(c, "TYPE A").starts_with("200 "));
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR t.txt").starts_with("150 "));
    for seg in [
        &b"one\r"[..],
        b"\ntwo\r",
        b"\n",
        b"three\r\r",
        b"\n",
        b"x\ry\r",
    ] {
        h.stack.client_send(d, seg);
        h.run();
        assert_eq!(h.stack.unread_by_server(d), 0);
    }
    h.stack.client_close(d);
    h.run();
    assert!(h.recv(c).starts_with("226 "));
    assert_eq!(h.read("t.txt"), b"one\ntwo\nthree\r\nx\ry\r");

    // A CR LF split by the server's own receive chunking (1023 bytes in TYPE A).
    let mut body = vec![b'a'; BUF - 2];
    body.extend_from_slice(b"\r\nb\r\n");
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR u.txt").starts_with("150 "));
    assert!(h.upload(c, d, &body).starts_with("226 "));
    let mut want = vec![b'a'; BUF - 2];
    want.extend_from_slice(b"\nb\n");
    assert_eq!(h.read("u.txt"), want);

    // TYPE I keeps every byte.
    assert!(h.cmd(c, "TYPE I").starts_with("200 "));
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR b.bin").starts_with("150 "));
    assert!(h.upload(c, d, b"a\r\nb\r").starts_with("226 "));
    assert_eq!(h.read("b.bin"), b"a\r\nb\r");
}

#[test]
fn stor_replaces_a_file_through_a_temporary_name() {
    let mut h = Harness::new();
    h.write("f.txt", b"old");
    let c = h.login();
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR f.txt").starts_with("150 "));
    h.stack.client_send(d, b"new ");
    h.run();
    assert_eq!(h.read("f.txt"), b"old", "target untouched while uploading");
    assert!(has_temp(&h.names("")), "{:?}", h.names(""));
    let r = h.upload(c, d, b"content");
    assert_eq!(r, "226 Transfer complete.\r\n");
    assert_eq!(h.read("f.txt"), b"new content");
    assert_eq!(h.names(""), ["f.txt", "home"]);
    assert_eq!(
        transfers(&h),
        [(TransferKind::Upload, b"/f.txt".to_vec(), 11, true)]
    );
}

#[test]
fn control_close_mid_upload_keeps_the_old_file_and_no_temp() {
    let mut h = Harness::new();
    h.write("keep.txt", b"old content");
    let c = h.login();
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR keep.txt").starts_with("150 "));
    h.stack.client_send(d, &[b'n'; 3000]);
    h.run();
    assert!(has_temp(&h.names("")), "the upload is in progress");
    h.stack.client_close(c);
    h.run();
    assert_eq!(h.read("keep.txt"), b"old content");
    assert_eq!(h.names(""), ["home", "keep.txt"]);
    assert!(
        h.stack.server_closed(d),
        "data connection closed with the session"
    );
    assert_eq!(
        transfers(&h),
        [(TransferKind::Upload, b"/keep.txt".to_vec(), 3000, false)]
    );
    assert!(h.events().contains(&Ev::Disconnected { session: 0 }));
    assert_eq!(h.stack.open_sockets(), 1);
}

#[cfg(feature = "resume")]
#[test]
fn read_only_user_cannot_change_anything() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login_as("ro");
    let _d = h.pasv_connect(c);
    for line in [
        "STOR g", "APPE f", "DELE f", "MKD d", "RNFR f", "RMD home", "STOU",
    ] {
        let r = h.cmd(c, line);
        assert!(r.starts_with("550 "), "{line}: {r:?}");
    }
    assert_eq!(h.names(""), ["f", "home"]);
    let d = h.pasv_connect(c);
    h.send(c, "RETR f");
    assert_eq!(h.drain_transfer(c, d).0, b"data");
}

// --- ABOR ----------------------------------------------------------------------

#[cfg(feature = "compat")]
fn start_stalled_download(h: &mut Harness) -> (ClientId, ClientId) {
    h.write("big", &vec![1u8; 50_000]);
    let c = h.login();
    let d = h.pasv_connect(c);
    h.stack.set_send_cap(d, Some(100));
    assert_eq!(h.cmd(c, "RETR big"), "150 Opening data connection.\r\n");
    assert_eq!(h.stack.client_recv(d).len(), 100);
    h.run();
    (c, d)
}

#[cfg(all(feature = "compat", feature = "status"))]
#[test]
fn abor_during_retr_gives_426_then_226() {
    let mut h = Harness::new();
    let (c, d) = start_stalled_download(&mut h);
    assert!(h.cmd(c, "STAT").contains("Data transfer in progress"));
    assert_eq!(
        h.cmd(c, "ABOR"),
        "426 Transfer aborted.\r\n226 ABOR command successful.\r\n"
    );
    assert!(h.stack.server_closed(d));
    assert_eq!(transfers(&h).len(), 1);
    assert!(!transfers(&h)[0].3);
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
    // A host keeps the passive listener a second for the next PASV.
    let kept = usize::from(cfg!(feature = "scale"));
    assert_eq!(
        h.stack.open_sockets(),
        2 + kept,
        "control listener and control connection"
    );
    h.advance(1_001);
    assert_eq!(h.stack.open_sockets(), 2);
}

#[cfg(feature = "compat")]
#[test]
fn telnet_ip_synch_before_abor_is_handled() {
    let mut h = Harness::new();
    let (c, d) = start_stalled_download(&mut h);
    // IAC IP, then IAC DM (Synch), split across segments, then ABOR.
    h.stack.client_send(c, b"\xff\xf4\xff");
    h.run();
    assert_eq!(h.recv(c), "");
    h.stack.client_send(c, b"\xf2ABOR\r\n");
    h.run();
    assert_eq!(
        h.recv(c),
        "426 Transfer aborted.\r\n226 ABOR command successful.\r\n"
    );
    assert!(h.stack.server_closed(d));
    assert!(h.cmd(c, "PWD").starts_with("257 "));
}

// --- Timeouts --------------------------------------------------------------------

#[test]
fn idle_timeout_closes_with_421() {
    let mut h = Harness::new();
    let c = h.login();
    let t0 = h.now();
    assert_eq!(h.last_poll.unwrap().deadline, Some(t0.add_millis(60_000)));
    h.advance(59_999);
    assert_eq!(h.recv(c), "");
    assert!(!h.stack.server_closed(c));
    h.advance(2);
    assert_eq!(
        h.recv(c),
        "421 Idle timeout, closing control connection.\r\n"
    );
    assert!(h.stack.server_closed(c));
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn activity_restarts_the_idle_timer() {
    let mut h = Harness::new();
    let c = h.login();
    for _ in 0..5 {
        h.advance(50_000);
        assert!(h.cmd(c, "NOOP").starts_with("200 "));
    }
    assert!(!h.stack.server_closed(c));
}

/// Runs a download with a 100-byte window, reading it every 2 s (less than
/// the 3 s data timeout); 4 000 bytes take 80 s, far past the 10 s idle
/// timeout. Returns the data and the control text.
fn slow_download(h: &mut Harness) -> (ClientId, Vec<u8>, String) {
    let content = Rng::new(3).bytes(4_000);
    h.write("slow.bin", &content);
    let c = h.login();
    let d = h.pasv_connect(c);
    h.stack.set_send_cap(d, Some(100));
    h.send(c, "RETR slow.bin");
    let start = h.now();
    let mut data = Vec::new();
    let mut text = String::new();
    for _ in 0..1_000 {
        h.run();
        text.push_str(&h.recv(c));
        data.extend(h.stack.client_recv(d));
        if h.stack.client_eof(d) {
            break;
        }
        assert!(
            !text.contains("421"),
            "idle timeout during a transfer: {text:?}"
        );
        h.clock.advance(2_000);
    }
    assert!(
        h.now().millis_since(start) > 60_000,
        "the download was slow"
    );
    assert_eq!(data, content);
    (c, data, text)
}

fn slow_config() -> Config {
    config(|c| {
        c.idle_timeout_ms = 10_000;
        c.data_timeout_ms = 3_000;
    })
}

#[test]
fn idle_timeout_is_paused_during_a_slow_download() {
    let mut h = Harness::with_config(slow_config());
    let (_, _, text) = slow_download(&mut h);
    assert_eq!(&codes(&text)[..2], [150, 226], "{text:?}");
}

/// Engine bug: the idle timer is not restarted when a transfer ends, so a
/// transfer longer than the idle timeout is followed at once by 421.
#[test]
fn idle_timer_restarts_after_a_long_transfer() {
    let mut h = Harness::with_config(slow_config());
    let (c, _, text) = slow_download(&mut h);
    assert_eq!(codes(&text), [150, 226], "nothing after 226: {text:?}");
    assert!(!h.stack.server_closed(c));
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
}

#[test]
fn data_timeout_without_data_connection_gives_425() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    let addr = h.pasv(c);
    assert!(h.stack.listening().contains(&addr));
    let t0 = h.now();
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    assert_eq!(h.last_poll.unwrap().deadline, Some(t0.add_millis(5_000)));
    h.advance(4_999);
    assert_eq!(h.recv(c), "");
    h.advance(2);
    assert_eq!(h.recv(c), "425 Can't open data connection.\r\n");
    assert!(
        !h.stack.listening().contains(&addr),
        "passive listener closed"
    );
    assert_eq!(
        transfers(&h),
        [(TransferKind::Download, b"/f".to_vec(), 0, false)]
    );
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
    assert_eq!(h.stack.open_sockets(), 2);
}

/// Engine bug: `Poll::deadline` is the last instant at which the timer has
/// *not* fired (the checks use `>`), so a driver that sleeps until the
/// deadline and polls finds nothing to do and gets the same deadline back.
#[test]
fn polling_at_the_deadline_fires_the_idle_timer() {
    let mut h = Harness::new();
    let c = h.login();
    let deadline = h.run().deadline.unwrap();
    h.clock.set(deadline);
    let p = h.run();
    assert_eq!(
        h.recv(c),
        "421 Idle timeout, closing control connection.\r\n",
        "next deadline {p:?}"
    );
}

/// Same off-by-one for the data timeout (see above).
#[test]
fn polling_at_the_deadline_fires_the_data_timer() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    let _ = h.pasv(c);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    let deadline = h.run().deadline.unwrap();
    h.clock.set(deadline);
    let p = h.run();
    assert_eq!(
        h.recv(c),
        "425 Can't open data connection.\r\n",
        "next deadline {p:?}"
    );
}

// --- Connection limits -------------------------------------------------------------

#[test]
fn max_sessions_refuses_the_third_client_with_421() {
    // Logged in: a full table of sessions that have not logged in makes
    // room instead (see the lockout tests).
    let mut h = Harness::with_config(config(|c| c.max_sessions = 2));
    let a = h.login_from(Ipv4Addr::new(10, 0, 0, 2), "u", "p");
    let _b = h.login_from(Ipv4Addr::new(10, 0, 0, 3), "u", "p");
    let x = h.connect_from(Ipv4Addr::new(10, 0, 0, 4));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    assert!(h.stack.server_closed(x));
    assert!(h.events().contains(&Ev::Refused {
        peer: h.client_addr(x)
    }));
    assert_eq!(h.server.session_count(), 2);
    // A slot frees up after QUIT.
    assert_eq!(h.cmd(a, "QUIT"), "221 Goodbye.\r\n");
    assert!(h.stack.server_closed(a));
    let y = h.connect_from(Ipv4Addr::new(10, 0, 0, 4));
    assert!(h.recv(y).starts_with("220 "));
    assert!(!h.stack.server_closed(y));
}

#[test]
fn max_per_ip_refuses_a_second_connection_from_one_address() {
    let mut h = Harness::with_config(config(|c| c.max_per_ip = 1));
    let a = h.connect();
    let b = h.connect();
    let other = h.connect_from(OTHER_IP);
    assert!(h.recv(a).starts_with("220 "));
    assert_eq!(h.recv(b), "421 Too many connections from your address.\r\n");
    assert!(h.stack.server_closed(b));
    assert!(h.recv(other).starts_with("220 "));
    assert_eq!(h.server.session_count(), 2);
}

// --- Logins checked in the background (issue 15) ------------------------------

/// A check that answers `Pending` does not hold up other sessions: while
/// it runs, others are served and the session itself reads no command;
/// its reply follows once the authenticator has the result.
#[test]
fn a_pending_login_check_does_not_stall_other_sessions() {
    let mut h = Harness::new();
    h.no_parking();
    let other = h.login();
    h.auth.slow = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(c, "PASS p"), "", "no reply while the check runs");
    assert_eq!(
        h.last_poll
            .unwrap()
            .deadline
            .map(|d| d.millis_since(h.now())),
        Some(10)
    );
    // Pipelined meanwhile: answered after the login.
    assert_eq!(h.cmd(c, "PWD"), "");
    assert!(
        h.cmd(other, "NOOP").starts_with("200 "),
        "others are served"
    );
    h.auth.finish_checks();
    h.advance(10);
    assert_eq!(
        h.recv(c),
        "230 Login successful.\r\n257 \"/\" is the current directory.\r\n"
    );
    assert!(h.events().contains(&Ev::Login {
        session: 1,
        user: b"u".to_vec(),
        ok: true
    }));
}

/// A check that takes longer than the failed-login delay is waited for.
#[test]
fn a_check_longer_than_the_login_delay_is_waited_for() {
    let mut h = Harness::new();
    h.auth.slow = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(c, "PASS p"), "");
    for _ in 0..50 {
        h.advance(100);
    }
    assert_eq!(h.recv(c), "", "still checking after 5 s");
    h.auth.finish_checks();
    h.advance(10);
    assert_eq!(h.recv(c), "230 Login successful.\r\n");
}

/// A failed check keeps its delay, counted from the PASS, and its count.
#[test]
fn a_pending_login_that_fails_answers_after_the_delay() {
    let mut h = Harness::new();
    h.auth.slow = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    for round in 1..=3 {
        assert!(h.cmd(c, "USER u").starts_with("331 "));
        assert_eq!(h.cmd(c, "PASS wrong"), "");
        h.advance(300);
        h.auth.finish_checks();
        h.advance(10);
        assert_eq!(h.recv(c), "", "round {round}: the delay runs from the PASS");
        h.advance(690);
        let want = if round < 3 {
            "530 Login incorrect.\r\n"
        } else {
            "530 Login incorrect. Too many failures, closing.\r\n"
        };
        assert_eq!(h.recv(c), want, "round {round}");
    }
    assert!(h.stack.server_closed(c));
    assert!(h.auth.pending.is_empty());
}

/// A session that ends while its check runs leaves nothing behind: the
/// next session in its slot logs in on its own check.
#[test]
fn a_session_that_ends_during_its_check_does_not_pass_it_on() {
    let mut h = Harness::new();
    h.auth.slow = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(c, "PASS p"), "");
    // Its input is not read while the check runs: the login timeout ends
    // it (the check never answers here).
    h.stack.client_close(c);
    h.advance(10_000);
    assert_eq!(h.server.session_count(), 0);
    let d = h.connect();
    assert!(h.recv(d).starts_with("220 "));
    assert!(h.cmd(d, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(d, "PASS wrong"), "");
    h.auth.finish_checks();
    h.advance(1_000);
    assert_eq!(h.recv(d), "530 Login incorrect.\r\n");
}

// --- Lockout resistance ---------------------------------------------------------

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, last)
}

#[test]
fn login_timeout_closes_a_session_that_does_not_log_in() {
    let mut h = Harness::with_config(config(|c| c.login_timeout_ms = 10_000));
    let t0 = h.now();
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert_eq!(h.last_poll.unwrap().deadline, Some(t0.add_millis(10_000)));
    // Commands do not extend it: USER again and again is still no login.
    h.advance(4_000);
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    h.advance(4_000);
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    h.advance(1_999);
    assert_eq!(h.recv(c), "");
    assert!(!h.stack.server_closed(c));
    h.advance(1);
    assert_eq!(
        h.recv(c),
        "421 Login timeout, closing control connection.\r\n"
    );
    assert!(h.stack.server_closed(c));
    assert_eq!(h.server.session_count(), 0);
}

#[test]
fn login_timeout_ends_with_the_login() {
    let mut h = Harness::with_config(config(|c| c.login_timeout_ms = 10_000));
    let c = h.login();
    h.advance(9_000);
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
    h.advance(20_000);
    assert!(
        h.cmd(c, "NOOP").starts_with("200 "),
        "only the idle timeout applies"
    );
}

#[cfg(feature = "compat")]
#[test]
fn rein_begins_a_new_login_timeout() {
    let mut h = Harness::with_config(config(|c| c.login_timeout_ms = 10_000));
    let c = h.login();
    h.advance(20_000);
    assert!(h.cmd(c, "REIN").starts_with("220 "));
    h.advance(9_999);
    assert_eq!(h.recv(c), "");
    h.advance(1);
    assert_eq!(
        h.recv(c),
        "421 Login timeout, closing control connection.\r\n"
    );
}

#[test]
fn login_timeout_zero_leaves_only_the_idle_timeout() {
    let mut h = Harness::with_config(config(|c| c.login_timeout_ms = 0));
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    h.advance(59_999);
    assert_eq!(h.recv(c), "");
    h.advance(1);
    assert_eq!(
        h.recv(c),
        "421 Idle timeout, closing control connection.\r\n"
    );
}

/// Four sessions (the table's size) that never log in: the next
/// connection takes the oldest one's slot; logged-in sessions stay.
#[test]
fn a_full_table_evicts_the_oldest_session_not_logged_in() {
    let mut h = Harness::new();
    h.no_parking();
    let user = h.login_from(ip(1), "u", "p");
    let old = h.connect_from(ip(2));
    h.advance(100);
    let mid = h.connect_from(ip(3));
    h.advance(100);
    let young = h.connect_from(ip(4));
    for c in [old, mid, young] {
        assert!(h.recv(c).starts_with("220 "));
    }
    h.advance(2_000);
    let new = h.connect_from(ip(5));
    assert!(h.recv(new).starts_with("220 "), "the new client is served");
    assert_eq!(
        h.recv(old),
        "421 Server full; closing a connection not logged in.\r\n"
    );
    assert!(h.stack.server_closed(old));
    assert!(h.events().contains(&Ev::Evicted { session: 1 }));
    for c in [user, mid, young, new] {
        assert!(!h.stack.server_closed(c));
    }
    assert!(h.cmd(user, "NOOP").starts_with("200 "));
    // Next in line: `mid`, then `young`; never the logged-in user.
    let next = h.connect_from(ip(6));
    assert!(h.recv(next).starts_with("220 "));
    assert!(h.stack.server_closed(mid));
    assert!(!h.stack.server_closed(young));
    let _ = h.connect_from(ip(7));
    assert!(h.stack.server_closed(young));
    assert!(h.cmd(user, "NOOP").starts_with("200 "));
    assert_eq!(h.server.session_count(), 4);
}

/// A flood from one address pushes out its own connections first: a
/// newcomer from another address keeps its slot while the flood keeps
/// reconnecting, and logs in.
#[test]
fn a_reconnecting_flood_evicts_its_own_connections_first() {
    let mut h = Harness::new();
    h.no_parking();
    let flood_ip = ip(66);
    let mut flood: Vec<_> = (0..4).map(|_| h.connect_from(flood_ip)).collect();
    h.advance(10);
    let newcomer = h.connect_from(ip(1));
    assert!(h.recv(newcomer).starts_with("220 "));
    assert!(h.stack.server_closed(flood[0]));
    // Every evicted flood connection comes back at once, 20 times over.
    for round in 0..20 {
        let gone: Vec<_> = flood
            .iter()
            .copied()
            .filter(|&c| h.stack.server_closed(c))
            .collect();
        assert_eq!(gone.len(), 1, "round {round}");
        flood.retain(|c| !gone.contains(c));
        h.advance(1);
        flood.push(h.connect_from(flood_ip));
    }
    assert!(!h.stack.server_closed(newcomer));
    assert!(h.cmd(newcomer, "USER u").starts_with("331 "));
    assert!(h.cmd(newcomer, "PASS p").starts_with("230 "));
}

/// `max_sessions` holds across engine instances: those the observer
/// reports elsewhere take their share of it (feature `scale`).
#[cfg(feature = "scale")]
#[test]
fn sessions_of_other_instances_count_against_the_limit() {
    let mut h = Harness::new();
    h.no_parking();
    h.obs.elsewhere = 3;
    let a = h.login_from(ip(1), "u", "p");
    let x = h.connect_from(ip(9));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    // One of the others left.
    h.obs.elsewhere = 2;
    let y = h.connect_from(ip(9));
    assert!(h.recv(y).starts_with("220 "));
    assert!(h.cmd(a, "NOOP").starts_with("200 "));
    // The highest slot in use bounds what poll visits; after the last
    // sessions leave, a newcomer takes the lowest slot again.
    h.obs.elsewhere = 0;
    assert!(h.cmd(y, "QUIT").starts_with("221 "));
    assert!(h.cmd(a, "QUIT").starts_with("221 "));
    h.advance(10);
    assert_eq!(h.server.session_count(), 0);
    let _z = h.connect_from(ip(3));
    assert!(matches!(
        h.obs.events.last(),
        Some(Ev::Connected { session: 0, .. })
    ));
}

/// A host's table that grows as sessions arrive (feature `scale`):
/// sessions elsewhere count against `max_sessions`, the table's length
/// bounds only what it can hold now, and slots added at its end serve the
/// next sessions.
#[cfg(feature = "scale")]
#[test]
fn a_grown_table_admits_up_to_max_sessions_less_those_elsewhere() {
    use ferry_core::{Server, Slot};
    use ferry_fs::std_dir::StdDir;
    type Grown = Server<MockStack, StdDir, 0, BUF, Vec<Slot<MockSocket, StdDir>>>;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut fs = StdDir::open(dir.path()).expect("StdDir");
    let mut stack = MockStack::new();
    let table = (0..2).map(|_| Slot::default()).collect();
    let mut server = Grown::with_table(config(|c| c.max_sessions = 6), table);
    server
        .listen(
            &mut stack,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CONTROL_PORT),
        )
        .expect("listen");
    let clock = VirtualClock::new();
    let mut auth = TestAuth::default();
    let mut obs = Recorder {
        elsewhere: 3,
        ..Recorder::default()
    };
    let mut run = |server: &mut Grown, stack: &mut MockStack| {
        for _ in 0..MAX_POLLS {
            if !server
                .poll(stack, &mut fs, &mut auth, &clock, &mut obs)
                .busy
            {
                return;
            }
        }
        panic!("still busy");
    };
    let mut login = |server: &mut Grown, stack: &mut MockStack, last: u8| {
        let port = stack.ephemeral_port();
        let id = stack.connect_client(server_addr(), SocketAddr::new(IpAddr::V4(ip(last)), port));
        run(server, stack);
        let greeting = String::from_utf8_lossy(&stack.client_recv(id)).into_owned();
        if greeting.starts_with("220 ") {
            for line in ["USER u\r\n", "PASS p\r\n"] {
                stack.client_send(id, line.as_bytes());
                run(server, stack);
            }
        }
        greeting
    };
    // Three sessions elsewhere leave 3 of 6; the table holds 2 now.
    assert!(login(&mut server, &mut stack, 1).starts_with("220 "));
    assert!(login(&mut server, &mut stack, 2).starts_with("220 "));
    assert_eq!(server.free_at_end(), 0);
    server.table_mut().extend((0..2).map(|_| Slot::default()));
    assert_eq!(server.free_at_end(), 2);
    assert!(login(&mut server, &mut stack, 3).starts_with("220 "));
    assert_eq!(server.session_count(), 3);
    // A free slot is left, but 3 here and 3 elsewhere make 6.
    assert_eq!(
        login(&mut server, &mut stack, 4),
        "421 Too many users, try again later.\r\n"
    );
    assert_eq!(server.free_at_end(), 1);
    assert_eq!(server.session_count(), 3);
}

#[test]
fn a_table_of_logged_in_sessions_refuses_with_421() {
    let mut h = Harness::new();
    h.no_parking();
    let users: Vec<_> = (1..=4).map(|i| h.login_from(ip(i), "u", "p")).collect();
    h.advance(5_000);
    let x = h.connect_from(ip(9));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    for u in users {
        assert!(h.cmd(u, "NOOP").starts_with("200 "));
    }
}

/// Ties on age: the session with most failed logins goes first; a
/// session waiting out its login-failure delay has not logged in.
#[test]
fn eviction_ties_go_to_the_session_with_most_failed_logins() {
    let mut h = Harness::with_config(config(|c| c.max_login_failures = 5));
    h.no_parking();
    let quiet = h
        .stack
        .connect_client(server_addr(), "10.0.1.1:40001".parse().unwrap());
    let guesser = h
        .stack
        .connect_client(server_addr(), "10.0.1.2:40002".parse().unwrap());
    let _ = h.login_from(ip(3), "u", "p");
    let _ = h.login_from(ip(4), "u", "p");
    for c in [quiet, guesser] {
        assert!(h.recv(c).starts_with("220 "));
    }
    assert!(h.cmd(guesser, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(guesser, "PASS wrong"), "", "530 waits for the delay");
    h.advance(1_000);
    assert_eq!(h.recv(guesser), "530 Login incorrect.\r\n");
    assert!(h.cmd(guesser, "USER u").starts_with("331 "));
    assert_eq!(h.cmd(guesser, "PASS wrong"), "");
    h.advance(500);
    let x = h.connect_from(ip(9));
    assert!(h.recv(x).starts_with("220 "));
    assert!(h.stack.server_closed(guesser), "mid-delay, most failures");
    assert!(!h.stack.server_closed(quiet));
}

/// Issue 15: a session that has answered QUIT no longer counts against
/// its address or the table, even while its 221 is still being sent.
#[test]
fn a_session_that_answered_quit_does_not_count_against_its_address() {
    let mut h = Harness::with_config(config(|c| {
        c.max_per_ip = 1;
        c.max_sessions = 1;
    }));
    let a = h.connect();
    assert!(h.recv(a).starts_with("220 "));
    h.stack.set_send_cap(a, Some(0));
    h.send(a, "QUIT");
    h.run();
    assert!(!h.stack.server_closed(a), "221 not sent yet");
    let b = h.connect();
    assert!(
        h.recv(b).starts_with("220 "),
        "the quitting session made room"
    );
    // The goodbye is still delivered.
    h.stack.set_send_cap(a, None);
    h.run();
    assert_eq!(h.recv(a), "221 Goodbye.\r\n");
    assert!(h.stack.server_closed(a));
    assert_eq!(h.server.session_count(), 1);
}

/// With every slot taken, one of them by a session flushing its goodbye,
/// a new connection takes that slot (the goodbye is sent as far as it can).
#[test]
fn a_full_table_reclaims_a_quitting_session_first() {
    let mut h = Harness::new();
    h.no_parking();
    let users: Vec<_> = (1..=3).map(|i| h.login_from(ip(i), "u", "p")).collect();
    let a = h.login_from(ip(4), "u", "p");
    h.stack.set_send_cap(a, Some(0));
    h.send(a, "QUIT");
    h.run();
    assert!(!h.stack.server_closed(a));
    let b = h.connect_from(ip(5));
    assert!(h.recv(b).starts_with("220 "));
    assert!(h.stack.server_closed(a));
    for u in users {
        assert!(h.cmd(u, "NOOP").starts_with("200 "));
    }
}

// --- Active mode ---------------------------------------------------------------------

#[test]
fn port_to_another_ip_is_refused_without_connecting() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    h.stack.client_listen("10.9.9.9:50000".parse().unwrap());
    assert_eq!(
        h.cmd(c, "PORT 10,9,9,9,195,80"),
        "504 Data connections only to the client's own address.\r\n"
    );
    assert!(h.cmd(c, "EPRT |1|10.9.9.9|50000|").starts_with("504 "));
    assert!(
        h.cmd(c, "RETR f").starts_with("425 "),
        "no data address was accepted"
    );
    assert!(h.stack.connect_attempts.is_empty());
}

#[test]
fn port_below_1024_is_refused() {
    let mut h = Harness::new();
    h.write("f", b"data");
    let c = h.login();
    assert_eq!(
        h.cmd(c, "PORT 10,0,0,2,0,21"),
        "504 Data connections to ports below 1024 are refused.\r\n"
    );
    assert!(h.cmd(c, "EPRT |1|10.0.0.2|1023|").starts_with("504 "));
    assert!(h.cmd(c, "RETR f").starts_with("425 "));
    assert!(h.stack.connect_attempts.is_empty());
}

#[test]
fn port_to_the_client_connects_actively() {
    let mut h = Harness::new();
    let content = Rng::new(5).bytes(3_000);
    h.write("f", &content);
    let c = h.login();
    let target: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    h.stack.client_listen(target);
    assert_eq!(h.cmd(c, "PORT 10,0,0,2,195,80"), "200 Command okay.\r\n");
    // The 226 may come with the 150 (a host sends a small file in the
    // pass that starts it).
    let first = h.cmd(c, "RETR f");
    let d = h.stack.client_accept(target).expect("server connected");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(data, content);
    assert_eq!(codes(&(first + &text)), [150, 226]);
    assert_eq!(h.stack.connect_attempts, [target]);
    // Nobody listening: 425 instead of a hang.
    assert!(h.cmd(c, "PORT 10,0,0,2,195,81").starts_with("200 "));
    let first = h.cmd(c, "RETR f");
    h.run();
    let text = first + &h.recv(c);
    assert_eq!(codes(&text), [150, 425]);
    assert!(text.ends_with("425 Can't open data connection.\r\n"));
    assert_eq!(h.stack.open_sockets(), 2);
}

// --- Passive mode ----------------------------------------------------------------------

#[test]
fn passive_connection_from_another_ip_is_refused() {
    let mut h = Harness::new();
    let content = Rng::new(9).bytes(2_000);
    h.write("f", &content);
    let c = h.login();
    let addr = h.pasv(c);
    assert_eq!(addr.ip(), IpAddr::V4(SERVER_IP));
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    let thief = h.data_connect(addr, IpAddr::V4(OTHER_IP));
    assert!(h.stack.server_closed(thief), "the thief is disconnected");
    assert!(h.stack.client_recv(thief).is_empty());
    assert_eq!(h.recv(c), "", "the transfer still waits");
    let d = h.data_connect(addr, IpAddr::V4(CLIENT_IP));
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(data, content);
    assert_eq!(codes(&text), [226]);
}

#[test]
fn pasv_skips_a_taken_port_and_epsv_works() {
    let mut h = Harness::new();
    h.write("f", b"epsv data");
    h.stack
        .occupy(SocketAddr::new(IpAddr::V4(SERVER_IP), 49152));
    let c = h.login();
    let addr = h.pasv(c);
    assert_eq!(addr, SocketAddr::new(IpAddr::V4(SERVER_IP), 49153));
    // A new PASV/EPSV replaces the old listener.
    let d = h.epsv_connect(c);
    assert!(!h.stack.listening().contains(&addr));
    h.send(c, "RETR f");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(data, b"epsv data");
    assert_eq!(codes(&text), [150, 226]);
}

// --- Control-line robustness ----------------------------------------------------------

#[test]
fn pipelined_commands_are_answered_in_order() {
    let mut h = Harness::new();
    let c = h.connect();
    h.stack
        .client_send(c, b"USER u\r\nPASS p\r\nPWD\r\nSYST\r\nNOOP\n");
    h.run();
    assert_eq!(codes(&h.recv(c)), [220, 331, 230, 257, 215, 200]);
}

/// Engine bug: end of stream on the control connection drops the session at
/// once, even with complete command lines still buffered, so commands a
/// client pipelined before half-closing are never carried out.
#[test]
fn commands_before_a_half_close_are_all_answered() {
    let mut h = Harness::new();
    h.write("a", b"A");
    let c = h.login();
    h.stack.client_send(c, b"NOOP\r\nDELE a\r\nPWD\r\nQUIT\r\n");
    h.stack.client_shutdown_write(c);
    h.run();
    let text = h.recv(c);
    assert_eq!(codes(&text), [200, 250, 257, 221], "{text:?}");
    assert!(h.stack.server_closed(c));
}

#[cfg(feature = "status")]
#[test]
fn replies_survive_partial_sends_on_control() {
    let mut h = Harness::new();
    let c = h.login();
    h.stack.set_send_cap(c, Some(5));
    h.send(c, "FEAT");
    h.send(c, "HELP");
    let mut text = Vec::new();
    for _ in 0..1_000 {
        h.run();
        text.extend(h.stack.client_recv(c));
        if text.ends_with(b"214 Help OK.\r\n") {
            break;
        }
    }
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("211-Features:\r\n"));
    assert_eq!(codes(&text), [211, 214]);
    assert!(h.stack.connection(c).partial_sends > 0);
}

/// The HELP reply of the full build, byte for byte as it was written by
/// hand before HELP was generated from the verb table.
#[cfg(all(
    feature = "status",
    feature = "resume",
    feature = "mtime",
    feature = "compat"
))]
#[test]
fn help_text_of_the_full_build_is_unchanged() {
    let mut h = Harness::new();
    let c = h.login();
    h.send(c, "HELP");
    h.run();
    assert_eq!(
        h.recv(c),
        "214-The following commands are recognized:\r\n \
         ABOR ACCT ALLO APPE CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MFMT\r\n \
         MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD QUIT REIN REST\r\n \
         RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER\r\n \
         XCUP XCWD XMKD XPWD XRMD\r\n\
         214 Help OK.\r\n"
    );
}

/// HELP VERB agrees with the list: 214 for each of the verbs HELP names
/// (in any case), 502 for the security verbs, unknown ones and aliases
/// it does not name.
#[cfg(feature = "status")]
#[test]
fn help_names_exactly_the_verbs_help_accepts() {
    let mut h = Harness::new();
    let c = h.login();
    h.send(c, "HELP");
    h.run();
    let text = h.recv(c);
    let words: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(' '))
        .flat_map(str::split_whitespace)
        .collect();
    assert!(words.len() >= 30, "{text:?}");
    for word in &words {
        for asked in [word.to_string(), word.to_ascii_lowercase()] {
            h.send(c, &format!("HELP {asked}"));
            h.run();
            assert_eq!(h.recv(c), "214 Command is supported.\r\n", "{asked}");
        }
    }
    for word in ["AUTH", "PBSZ", "PROT", "CCC", "SMNT", "FOO", "PWDX"] {
        assert!(!words.contains(&word), "{word}");
        h.send(c, &format!("HELP {word}"));
        h.run();
        assert_eq!(h.recv(c), "502 Unknown command.\r\n", "{word}");
    }
}

#[test]
fn a_reply_too_long_for_its_buffer_still_ends_its_line() {
    // Every `"` of a path is doubled in 257 (RFC 959), so a deep enough path
    // of quotes does not fit the reply buffer: the reply is cut, but its
    // line ends, and the next command is answered in step. Names of 60
    // bytes suit every storage; the path stays within PATH_LEN.
    use ferry_core::session::{PATH_LEN, REPLY_LEN};
    let levels = ((PATH_LEN - 2) / 61).min((REPLY_LEN / 2 + 20).div_ceil(60));
    // `257 "`, each level a `/` and 60 doubled quotes, `" created.` CR LF.
    assert!(
        5 + levels * 121 + 12 > REPLY_LEN,
        "the path cannot overflow the reply"
    );
    let mut h = Harness::new();
    let c = h.login();
    let mut path = String::new();
    for _ in 0..levels {
        path.push('/');
        path.push_str(&"\"".repeat(60));
        h.send(c, &format!("MKD {path}"));
        h.run();
        let text = h.recv(c);
        assert_eq!(codes(&text), [257], "{text:?}");
        assert!(text.ends_with("\r\n"), "{text:?}");
    }
    h.send(c, "NOOP");
    h.run();
    assert_eq!(h.recv(c), "200 NOOP ok.\r\n");
}

#[test]
fn over_long_line_gets_500_and_the_next_command_works() {
    let mut h = Harness::new();
    let c = h.login();
    let long = format!(
        "NOOP {}\r\nPWD\r\n",
        "x".repeat(ferry_core::session::LINE_LEN + 100)
    );
    h.stack.client_send(c, long.as_bytes());
    h.run();
    assert_eq!(codes(&h.recv(c)), [500, 257]);
    // Much longer, in pieces.
    for _ in 0..10 {
        h.stack
            .client_send(c, &[b'y'; ferry_core::session::LINE_LEN / 2 + 50]);
        h.run();
    }
    h.stack.client_send(c, b"\r\nSYST\r\n");
    h.run();
    assert_eq!(codes(&h.recv(c)), [500, 215], "one 500 per over-long line");
}

#[test]
fn binary_garbage_never_panics() {
    const VERBS: &[&str] = &[
        "ABOR", "ACCT", "ALLO", "APPE", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT", "HELP",
        "LIST", "MDTM", "MFMT", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASV",
        "PORT", "PWD", "REST", "RETR", "RMD", "RNFR", "RNTO", "SIZE", "STAT", "STOR", "STOU",
        "STRU", "SYST", "TYPE", "XCUP", "XMKD", "XPWD", "AUTH", "PBSZ", "PROT",
    ];
    const VALID: &[&str] = &[
        "NOOP",
        "PWD",
        "TYPE A",
        "TYPE I",
        "CWD /",
        "CDUP",
        "MKD fz",
        "CWD fz",
        "RMD /fz",
        "SIZE f",
        "MDTM f",
        "PASV",
        "EPSV",
        "LIST",
        "NLST",
        "MLSD",
        "REST 3",
        "RETR f",
        "STOR g",
        "ABOR",
        "STAT",
        "STAT /",
        "HELP",
        "FEAT",
        "MLST f",
        "OPTS UTF8 ON",
    ];
    let mut h = Harness::new();
    h.write("f", b"0123456789");
    let mut rng = Rng::new(0x5eed_f00d);
    let c = h.login();
    let mut replies = String::new();
    for batch in 0..60 {
        let mut bytes = Vec::new();
        for _ in 0..50 {
            match rng.below(10) {
                0..=3 => {
                    let n = rng.below(700);
                    bytes.extend(rng.bytes(n));
                }
                4..=7 => {
                    bytes.extend(VERBS[rng.below(VERBS.len())].as_bytes());
                    if rng.below(4) != 0 {
                        bytes.push(b' ');
                        let n = rng.below(300);
                        bytes.extend(rng.bytes(n).iter().map(|b| {
                            if rng.below(2) == 0 {
                                b' ' + b % 95
                            } else {
                                *b
                            }
                        }));
                    }
                }
                _ => bytes.extend(VALID[rng.below(VALID.len())].as_bytes()),
            }
            bytes.extend_from_slice(b"\r\n");
        }
        h.stack.client_send(c, &bytes);
        h.run();
        let text = h.recv(c);
        // Serve the last passive listener announced, if it still listens.
        let addr = text.split("\r\n").filter_map(parse_227).last();
        if let Some(addr) = addr.filter(|a| h.stack.listening().contains(a)) {
            let d = h.data_connect(addr, IpAddr::V4(CLIENT_IP));
            let n = rng.below(3_000);
            h.stack.client_send(d, &rng.bytes(n));
            h.run();
            h.stack.client_close(d);
        }
        replies.push_str(&text);
        h.advance(5_001);
        replies.push_str(&h.recv(c));
        assert!(
            !h.stack.server_closed(c),
            "batch {batch}: connection dropped"
        );
    }
    // Drain what is still queued, then the server must answer NOOP.
    h.send(c, "NOOP");
    let mut tail = String::new();
    for _ in 0..500 {
        h.advance(5_001);
        tail.push_str(&h.recv(c));
        if tail.ends_with("200 NOOP ok.\r\n") {
            break;
        }
    }
    assert!(tail.ends_with("200 NOOP ok.\r\n"), "{tail:?}");
    assert!(!h.stack.server_closed(c));
    replies.push_str(&tail);
    assert!(
        codes(&replies).len() > 1_000,
        "the server answered the lines"
    );
    // Any garbage uploads stayed inside the root, and no temp is left.
    assert!(!has_temp(&h.names("")));
}

// --- Listings ----------------------------------------------------------------------------

fn list(h: &mut Harness, c: ClientId, line: &str, cap: Option<usize>) -> (Vec<String>, String) {
    let d = h.pasv_connect(c);
    h.stack.set_send_cap(d, cap);
    h.send(c, line);
    let (data, text) = h.drain_transfer(c, d);
    let data = String::from_utf8(data).unwrap();
    assert!(
        data.is_empty() || data.ends_with("\r\n"),
        "{line}: incomplete last line"
    );
    let lines = data.split_terminator("\r\n").map(str::to_owned).collect();
    (lines, text)
}

#[test]
fn list_of_300_entries_arrives_complete_with_small_send_capacity() {
    let mut h = Harness::new();
    let mut want: Vec<String> = (0..300).map(|i| format!("entry_{i:03}.txt")).collect();
    for (i, name) in want.iter().enumerate() {
        h.write(&format!("many/{name}"), &vec![b'z'; i]);
    }
    want.sort();
    let c = h.login();
    assert!(h.cmd(c, "CWD many").starts_with("250 "));

    let (lines, text) = list(&mut h, c, "LIST", Some(37));
    assert_eq!(codes(&text), [150, 226]);
    assert_eq!(lines.len(), 300);
    let mut names: Vec<String> = Vec::new();
    for l in &lines {
        assert!(l.starts_with("-r"), "{l:?}");
        let name = l.rsplit(' ').next().unwrap().to_owned();
        let size: usize = name[6..9].parse().unwrap();
        assert!(l.contains(&format!(" {size} ")), "size column of {l:?}");
        names.push(name);
    }
    names.sort();
    assert_eq!(names, want);

    let (mut lines, _) = list(&mut h, c, "NLST", Some(13));
    lines.sort();
    assert_eq!(lines, want);

    let (lines, _) = list(&mut h, c, "MLSD", Some(50));
    assert_eq!(lines.len(), 300);
    let mut names: Vec<String> = lines
        .iter()
        .map(|l| {
            assert!(l.contains("type=file;"), "{l:?}");
            l.split_once("; ").unwrap().1.to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, want);
}

#[cfg(feature = "status")]
#[test]
fn upload_temp_files_are_hidden_from_listings() {
    let mut h = Harness::new();
    h.write("visible.txt", b"v");
    h.write("stray.txt.3.ferry-part", b"left over");
    // Replacing a file goes through a temporary name (a new file does not).
    h.write("new.bin", b"old");
    let up = h.login();
    let d = h.pasv_connect(up);
    assert!(h.cmd(up, "STOR new.bin").starts_with("150 "));
    h.stack.client_send(d, b"partial");
    h.run();
    let on_disk = h.names("");
    assert_eq!(
        on_disk
            .iter()
            .filter(|n| n.ends_with(".ferry-part"))
            .count(),
        2,
        "{on_disk:?}"
    );

    let c = h.login();
    let (mut nlst, _) = list(&mut h, c, "NLST", None);
    nlst.sort();
    assert_eq!(nlst, ["home", "new.bin", "visible.txt"]);
    for cmd in ["LIST", "MLSD"] {
        let (lines, _) = list(&mut h, c, cmd, Some(17));
        assert_eq!(lines.len(), 3, "{cmd}: {lines:?}");
        assert!(
            !lines.iter().any(|l| l.contains("ferry-part")),
            "{cmd}: {lines:?}"
        );
    }
    let stat = h.cmd(c, "STAT /");
    assert!(
        stat.starts_with("212-") && stat.contains("visible.txt"),
        "{stat:?}"
    );
    assert!(!stat.contains("ferry-part"), "{stat:?}");

    // Finishing the upload makes the file appear.
    h.stack.client_close(d);
    h.run();
    assert!(h.recv(up).starts_with("226 "));
    let (mut nlst, _) = list(&mut h, c, "NLST", None);
    nlst.sort();
    assert_eq!(nlst, ["home", "new.bin", "visible.txt"]);
}

/// Issue 15: a name with CR or LF, made outside FTP, must not forge a
/// reply on the control connection nor split a listing entry: it is left
/// out of every listing.
#[test]
fn names_with_cr_or_lf_are_left_out_of_listings() {
    let mut h = Harness::new();
    h.write("ok.txt", b"v");
    h.write("x\r\n230 INJECTED", b"1");
    h.write("y\n226 done", b"1");
    h.write("z\rw", b"1");
    let c = h.login();
    let (mut nlst, _) = list(&mut h, c, "NLST", None);
    nlst.sort();
    assert_eq!(nlst, ["home", "ok.txt"]);
    for cmd in ["LIST", "MLSD"] {
        let (lines, text) = list(&mut h, c, cmd, Some(7));
        assert_eq!(lines.len(), 2, "{cmd}: {lines:?}");
        assert_eq!(codes(&text), [150, 226], "{cmd}: {text:?}");
    }
    // STAT with a path is in the `status` feature.
    if cfg!(feature = "status") {
        let stat = h.cmd(c, "STAT /");
        let lines: Vec<&str> = stat.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 4, "{stat:?}");
        assert!(
            lines[0].starts_with("212-") && lines[3] == "212 End of status",
            "{stat:?}"
        );
        assert!(!stat.contains("INJECTED"), "{stat:?}");
    }
    assert!(h.cmd(c, "NOOP").starts_with("200 "), "still in step");
}

/// Issue 15: the upload temporaries an earlier run left are removed at
/// start, in every directory, and nothing else is.
#[test]
fn upload_leftovers_are_removed_at_start_and_nothing_else() {
    let mut h = Harness::new();
    let leftovers = [
        ".0.ferry-part",
        "a/.3.ferry-part",
        "a/.1.ferry-part",
        "a/b/.12.ferry-part",
        "a/b/c/.7.ferry-part",
        "m/.2.ferry-part",
        "z/deep/er/.5.ferry-part",
    ];
    let kept = [
        "keep.txt",
        "keep.ferry-part",
        ".x.ferry-part",
        "..ferry-part",
        "a/b/c/keep.txt",
        "a/b2/keep.txt",
        "m/n/keep.txt",
        "z/keep.txt",
    ];
    for name in leftovers.iter().chain(&kept) {
        h.write(name, b"x");
    }
    for d in ["e1", "e2", "a/e3"] {
        std::fs::create_dir_all(h.path(d)).unwrap();
    }
    let mut removed = Vec::new();
    let n = h.server.remove_upload_leftovers(&mut h.fs, |p| {
        removed.push(String::from_utf8(p.to_vec()).unwrap())
    });
    removed.sort();
    let mut want: Vec<String> = leftovers.iter().map(|l| format!("/{l}")).collect();
    want.sort();
    assert_eq!(removed, want);
    assert_eq!(n, leftovers.len());
    for name in leftovers {
        assert!(!h.path(name).exists(), "{name}");
    }
    for name in kept {
        assert!(h.path(name).exists(), "{name}");
    }
    // The server serves as before.
    let c = h.login();
    assert!(h.cmd(c, "NOOP").starts_with("200 "));
}

// --- Home directories ----------------------------------------------------------------------

#[test]
fn home_user_sees_root_and_cannot_escape() {
    let mut h = Harness::new();
    h.write("secret.txt", b"top secret");
    h.write("home/h/inside.txt", b"mine");
    let c = h.login_as("h");
    let pwd = "257 \"/\" is the current directory.\r\n";
    assert_eq!(h.cmd(c, "PWD"), pwd);
    assert!(h.cmd(c, "CWD ..").starts_with("250 "));
    assert_eq!(h.cmd(c, "PWD"), pwd);
    assert!(h.cmd(c, "CWD ../../..").starts_with("250 "));
    assert_eq!(h.cmd(c, "PWD"), pwd);
    assert!(h.cmd(c, "CDUP").starts_with("250 "));
    assert_eq!(h.cmd(c, "PWD"), pwd);
    assert!(
        h.cmd(c, "CWD ../home").starts_with("550 "),
        "no /home inside the home"
    );
    assert!(h.cmd(c, "SIZE ../secret.txt").starts_with("550 "));
    assert!(h.cmd(c, "SIZE /../../secret.txt").starts_with("550 "));
    assert_eq!(h.cmd(c, "SIZE inside.txt"), "213 4\r\n");
    let (mut names, _) = list(&mut h, c, "NLST ..", None);
    names.sort();
    assert_eq!(names, ["inside.txt"]);
    let _d = h.pasv_connect(c);
    assert!(h.cmd(c, "RETR ../secret.txt").starts_with("550 "));
    // Writes land inside the home.
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR ../../escape.txt").starts_with("150 "));
    assert!(h.upload(c, d, b"x").starts_with("226 "));
    assert_eq!(h.names(""), ["home", "secret.txt"]);
    assert_eq!(h.names("home/h"), ["escape.txt", "inside.txt"]);
    assert_eq!(h.read("secret.txt"), b"top secret");
}

// --- Lifecycle --------------------------------------------------------------------------------

#[cfg(feature = "compat")]
#[test]
fn quit_closes_and_every_socket_is_released() {
    let mut h = Harness::new();
    h.write("f", &vec![3u8; 10_000]);
    let a = h.login();
    let b = h.login();
    // a: an aborted download; b: a passive listener left open.
    let d = h.pasv_connect(a);
    h.stack.set_send_cap(d, Some(10));
    assert!(h.cmd(a, "RETR f").starts_with("150 "));
    let _ = h.pasv(b);
    // Control listener, two control connections, a's data connection (its
    // passive listener closed once the data connection was accepted, or
    // kept on a host), b's passive listener.
    let kept = usize::from(cfg!(feature = "scale"));
    assert_eq!(h.stack.open_sockets(), 1 + 2 + 1 + kept + 1);
    assert_eq!(codes(&h.cmd(a, "ABOR")), [426, 226]);
    assert_eq!(h.cmd(a, "QUIT"), "221 Goodbye.\r\n");
    assert_eq!(h.cmd(b, "QUIT"), "221 Goodbye.\r\n");
    assert!(h.stack.server_closed(a) && h.stack.server_closed(b));
    assert_eq!(h.server.session_count(), 0);
    assert_eq!(h.stack.open_sockets(), 1, "only the control listener");
    assert_eq!(
        h.events()
            .iter()
            .filter(|e| matches!(e, Ev::Disconnected { .. }))
            .count(),
        2
    );
}

#[test]
fn a_client_that_never_reads_the_goodbye_is_dropped_after_a_grace_time() {
    let mut h = Harness::new();
    let c = h.login();
    h.stack.set_send_cap(c, Some(4));
    h.send(c, "QUIT");
    h.run();
    h.advance(4_000);
    assert!(!h.stack.server_closed(c), "still flushing the goodbye");
    h.advance(1_002);
    assert!(h.stack.server_closed(c));
    assert_eq!(h.stack.client_recv(c), b"221 ");
    assert_eq!(h.stack.open_sockets(), 1);
}

#[test]
fn the_session_table_holds_n_sessions() {
    let mut h = Harness::new();
    h.no_parking();
    for i in 1..=4 {
        let _ = h.login_from(Ipv4Addr::new(10, 0, 1, i), "u", "p");
    }
    let x = h.connect_from(Ipv4Addr::new(10, 0, 1, 5));
    assert_eq!(h.recv(x), "421 Too many users, try again later.\r\n");
    assert_eq!(h.server.session_count(), 4);
}

#[test]
fn shutdown_says_421_and_releases_everything() {
    let mut h = Harness::new();
    h.write("f", b"old");
    let a = h.login();
    let b = h.login();
    let d = h.pasv_connect(a);
    assert!(h.cmd(a, "STOR f").starts_with("150 "));
    h.stack.client_send(d, b"half");
    h.run();
    assert!(has_temp(&h.names("")));
    h.server.shutdown(&mut h.stack, &mut h.fs);
    assert_eq!(codes(&h.recv(a)), [426, 421]);
    assert_eq!(codes(&h.recv(b)), [421]);
    assert!(h.stack.server_closed(a) && h.stack.server_closed(b) && h.stack.server_closed(d));
    assert_eq!(h.stack.open_sockets(), 0);
    assert_eq!(h.names(""), ["f", "home"]);
    assert_eq!(h.read("f"), b"old");
}

#[cfg(feature = "resume")]
#[test]
fn empty_files_append_and_restarted_uploads() {
    let mut h = Harness::new();
    h.write("empty", b"");
    let c = h.login();
    let d = h.pasv_connect(c);
    h.send(c, "RETR empty");
    let (data, text) = h.drain_transfer(c, d);
    assert!(data.is_empty());
    assert_eq!(codes(&text), [150, 226]);

    h.write("log", b"one\n");
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "APPE log").starts_with("150 "));
    assert!(h.upload(c, d, b"two\n").starts_with("226 "));
    assert_eq!(h.read("log"), b"one\ntwo\n");

    h.write("part", b"0123456789");
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "REST 4").starts_with("350 "));
    assert!(h.cmd(c, "STOR part").starts_with("150 "));
    assert!(h.upload(c, d, b"ab").starts_with("226 "));
    assert_eq!(h.read("part"), b"0123ab6789");

    let d = h.pasv_connect(c);
    let r = h.cmd(c, "STOU");
    assert!(r.starts_with("150 FILE: "), "{r:?}");
    let name = r.trim_end().strip_prefix("150 FILE: ").unwrap().to_owned();
    assert!(h.upload(c, d, b"unique").starts_with("226 "));
    assert_eq!(h.read(&name), b"unique");
    assert!(!has_temp(&h.names("")));
}

// --- FTPS (RFC 4217) through the security layer ---------------------------------------------

#[cfg(feature = "tls")]
#[test]
fn feat_lists_tls_only_when_the_layer_has_it() {
    let mut h = Harness::new();
    let c = h.login();
    assert!(!h.cmd(c, "FEAT").contains("AUTH TLS"));
    assert!(h.cmd(c, "AUTH TLS").starts_with("502 "));
    h.stack.tls_available = true;
    let feat = h.cmd(c, "FEAT");
    assert!(
        feat.contains("\r\n AUTH TLS\r\n") && feat.contains("\r\n PROT\r\n"),
        "{feat:?}"
    );
    assert!(feat.starts_with("211-") && feat.ends_with("211 End\r\n"));
}

#[cfg(feature = "tls")]
#[test]
fn auth_tls_starts_tls_after_the_reply_and_drops_clear_text_sent_behind_it() {
    let mut h = Harness::new();
    h.stack.tls_available = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert!(
        h.cmd(c, "PBSZ 0").starts_with("503 "),
        "PBSZ needs AUTH first"
    );
    // A command injected in clear text right behind AUTH must not run.
    h.stack.client_send(c, b"AUTH TLS\r\nDELE secret\r\n");
    h.run();
    assert_eq!(h.recv(c), "234 AUTH TLS successful.\r\n");
    assert_eq!(
        h.stack.tls_log.len(),
        1,
        "TLS started on the control connection"
    );
    assert_eq!(h.stack.tls_log[0].1, None);
    assert!(h.cmd(c, "AUTH TLS").starts_with("503 "));
    assert_eq!(h.cmd(c, "PBSZ 0"), "200 PBSZ=0\r\n");
    assert!(h.cmd(c, "PROT S").starts_with("536 "));
    assert!(h.cmd(c, "PROT X").starts_with("504 "));
    assert!(h.cmd(c, "PROT P").starts_with("200 "));
    assert!(h.cmd(c, "CCC").starts_with("534 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert!(h.cmd(c, "PASS p").starts_with("230 "));
    h.write("f", b"protected");
    let d = h.pasv_connect(c);
    h.send(c, "RETR f");
    let (data, text) = h.drain_transfer(c, d);
    assert_eq!(codes(&text), [150, 226]);
    assert_eq!(data, b"protected");
    let control = h.stack.tls_log[0].0;
    assert_eq!(h.stack.tls_log.len(), 2, "the data connection got TLS too");
    assert_eq!(
        h.stack.tls_log[1].1,
        Some(control),
        "resuming the control session"
    );
}

#[cfg(feature = "tls")]
#[test]
fn required_tls_refuses_clear_login_and_clear_data() {
    let mut h = Harness::with_config(config(|c| {
        c.require_tls_login = true;
        c.require_tls_data = true;
    }));
    h.stack.tls_available = true;
    let c = h.connect();
    assert!(h.recv(c).starts_with("220 "));
    assert!(h.cmd(c, "USER u").starts_with("530 "));
    assert!(h.cmd(c, "AUTH TLS").starts_with("234 "));
    assert!(h.cmd(c, "USER u").starts_with("331 "));
    assert!(h.cmd(c, "PASS p").starts_with("230 "));
    assert!(h.cmd(c, "PBSZ 0").starts_with("200 "));
    assert!(h.cmd(c, "PROT C").starts_with("534 "));
    h.write("f", b"x");
    let _ = h.pasv(c);
    assert!(h.cmd(c, "RETR f").starts_with("521 "));
    assert!(h.cmd(c, "PROT P").starts_with("200 "));
    let d = h.pasv_connect(c);
    h.send(c, "RETR f");
    let (data, _) = h.drain_transfer(c, d);
    assert_eq!(data, b"x");
}

#[cfg(feature = "resume")]
#[test]
fn a_new_file_is_written_in_place_and_a_cut_upload_can_be_resumed() {
    let mut h = Harness::new();
    let c = h.login();
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR fresh.bin").starts_with("150 "));
    h.stack.client_send(d, b"first half ");
    h.run();
    // The control connection goes away mid-upload: what arrived stays.
    h.stack.client_close(c);
    h.stack.client_close(d);
    h.run();
    assert_eq!(h.read("fresh.bin"), b"first half ");
    let c = h.login();
    assert!(h.cmd(c, "SIZE fresh.bin").starts_with("213 11"));
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "REST 11").starts_with("350 "));
    assert!(h.cmd(c, "STOR fresh.bin").starts_with("150 "));
    h.stack.client_send(d, b"second half");
    h.stack.client_close(d);
    h.run();
    assert!(h.recv(c).starts_with("226 "));
    assert_eq!(h.read("fresh.bin"), b"first half second half");
}

#[test]
fn eprt_with_an_unspecified_address_means_the_client_itself() {
    let mut h = Harness::new();
    let c = h.login();
    assert!(h.cmd(c, "EPRT |1|0.0.0.0|5000|").starts_with("200 "));
    assert!(h.cmd(c, "EPRT |1|10.9.9.9|5000|").starts_with("504 "));
}

// ---------------------------------------------------------------------------
// Parked sessions (feature `scale`): an idle logged-in session leaves the
// table for a small parked entry and comes back when it has something to do.
// ---------------------------------------------------------------------------

#[cfg(feature = "scale")]
fn parked_events(h: &Harness) -> (usize, usize) {
    let parked = h
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Parked { .. }))
        .count();
    let resumed = h
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Resumed { .. }))
        .count();
    (parked, resumed)
}

/// Its state survives the trip: working directory, type, login and
/// permissions; the table slot it leaves serves others meanwhile.
#[cfg(feature = "scale")]
#[test]
fn an_idle_session_is_parked_and_comes_back_with_its_state() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.dir.path().join("home/h/sub")).unwrap();
    let c = h.login_from(ip(1), "h", "p");
    assert_eq!(h.server.parked_count(), 1, "parked once logged in");
    assert!(h.cmd(c, "CWD sub").starts_with("250 "));
    assert!(h.cmd(c, "TYPE A").starts_with("200 "));
    assert_eq!(h.server.parked_count(), 1);
    // Four more sessions fill the table's four slots while it is parked.
    let others: Vec<_> = (2..=5).map(|i| h.login_from(ip(i), "u", "p")).collect();
    assert_eq!(h.server.session_count(), 5);
    assert_eq!(
        h.cmd(c, "PWD"),
        "257 \"/sub\" is the current directory.\r\n"
    );
    // The type is still ASCII: an ASCII upload turns CR LF into LF here.
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "STOR t.txt").starts_with("150 "));
    h.stack.client_send(d, b"a\r\nb\r\n");
    h.stack.client_close(d);
    h.run();
    assert!(h.recv(c).starts_with("226 "));
    // (Without the feature `ascii`, TYPE A is accepted and binary.)
    let stored: &[u8] = if cfg!(feature = "ascii") {
        b"a\nb\n"
    } else {
        b"a\r\nb\r\n"
    };
    assert_eq!(
        std::fs::read(h.dir.path().join("home/h/sub/t.txt")).unwrap(),
        stored
    );
    for o in others {
        assert!(h.cmd(o, "NOOP").starts_with("200 "));
    }
    let (parked, resumed) = parked_events(&h);
    assert!(
        parked >= 5 && resumed >= 4,
        "{parked} parked, {resumed} resumed"
    );
}

/// A command is answered before the pass pumps another session's
/// download, whatever their places in the table (hosts sweep the sessions
/// with no transfer first); the download still moves in that pass.
#[cfg(feature = "scale")]
#[test]
fn a_command_is_answered_before_the_pass_pumps_other_downloads() {
    let mut h = Harness::new();
    let content = Rng::new(21).bytes(200 * BUF);
    h.write("big.bin", &content);
    // `a` takes the first slot; `b` parks and comes back after it.
    let a = h.login_from(ip(1), "u", "p");
    let b = h.login_from(ip(2), "u", "p");
    let d = h.pasv_connect(a);
    h.send(a, "RETR big.bin");
    h.poll();
    assert!(h.stack.connection(d).sent_total > 0, "the download started");
    h.send(b, "NOOP");
    h.stack.send_log.clear();
    h.poll();
    let log = &h.stack.send_log;
    let reply = log.iter().position(|&c| c == b.0);
    let data = log.iter().position(|&c| c == d.0);
    assert!(
        matches!((reply, data), (Some(r), Some(p)) if r < p),
        "reply at {reply:?}, data at {data:?}: {log:?}"
    );
    assert!(h.recv(b).starts_with("200 "));
    let (got, text) = h.drain_transfer(a, d);
    assert_eq!(codes(&text), [150, 226]);
    assert!(got == content, "the download differs");
}

/// How long a host keeps a passive listener, and a millisecond more.
#[cfg(feature = "scale")]
const KEEP_LISTENER_MS: u64 = 1_001;

/// A host's session announces the same passive port for transfer after
/// transfer; once quiet for a while it closes that listener, and parks.
#[cfg(feature = "scale")]
#[test]
fn a_session_reuses_its_passive_listener_then_lets_it_go() {
    let mut h = Harness::new();
    let content = Rng::new(21).bytes(5_000);
    h.write("f", &content);
    let c = h.login();
    let first = h.pasv(c);
    for round in 0..3 {
        let addr = if round == 0 { first } else { h.pasv(c) };
        assert_eq!(addr, first, "round {round}");
        let d = h.data_connect(addr, h.client_addr(c).ip());
        let reply = h.cmd(c, "RETR f");
        let (data, text) = h.drain_transfer(c, d);
        assert_eq!(data, content, "round {round}");
        assert_eq!(codes(&(reply + &text)), [150, 226], "round {round}");
    }
    // Control listener, control connection, the kept passive listener.
    assert_eq!(h.stack.open_sockets(), 3);
    assert_eq!(
        h.server.parked_count(),
        0,
        "a session with a listener stays"
    );
    h.advance(KEEP_LISTENER_MS);
    assert_eq!(h.stack.open_sockets(), 2);
    assert_eq!(h.server.parked_count(), 1);
    // The next PASV opens a listener again.
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    assert_eq!(h.drain_transfer(c, d).0, content);
}

/// A connection that waited on a kept listener before the next PASV was not
/// made for that PASV's transfer: it is closed, not taken as its data
/// connection.
#[cfg(feature = "scale")]
#[test]
fn a_connection_waiting_on_a_kept_listener_is_not_the_next_transfers() {
    let mut h = Harness::new();
    let content = Rng::new(22).bytes(3_000);
    h.write("f", &content);
    let c = h.login();
    let d = h.pasv_connect(c);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    assert_eq!(h.drain_transfer(c, d).0, content);
    let port = h.stack.ephemeral_port();
    let ip = h.client_addr(c).ip();
    let control = server_addr().port();
    let addr = h
        .stack
        .listening()
        .into_iter()
        .find(|a| a.port() != control);
    let addr = addr.expect("the kept listener");
    let stray = h.stack.connect_client(addr, SocketAddr::new(ip, port));
    h.run();
    assert_eq!(h.pasv(c), addr);
    assert!(
        h.stack.server_closed(stray),
        "the stray connection is closed"
    );
    let d = h.data_connect(addr, ip);
    assert!(h.cmd(c, "RETR f").starts_with("150 "));
    assert_eq!(h.drain_transfer(c, d).0, content);
}

/// A parked session still times out, and one whose client leaves is closed.
#[cfg(feature = "scale")]
#[test]
fn a_parked_session_times_out_or_closes_with_its_client() {
    let mut h = Harness::new();
    let a = h.login_from(ip(1), "u", "p");
    let b = h.login_from(ip(2), "u", "p");
    assert_eq!(h.server.parked_count(), 2);
    h.stack.client_close(b);
    h.run();
    assert!(h.stack.server_closed(b));
    assert_eq!(h.server.session_count(), 1);
    // The idle timeout (60 s in the tests' configuration) ends the other;
    // the poll's deadline covers it, so a host that sleeps wakes for it.
    let poll = h.advance(59_000);
    assert!(poll.deadline.is_some());
    assert!(!h.stack.server_closed(a));
    h.advance(1_000);
    assert_eq!(
        h.recv(a),
        "421 Idle timeout, closing control connection.\r\n"
    );
    assert!(h.stack.server_closed(a));
    assert_eq!(h.server.session_count(), 0);
    let disconnected = h
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Disconnected { .. }))
        .count();
    assert_eq!(disconnected, 2);
}

/// Parked sessions count against `max_sessions` and `max_per_ip`, and a
/// shutdown says 421 to them too.
#[cfg(feature = "scale")]
#[test]
fn parked_sessions_count_against_the_limits_and_hear_the_shutdown() {
    let mut h = Harness::with_config(config(|c| {
        c.max_sessions = 3;
        c.max_per_ip = 2;
    }));
    let a = h.login_from(ip(1), "u", "p");
    let b = h.login_from(ip(1), "u", "p");
    assert_eq!(h.server.parked_count(), 2);
    let x = h.connect_from(ip(1));
    assert_eq!(h.recv(x), "421 Too many connections from your address.\r\n");
    let c = h.login_from(ip(2), "u", "p");
    let y = h.connect_from(ip(3));
    assert_eq!(h.recv(y), "421 Too many users, try again later.\r\n");
    h.server.shutdown(&mut h.stack, &mut h.fs);
    for s in [a, b, c] {
        assert_eq!(h.recv(s), "421 Server shutting down.\r\n");
        assert!(h.stack.server_closed(s));
    }
    assert_eq!(h.stack.open_sockets(), 0);
}

/// More logged-in sessions than the table has slots all get answers: each
/// comes back into a slot that another's parking freed.
#[cfg(feature = "scale")]
#[test]
fn more_idle_sessions_than_slots_are_all_served() {
    let mut h = Harness::new();
    let all: Vec<_> = (1..=12).map(|i| h.login_from(ip(i), "u", "p")).collect();
    assert_eq!(h.server.session_count(), 12);
    assert_eq!(h.server.parked_count(), 8);
    for round in 0..3 {
        for &c in &all {
            assert!(h.cmd(c, "NOOP").starts_with("200 "), "round {round}");
        }
    }
    // All at once: those that find no free slot wait for one.
    for &c in &all {
        h.send(c, "PWD");
    }
    h.run();
    for _ in 0..20 {
        h.advance(1);
    }
    for &c in &all {
        assert_eq!(h.recv(c), "257 \"/\" is the current directory.\r\n");
    }
}

/// A session in a working directory longer than a parked entry keeps,
/// or with half a command line received, stays in the table.
#[cfg(feature = "scale")]
#[test]
fn a_session_with_a_long_directory_or_half_a_line_stays_in_the_table() {
    use ferry_core::session::{PARKED_CWD_LEN, PATH_LEN};
    let mut h = Harness::new();
    let c = h.login_from(ip(1), "u", "p");
    assert_eq!(h.server.parked_count(), 1);
    h.stack.client_send(c, b"NO");
    h.run();
    assert_eq!(
        h.server.parked_count(),
        0,
        "half a line is held in the table"
    );
    assert_eq!(h.cmd(c, "OP"), "200 NOOP ok.\r\n");
    assert_eq!(h.server.parked_count(), 1);
    if PATH_LEN > PARKED_CWD_LEN + 40 {
        let deep = format!(
            "{}/{}",
            "d".repeat(PARKED_CWD_LEN / 2),
            "e".repeat(PARKED_CWD_LEN / 2)
        );
        std::fs::create_dir_all(h.dir.path().join(&deep)).unwrap();
        assert!(h.cmd(c, &format!("CWD /{deep}")).starts_with("250 "));
        assert_eq!(h.server.parked_count(), 0);
        assert_eq!(
            h.cmd(c, "PWD"),
            format!("257 \"/{deep}\" is the current directory.\r\n")
        );
        assert!(h.cmd(c, "CDUP").starts_with("250 "));
        assert_eq!(h.server.parked_count(), 1);
    }
}

/// Entries that sessions leave are taken again: the parked table does not
/// have to grow while sessions come and go.
#[cfg(feature = "scale")]
#[test]
fn parked_entries_left_by_sessions_are_taken_again() {
    let mut h = Harness::new();
    let all: Vec<_> = (1..=PARKED as u8)
        .map(|i| h.login_from(ip(i), "u", "p"))
        .collect();
    assert_eq!(h.server.parked_count(), PARKED);
    assert_eq!(h.server.free_parked_at_end(), 0);
    for &gone in [all[2], all[5]].iter() {
        h.stack.client_close(gone);
    }
    h.run();
    assert_eq!(h.server.session_count(), PARKED - 2);
    let _new: Vec<_> = (20..22).map(|i| h.login_from(ip(i), "u", "p")).collect();
    assert_eq!(
        h.server.parked_count(),
        PARKED,
        "the two new ones took the holes"
    );
    for &c in all.iter().filter(|&&c| c != all[2] && c != all[5]) {
        assert!(h.cmd(c, "NOOP").starts_with("200 "));
    }
    assert_eq!(h.server.parked_count(), PARKED);
}
