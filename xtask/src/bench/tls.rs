//! The FTPES rows of `cargo xtask bench`: ferryd beside peers that speak TLS
//! through OpenSSL, pure-ftpd (`-Y 1`) and vsftpd (`ssl_enable=YES`), all on
//! one throwaway ECDSA P-256 certificate for 127.0.0.1 that every client
//! checks.
//!
//! - RETR and STOR of the bench's large file with `curl --ssl-reqd` (TLS on
//!   the control and the data connection): MiB/s of the data phase
//!   (curl's `time_total` less `time_pretransfer`: the login and the
//!   handshakes are the logins row's), the median of the runs. One RETR per
//!   server is written to disk and hashed; after every STOR the file on the
//!   server's disk must have the source's size and SHA-256.
//! - FTPS logins per second: fresh connections in turn, each AUTH TLS,
//!   USER/PASS, PWD, QUIT (`small_ops.py tls-connections`).
//!
//! Each run of each workload goes to every server in turn. Issue 11's goal:
//! ferryd at least 1.0x the best peer on each row; the table says how far.
//!
//! pure-ftpd is started as in the plain rows (`peers.rs`,
//! `pure_ftpd_launch`: a virtual user with a SHA-512-crypt password, the
//! binaries from Debian's package that `cargo xtask setup` unpacks into
//! [`PURE_FTPD_DIR`]), with `-Y 1 -2 CERT` added.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::peers::{ferryd_launch, pure_ftpd_launch, vsftpd_launch};
use super::process::{run_bounded, sha256, Server};
use super::report::median;
use super::{
    link_or_copy, Context, CURL_MAX_TIME, MIB, PASSWORD, RETR_NAME, SCRIPT_LIMIT, SERVER_LOG,
    TRANSFER_LIMIT, WORK_DIR,
};
use crate::cmd::{self, header};
use crate::Failure;

/// Passive ranges of the TLS servers: above the plain ones' (20000-29999),
/// below Linux's ephemeral range (32768 and up).
const PASSIVE_BASE: u16 = 30_000;
/// See [`PASSIVE_BASE`].
const PASSIVE_SPAN: u16 = 900;

/// Where `cargo xtask setup` unpacks pure-ftpd (relative to the repository).
pub const PURE_FTPD_DIR: &str = "target/peers/pure-ftpd";

/// The servers of the TLS rows, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Ferryd,
    PureFtpd,
    Vsftpd,
}

const PEERS: [Peer; 3] = [Peer::Ferryd, Peer::PureFtpd, Peer::Vsftpd];

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Ferryd => "ferryd",
            Peer::PureFtpd => "pure-ftpd",
            Peer::Vsftpd => "vsftpd",
        }
    }
}

/// One server of the TLS rows and its figures.
struct Contender {
    peer: Peer,
    version: String,
    server: Server,
    port: u16,
    user: String,
    password: String,
    /// The server's `bench/` directory on disk.
    served: PathBuf,
    scratch: PathBuf,
    retr: Vec<f64>,
    stor: Vec<f64>,
    logins: Vec<f64>,
    failed: Option<String>,
}

/// The certificate every server serves and every client checks.
struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    /// Key then certificate, in one file (pure-ftpd's `-2`).
    both: PathBuf,
}

/// Runs the TLS rows; the markdown table with its notes. Fails when ferryd
/// cannot run or loses a byte; a peer that cannot run is left out, loudly.
pub(super) fn run(context: &Context) -> Result<String, Failure> {
    header("bench: FTPES (TLS) rows");
    let dir = context.work.join("tls");
    fs::create_dir_all(&dir)
        .map_err(|e| Failure(format!("cannot create {}: {e}", dir.display())))?;
    let cert = make_certificate(&dir).map_err(Failure)?;
    let mut contenders = Vec::new();
    let mut skipped = Vec::new();
    for (index, peer) in PEERS.into_iter().enumerate() {
        match start(context, &dir, &cert, peer, index) {
            Ok(c) => contenders.push(c),
            Err(why) if peer == Peer::Ferryd => {
                return Err(Failure(format!("ferryd with TLS: {why}")))
            }
            Err(why) => {
                println!("\n!!!! SKIPPED {} (TLS): {why}\n", peer.name());
                skipped.push(format!("{}: {why}", peer.name()));
            }
        }
    }
    let sizes = context.sizes;
    // One checked download from each, to disk.
    for c in contenders.iter_mut() {
        let out = c.scratch.join("checked.bin");
        let checked = curl_transfer(c, &cert, Transfer::Retr(&out)).and_then(|_| {
            let sum = sha256(&out)?;
            let _ = fs::remove_file(&out);
            (sum == context.source.sha256)
                .then_some(())
                .ok_or_else(|| format!("RETR over TLS returned other bytes (sha256 {sum})"))
        });
        if let Err(why) = checked {
            c.failed = Some(why);
        }
    }
    for run in 0..sizes.runs {
        for c in contenders.iter_mut().filter(|c| c.failed.is_none()) {
            match curl_transfer(c, &cert, Transfer::Retr(Path::new("/dev/null"))) {
                Ok(rate) => c.retr.push(rate),
                Err(why) => c.failed = Some(why),
            }
        }
        for c in contenders.iter_mut().filter(|c| c.failed.is_none()) {
            let name = format!("tls-up-{run}.bin");
            let stored = curl_transfer(c, &cert, Transfer::Stor(&context.source.path, &name))
                .and_then(|rate| {
                    let on_disk = c.served.join(&name);
                    let size = fs::metadata(&on_disk).map(|m| m.len()).unwrap_or(0);
                    let sum = sha256(&on_disk)?;
                    let _ = fs::remove_file(&on_disk);
                    if size != context.source.bytes || sum != context.source.sha256 {
                        return Err(format!(
                            "STOR over TLS left {size} bytes with sha256 {sum} on the server's disk"
                        ));
                    }
                    Ok(rate)
                });
            match stored {
                Ok(rate) => c.stor.push(rate),
                Err(why) => c.failed = Some(why),
            }
        }
        for c in contenders.iter_mut().filter(|c| c.failed.is_none()) {
            match logins(context, c, &cert, sizes.connections / 2) {
                Ok(rate) => c.logins.push(rate),
                Err(why) => c.failed = Some(why),
            }
        }
    }
    for c in contenders.iter_mut() {
        c.server.stop();
    }
    for c in &contenders {
        println!(
            "{} (TLS): RETR {:?} STOR {:?} MiB/s, logins {:?}/s{}",
            c.peer.name(),
            c.retr,
            c.stor,
            c.logins,
            c.failed
                .as_ref()
                .map(|f| format!(", FAILED: {f}"))
                .unwrap_or_default()
        );
    }
    if let Some(why) = contenders
        .iter()
        .find(|c| c.peer == Peer::Ferryd)
        .and_then(|c| c.failed.clone())
    {
        return Err(Failure(format!("ferryd with TLS failed: {why}")));
    }
    Ok(render(&contenders, &skipped, sizes.file_mib))
}

/// Makes the throwaway certificate with `openssl`.
fn make_certificate(dir: &Path) -> Result<Certificate, String> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let mut openssl = Command::new("openssl");
    openssl
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert);
    run_bounded(&mut openssl, Stdio::null(), SCRIPT_LIMIT)
        .map_err(|e| format!("openssl (the certificate for the TLS rows): {e}"))?;
    let both = dir.join("both.pem");
    let text = [&key, &cert]
        .iter()
        .map(|p| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    fs::write(&both, text).map_err(|e| format!("{}: {e}", both.display()))?;
    Ok(Certificate { cert, key, both })
}

/// Prepares and starts one server with TLS.
fn start(
    context: &Context,
    dir: &Path,
    cert: &Certificate,
    peer: Peer,
    index: usize,
) -> Result<Contender, String> {
    let dir = dir.join(peer.name());
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let port = super::process::free_port().map_err(|e| format!("no free port: {e}"))?;
    let offset = PASSIVE_SPAN * u16::try_from(index).unwrap_or(0);
    let passive = (
        PASSIVE_BASE + offset,
        PASSIVE_BASE + offset + PASSIVE_SPAN - 1,
    );
    let (mut command, version, user, wrapped) = match peer {
        Peer::Ferryd => {
            let mut launch = ferryd_launch(context, &dir, port, passive, None)?;
            launch
                .command
                .arg("--tls-cert")
                .arg(&cert.cert)
                .arg("--tls-key")
                .arg(&cert.key);
            (launch.command, launch.version, launch.user, false)
        }
        Peer::Vsftpd => {
            let launch = vsftpd_launch(context, &dir, port, passive, None)?;
            let config = dir.join("vsftpd.conf");
            let mut text =
                fs::read_to_string(&config).map_err(|e| format!("{}: {e}", config.display()))?;
            text += &vsftpd_tls(cert);
            fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
            (launch.command, launch.version, launch.user, launch.wrapped)
        }
        Peer::PureFtpd => {
            let launch = pure_ftpd_launch(context, &dir, port, passive, None, Some(&cert.both))?;
            (launch.command, launch.version, launch.user, launch.wrapped)
        }
    };
    let served = dir.join("root").join(WORK_DIR);
    link_or_copy(&context.source.path, &served.join(RETR_NAME))
        .map_err(|e| format!("cannot place {RETR_NAME}: {e}"))?;
    let server = Server::start(&mut command, &dir.join(SERVER_LOG), port, wrapped)?;
    Ok(Contender {
        peer,
        version,
        server,
        port,
        password: match peer {
            Peer::Vsftpd => "anonymous@".into(),
            _ => PASSWORD.into(),
        },
        user,
        served,
        scratch: dir,
        retr: Vec::new(),
        stor: Vec::new(),
        logins: Vec::new(),
        failed: None,
    })
}

/// vsftpd's TLS settings, appended to the bench's configuration: TLS for
/// the anonymous user's logins and data, the certificate, no forced
/// session reuse (OpenSSL's check fails TLS 1.3 resumption by curl).
fn vsftpd_tls(cert: &Certificate) -> String {
    format!(
        "ssl_enable=YES\n\
         allow_anon_ssl=YES\n\
         force_anon_logins_ssl=YES\n\
         force_anon_data_ssl=YES\n\
         require_ssl_reuse=NO\n\
         ssl_ciphers=HIGH\n\
         rsa_cert_file={}\n\
         rsa_private_key_file={}\n",
        cert.cert.display(),
        cert.key.display()
    )
}

/// A transfer over TLS.
enum Transfer<'a> {
    /// RETR the bench's file into this path.
    Retr(&'a Path),
    /// STOR this file under this name.
    Stor(&'a Path, &'a str),
}

/// One curl transfer with TLS on both connections; MiB/s of its data phase.
fn curl_transfer(c: &Contender, cert: &Certificate, transfer: Transfer<'_>) -> Result<f64, String> {
    let mut curl = Command::new("curl");
    curl.args(["--disable", "--silent", "--show-error", "--ftp-pasv"])
        .args(["--ssl-reqd", "--cacert"])
        .arg(&cert.cert)
        .args(["--connect-timeout", "10", "--max-time", CURL_MAX_TIME])
        .args(["--user", &format!("{}:{}", c.user, c.password)]);
    let name = match transfer {
        Transfer::Retr(out) => {
            curl.arg("--output").arg(out).args([
                "--write-out",
                "%{size_download} %{time_pretransfer} %{time_total}",
            ]);
            RETR_NAME
        }
        Transfer::Stor(source, name) => {
            curl.arg("--upload-file").arg(source).args([
                "--write-out",
                "%{size_upload} %{time_pretransfer} %{time_total}",
            ]);
            name
        }
    };
    curl.arg(format!("ftp://127.0.0.1:{}/{WORK_DIR}/{name}", c.port));
    println!("$ {}", cmd::show(&curl));
    let out = run_bounded(&mut curl, Stdio::null(), TRANSFER_LIMIT)
        .map_err(|e| format!("{e}; server log: {}", c.server.log_tail()))?;
    let (bytes, seconds) = parse_timed(&out).ok_or_else(|| format!("curl printed {out:?}"))?;
    if bytes == 0 || seconds <= 0.0 {
        return Err(format!("curl moved {bytes} bytes in {seconds} s"));
    }
    Ok(bytes as f64 / MIB as f64 / seconds)
}

/// curl's `BYTES PRETRANSFER TOTAL`: (bytes, seconds of the data phase).
fn parse_timed(out: &str) -> Option<(u64, f64)> {
    let mut parts = out.split_whitespace();
    let bytes = parts.next()?.parse().ok()?;
    let pretransfer: f64 = parts.next()?.parse().ok()?;
    let total: f64 = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((bytes, total - pretransfer))
}

/// FTPS logins per second.
fn logins(context: &Context, c: &Contender, cert: &Certificate, count: u32) -> Result<f64, String> {
    let mut python = Command::new(&context.python);
    python
        .arg(context.root.join("xtask/bench/small_ops.py"))
        .args(["tls-connections", "127.0.0.1"])
        .arg(c.port.to_string())
        .args([&c.user, &c.password])
        .arg(&cert.cert)
        .arg(count.to_string());
    println!("$ {}", cmd::show(&python));
    let out = run_bounded(&mut python, Stdio::null(), SCRIPT_LIMIT)?;
    let (done, seconds) =
        super::parse_small_ops(&out).ok_or_else(|| format!("small_ops.py printed {out:?}"))?;
    if done != u64::from(count) || seconds <= 0.0 {
        return Err(format!("small_ops.py did {done} of {count} in {seconds} s"));
    }
    Ok(done as f64 / seconds)
}

/// Which figures of a server a row shows.
type Pick = fn(&Contender) -> &Vec<f64>;

/// The table: one column per server, one row per workload, and ferryd's
/// ratio to the best peer with the goal's verdict.
fn render(contenders: &[Contender], skipped: &[String], file_mib: u64) -> String {
    let rows: [(&str, Pick); 3] = [
        ("RETR over TLS, MiB/s", |c| &c.retr),
        ("STOR over TLS, MiB/s", |c| &c.stor),
        ("FTPS logins per second", |c| &c.logins),
    ];
    let mut out = format!(
        "FTPES (explicit TLS, `curl --ssl-reqd` and ftplib `FTP_TLS`), {file_mib} MiB file, \
         medians; MiB/s of the data phase (login and handshakes excluded: they are the \
         logins row's). Goal (issue 11): ferryd >= 1.0x the best peer.\n\n| workload |"
    );
    for c in contenders {
        out += &format!(" {} |", c.peer.name());
    }
    out += " ferryd / best peer |\n|---|";
    for _ in contenders {
        out += "---:|";
    }
    out += "---:|\n";
    for (title, pick) in rows {
        out += &format!("| {title} |");
        let mut ferryd = None;
        let mut best_peer: Option<f64> = None;
        for c in contenders {
            let value = median(pick(c)).filter(|_| c.failed.is_none());
            out += &match value {
                Some(v) => format!(" {v:.0} |"),
                None => " failed |".to_string(),
            };
            match (c.peer, value) {
                (Peer::Ferryd, v) => ferryd = v,
                (_, Some(v)) => best_peer = Some(best_peer.map_or(v, |b: f64| b.max(v))),
                _ => {}
            }
        }
        out += &match (ferryd, best_peer) {
            (Some(f), Some(b)) if b > 0.0 => {
                let ratio = f / b;
                let verdict = if ratio >= 1.0 { "met" } else { "NOT met" };
                format!(" {ratio:.2}x ({verdict}) |\n")
            }
            _ => " - |\n".to_string(),
        };
    }
    out += "\nServers (TLS): ";
    out += &contenders
        .iter()
        .map(|c| format!("{}: {}", c.peer.name(), c.version))
        .collect::<Vec<_>>()
        .join("; ");
    out += ". One ECDSA P-256 certificate for all, checked by the clients; ferryd: \
            `--tls-cert/--tls-key` (rustls with ring); pure-ftpd: `-Y 1 -2 CERT`, a puredb \
            virtual user with a SHA-512-crypt password; vsftpd: `ssl_enable=YES`, \
            anonymous over TLS, `require_ssl_reuse=NO`.\n";
    for s in skipped {
        out += &format!("\nLeft out: {s}.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_phase_leaves_the_login_out() {
        assert_eq!(parse_timed("1048576 0.25 1.25"), Some((1_048_576, 1.0)));
        assert_eq!(parse_timed("1 2"), None);
        assert_eq!(parse_timed("1 2 3 4"), None);
    }

    #[test]
    fn passive_ranges_stay_below_the_ephemeral_ports() {
        let servers = u32::try_from(PEERS.len()).unwrap();
        assert!(u32::from(PASSIVE_BASE) + servers * u32::from(PASSIVE_SPAN) <= 32_768);
    }
}
