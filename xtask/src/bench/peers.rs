//! How `cargo xtask bench` starts each server: ferryd, pyftpdlib, vsftpd
//! with a generated configuration, and pure-ftpd with a virtual user (the
//! plain rows and the FTPES rows share these); and which version each is.
//!
//! `sessions`: `Some(n)` configures the server to admit `n` sessions at
//! once in all and from one address (the idle-sessions workload opens
//! them all from 127.0.0.1); `None` leaves its defaults.
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{python_version, quiet, run_bounded};
use super::tls::PURE_FTPD_DIR;
use super::{Context, PASSWORD, QUICK_LIMIT, SERVER_LOG, USER, WORK_DIR};
use crate::cmd::find_program;

/// How a server is started and reached.
pub(super) struct Launch {
    pub(super) command: Command,
    pub(super) version: String,
    /// How it was configured, for the notes under the table.
    pub(super) setup: String,
    pub(super) user: String,
    pub(super) password: String,
    /// The server is the started process's child (vsftpd under
    /// `subreaper.py`).
    pub(super) wrapped: bool,
}

/// ferryd serving a directory to one user.
pub(super) fn ferryd_launch(
    context: &Context,
    dir: &Path,
    port: u16,
    passive: (u16, u16),
    sessions: Option<u32>,
) -> Result<Launch, String> {
    let root = make_root(dir)?;
    let version = quiet(Command::new(&context.ferryd).arg("--version"))
        .map_err(|e| format!("{} --version: {e}", context.ferryd.display()))?;
    let mut command = Command::new(&context.ferryd);
    command
        .arg("--root")
        .arg(&root)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .args(["--passive-ports", &format!("{}-{}", passive.0, passive.1)]);
    let limits = match sessions {
        Some(n) => {
            command.args(["--max-sessions", &n.to_string(), "--max-per-ip", "0"]);
            format!(" --max-sessions {n} --max-per-ip 0")
        }
        None => String::new(),
    };
    Ok(Launch {
        command,
        version: format!("{} (release build)", version.trim()),
        setup: format!(
            "`ferryd --root DIR --listen 127.0.0.1:PORT --user bench:bench \
             --passive-ports LO-HI{limits}`: a directory, one user with a plain password, \
             default logging (INFO: connections, logins and transfers, to a file)"
        ),
        user: USER.into(),
        password: PASSWORD.into(),
        wrapped: false,
    })
}

/// pyftpdlib's default server (`xtask/bench/pyftpdlib_server.py`).
pub(super) fn pyftpdlib_launch(
    context: &Context,
    dir: &Path,
    port: u16,
    passive: (u16, u16),
    sessions: u32,
) -> Result<Launch, String> {
    let version = quiet(
        Command::new(&context.python).args(["-c", "import pyftpdlib; print(pyftpdlib.__ver__)"]),
    )
    .map_err(|_| {
        "the Python package pyftpdlib is missing (run cargo xtask setup, or \
         pip install -r xtask/bench/requirements.txt)"
            .to_string()
    })?;
    let root = make_root(dir)?;
    let mut command = Command::new(&context.python);
    command
        .arg(context.root.join("xtask/bench/pyftpdlib_server.py"))
        .arg(&root)
        .arg(port.to_string())
        .arg(passive.0.to_string())
        .arg(passive.1.to_string())
        .args([USER, PASSWORD])
        .arg(sessions.to_string());
    Ok(Launch {
        command,
        version: format!(
            "pyftpdlib {} (Python {})",
            version.trim(),
            python_version(&context.python)
        ),
        setup: format!(
            "`xtask/bench/pyftpdlib_server.py`: the default `FTPServer` (one \
             process, asynchronous) and `FTPHandler` (sendfile for RETR), one user \
             with every permission, logging at INFO to a file as out of the box; \
             `max_cons` and `max_cons_per_ip` {sessions}, RLIMIT_NOFILE raised to its \
             hard limit"
        ),
        user: USER.into(),
        password: PASSWORD.into(),
        wrapped: false,
    })
}

/// vsftpd standalone with a generated configuration: anonymous login that
/// may upload and delete in `bench/`, which the `ftp` user owns (vsftpd
/// will not chroot into a root its user can write).
pub(super) fn vsftpd_launch(
    context: &Context,
    dir: &Path,
    port: u16,
    passive: (u16, u16),
    sessions: Option<u32>,
) -> Result<Launch, String> {
    let Some(vsftpd) = find_program("vsftpd").or_else(|| find_program("/usr/sbin/vsftpd")) else {
        return Err("vsftpd not found (Debian package vsftpd; run cargo xtask setup)".into());
    };
    if quiet(Command::new("id").arg("-u")).as_deref() != Ok("0") {
        return Err("vsftpd standalone needs root (chroot, privilege separation)".into());
    }
    if quiet(Command::new("id").args(["-u", "ftp"])).is_err() {
        return Err("no `ftp` user for vsftpd's anonymous sessions".into());
    }
    let version = vsftpd_version(&vsftpd, dir);
    let root = make_root(dir)?;
    quiet(Command::new("chown").arg("ftp").arg(root.join(WORK_DIR)))
        .map_err(|e| format!("chown ftp {WORK_DIR}: {e}"))?;
    let empty = dir.join("empty");
    fs::create_dir_all(&empty).map_err(|e| format!("cannot create {}: {e}", empty.display()))?;
    // Its log goes where its standard output goes: the one file the bench
    // shows when something fails.
    let mut config = vsftpd_config(&root, &empty, &dir.join(SERVER_LOG), port, passive);
    if let Some(n) = sessions {
        config += &format!("max_clients={n}\nmax_per_ip={n}\n");
    }
    let config_path = dir.join("vsftpd.conf");
    fs::write(&config_path, &config)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    // A session's unprivileged process can outlive its privileged parent;
    // it is then reparented and reaped elsewhere, and its CPU time never
    // reaches the listener's `cutime`. Under a subreaper, it reaches the
    // subreaper's.
    let mut command = Command::new(&context.python);
    command
        .arg(context.root.join("xtask/bench/subreaper.py"))
        .arg(vsftpd)
        .arg(&config_path);
    Ok(Launch {
        command,
        version,
        setup: format!(
            "standalone as root with a generated `vsftpd.conf`: {}; anonymous login \
             (no password asked), two processes per connection (its default privilege \
             separation), sendfile for RETR (its default); started under \
             `xtask/bench/subreaper.py`, a child subreaper, since a session's \
             unprivileged process can outlive its parent: its CPU time is counted \
             from the subreaper's `cutime`/`cstime`",
            settings_summary(&config)
        ),
        user: "anonymous".into(),
        password: PASSWORD.into(),
        wrapped: true,
    })
}

/// vsftpd's configuration (see `man vsftpd.conf`).
fn vsftpd_config(root: &Path, empty: &Path, log: &Path, port: u16, passive: (u16, u16)) -> String {
    format!(
        "listen=YES\n\
         listen_ipv6=NO\n\
         listen_address=127.0.0.1\n\
         listen_port={port}\n\
         background=NO\n\
         anonymous_enable=YES\n\
         local_enable=NO\n\
         no_anon_password=YES\n\
         anon_root={}\n\
         write_enable=YES\n\
         anon_upload_enable=YES\n\
         anon_other_write_enable=YES\n\
         anon_umask=022\n\
         pasv_enable=YES\n\
         pasv_min_port={}\n\
         pasv_max_port={}\n\
         seccomp_sandbox=NO\n\
         secure_chroot_dir={}\n\
         xferlog_enable=YES\n\
         vsftpd_log_file={}\n",
        root.display(),
        passive.0,
        passive.1,
        empty.display(),
        log.display()
    )
}

/// A configuration's settings on one line, the per-run values (paths,
/// ports) as placeholders.
fn settings_summary(config: &str) -> String {
    config
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let value = match key {
                "anon_root" => "ROOT",
                "secure_chroot_dir" => "EMPTY_DIR",
                "vsftpd_log_file" => "LOG",
                "listen_port" => "PORT",
                "pasv_min_port" => "LO",
                "pasv_max_port" => "HI",
                _ => value,
            };
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `vsftpd -v` writes its version to standard *input*; give it a file there.
fn vsftpd_version(vsftpd: &Path, dir: &Path) -> String {
    let path = dir.join("version");
    let from_program = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            run_bounded(
                Command::new(vsftpd).arg("-v"),
                Stdio::from(file),
                QUICK_LIMIT,
            )
        })
        .ok()
        .and_then(|_| fs::read_to_string(&path).ok())
        .and_then(|text| {
            text.split("version")
                .nth(1)
                .map(|v| format!("vsftpd {}", v.trim()))
        });
    let package = quiet(Command::new("dpkg-query").args(["-W", "-f=${Version}", "vsftpd"]));
    match (from_program, package) {
        (Some(program), Ok(package)) => format!("{program} (Debian {package})"),
        (Some(program), Err(_)) => program,
        (None, Ok(package)) => format!("vsftpd (Debian {package})"),
        (None, Err(_)) => "vsftpd (version unknown)".into(),
    }
}

/// pure-ftpd standalone with one virtual user (puredb) whose password is
/// hashed with SHA-512 crypt (`pure-pw` would hash it with Argon2id, which
/// takes seconds per login: the logins rows would measure the hash), and
/// with TLS (`-Y 1`: AUTH TLS accepted) when `tls` names a file holding the
/// key and then the certificate. Its binaries are found on `PATH` or in the
/// Debian package that `cargo xtask setup` unpacks (it conflicts with the
/// vsftpd package).
pub(super) fn pure_ftpd_launch(
    context: &Context,
    dir: &Path,
    port: u16,
    passive: (u16, u16),
    sessions: Option<u32>,
    tls: Option<&Path>,
) -> Result<Launch, String> {
    let unpacked = context.root.join(PURE_FTPD_DIR);
    let binary = find_program("pure-ftpd")
        .or_else(|| Some(unpacked.join("usr/sbin/pure-ftpd")).filter(|p| p.is_file()))
        .ok_or("pure-ftpd not found (cargo xtask setup unpacks Debian's package)")?;
    let pure_pw = find_program("pure-pw")
        .or_else(|| Some(unpacked.join("usr/bin/pure-pw")).filter(|p| p.is_file()))
        .ok_or("pure-pw not found (cargo xtask setup unpacks Debian's package)")?;
    if quiet(Command::new("id").arg("-u")).as_deref() != Ok("0") {
        return Err("pure-ftpd standalone needs root (chroot, privilege separation)".into());
    }
    let root = make_root(dir)?;
    // Its virtual user's uid (65534) must own what it writes to.
    quiet(
        Command::new("chown")
            .arg("-R")
            .arg("65534:65534")
            .arg(&root),
    )?;
    let hash = quiet(Command::new("openssl").args(["passwd", "-6", PASSWORD]))?;
    // name:hash:uid:gid:gecos:home/./ (chrooted) and 12 unused fields.
    let passwd = dir.join("pureftpd.passwd");
    fs::write(
        &passwd,
        format!(
            "{USER}:{hash}:65534:65534::{}/./::::::::::::\n",
            root.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", passwd.display()))?;
    let db = dir.join("pureftpd.pdb");
    quiet(
        Command::new(&pure_pw)
            .arg("mkdb")
            .arg(&db)
            .arg("-f")
            .arg(&passwd),
    )?;
    let mut command = Command::new(binary);
    command
        .arg("-l")
        .arg(format!("puredb:{}", db.display()))
        .args(["-E", "-H"])
        .args(["-S", &format!("127.0.0.1,{port}")])
        .args(["-p", &format!("{}:{}", passive.0, passive.1)]);
    let mut flags = String::from("-l puredb:DB -E -H -S 127.0.0.1,PORT -p LO:HI");
    if let Some(n) = sessions {
        command.args(["-c", &n.to_string(), "-C", &n.to_string()]);
        flags += &format!(" -c {n} -C {n}");
    }
    if let Some(both) = tls {
        command.args(["-Y", "1", "-2"]).arg(both);
        flags += " -Y 1 -2 CERT";
    }
    Ok(Launch {
        command,
        version: pure_ftpd_version(&unpacked),
        setup: format!(
            "standalone as root, `pure-ftpd {flags}`: one puredb virtual user with a \
             SHA-512-crypt password (pure-pw's Argon2id would make each login take \
             seconds), no anonymous login, no name lookups, one process per connection; \
             it admits at most half as many sessions as it has passive ports (the bench \
             gives each server {} ports)",
            u32::from(passive.1) - u32::from(passive.0) + 1
        ),
        user: USER.into(),
        password: PASSWORD.into(),
        wrapped: false,
    })
}

/// pure-ftpd's version: from the unpacked package's name, else unknown.
fn pure_ftpd_version(unpacked: &Path) -> String {
    fs::read_to_string(unpacked.join("VERSION"))
        .map(|v| format!("pure-ftpd {} (Debian, OpenSSL)", v.trim()))
        .unwrap_or_else(|_| "pure-ftpd (Debian, OpenSSL)".into())
}

/// `DIR/root/bench/`, made; the root.
fn make_root(dir: &Path) -> Result<PathBuf, String> {
    let root = dir.join("root");
    let work = root.join(WORK_DIR);
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsftpd_configuration() {
        let config = vsftpd_config(
            Path::new("/t/root"),
            Path::new("/t/empty"),
            Path::new("/t/log"),
            2121,
            (20_000, 20_999),
        );
        for line in [
            "listen=YES",
            "listen_port=2121",
            "anon_root=/t/root",
            "pasv_min_port=20000",
            "pasv_max_port=20999",
            "secure_chroot_dir=/t/empty",
            "background=NO",
        ] {
            assert!(config.lines().any(|l| l == line), "{line} missing");
        }
        let summary = settings_summary(&config);
        assert!(summary.starts_with("listen=YES listen_ipv6=NO "));
        assert!(summary.contains(" anon_root=ROOT "));
        assert!(summary.contains(" pasv_min_port=LO pasv_max_port=HI "));
        assert!(!summary.contains("/t/"));
    }
}
