//! Command-line options of `ferryd`, and the parsers for their values.
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// Ferry's desktop FTP server.
///
/// With no options it serves `./ftp-root` (created if missing) on
/// 127.0.0.1:2121 to one user `ferry` whose password is made up at start and
/// printed. Options given here override those of `--config`.
#[derive(Debug, Parser)]
#[command(name = "ferryd", version)]
pub struct Cli {
    /// Directory to serve [default: ./ftp-root]; created if missing.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// What to serve: `dir` (the directory of --root, the default),
    /// `littlefs:IMAGE`, `fat:IMAGE` or `sdfat:IMAGE` (an image file, e.g. to
    /// prepare or inspect a flash or SD-card image; `sdfat` serves FAT
    /// through embedded-sdmmc, as boards do: 8.3 names, an MBR-partitioned
    /// image, FAT16 when created). A missing image is created with
    /// --fs-size and formatted.
    #[arg(
        long,
        value_name = "dir|littlefs:IMAGE|fat:IMAGE|sdfat:IMAGE",
        conflicts_with = "root"
    )]
    pub fs: Option<FsSpec>,

    /// Size of an image that --fs creates, e.g. 16M (littlefs: a power of
    /// two from 64K to 1G); given for an existing image, it must match.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub fs_size: Option<u64>,

    /// Address to listen on, e.g. 0.0.0.0:21 or [::1]:2121; repeatable
    /// [default: 127.0.0.1:2121].
    #[arg(long = "listen", value_name = "ADDR:PORT")]
    pub listen: Vec<SocketAddr>,

    /// A user who may log in, with a plain password (split at the first ':',
    /// so the password may hold ':'); repeatable. Home is `/` unless the
    /// config file gives this user one.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    pub users: Vec<UserArg>,

    /// Allow `anonymous` and `ftp` to log in with any password, read-only.
    #[arg(long)]
    pub anonymous: bool,

    /// Refuse every change (uploads, deletes, renames, mkdir) for all users.
    #[arg(long)]
    pub read_only: bool,

    /// Ports for passive data connections, inclusive [default: 49152-65534].
    #[arg(long, value_name = "LO-HI", value_parser = parse_port_range)]
    pub passive_ports: Option<PortRange>,

    /// Address announced in PASV replies instead of the local one (for NAT).
    #[arg(long, value_name = "IP")]
    pub passive_address: Option<IpAddr>,

    /// Most concurrent sessions; more get 421 [default: 64, at most 65535].
    /// A busy session takes a slot of about 18 KB in its worker's table,
    /// which grows as needed; an idle logged-in one is parked in a few
    /// hundred bytes.
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// Engine instances, one thread each, sharing the listeners and the
    /// limits; a client address is always served by the same one [default:
    /// the number of cores on Linux serving a directory, else 1].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,

    /// After its last event, a worker polls this many microseconds without
    /// sleeping before it sleeps (0 = sleep at once) [default: 50]: the
    /// next command of a busy client is answered sooner, for some CPU time.
    #[arg(long, value_name = "USECS")]
    pub busy_poll: Option<u64>,

    /// Most concurrent sessions from one IP address (0 = no limit)
    /// [default: 8].
    #[arg(long, value_name = "N")]
    pub max_per_ip: Option<u16>,

    /// Close control connections idle this many seconds [default: 300].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,

    /// Close a connection that has not logged in this many seconds after it
    /// connected (0 = only the idle timeout) [default: 30]. With every
    /// session taken, a new connection also evicts the oldest one that has
    /// not logged in, so idle connections cannot lock users out.
    #[arg(long, value_name = "SECS")]
    pub login_timeout: Option<u32>,

    /// TLS certificate chain (PEM, leaf first) for FTPS: AUTH TLS on every
    /// listener, and --implicit-listen. Needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Make a throwaway self-signed certificate at start (a quick start; its
    /// SHA-256 fingerprint is printed for clients to check).
    #[arg(long)]
    pub tls_self_signed: bool,

    /// Address for implicit FTPS (TLS from the first byte, port 990 by
    /// convention), e.g. 0.0.0.0:990; repeatable. Needs a certificate.
    #[arg(long = "implicit-listen", value_name = "ADDR:PORT")]
    pub implicit_listen: Vec<SocketAddr>,

    /// Refuse logins (530) and data transfers (521) that TLS does not
    /// protect: AUTH TLS before USER, PROT P before transfers. Needs a
    /// certificate.
    #[arg(long)]
    pub require_tls: bool,

    /// Data connections must resume the control connection's TLS session,
    /// so nobody else can take one over (lftp, curl and FileZilla do;
    /// Python's ftplib does not). Needs a certificate.
    #[arg(long)]
    pub tls_require_reuse: bool,

    /// TOML file with the same settings and `[[user]]` tables.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Read a password from stdin, print its argon2 hash for a config
    /// file's `password_hash`, and exit.
    #[arg(long, exclusive = true)]
    pub hash_password: bool,
}

/// A password in clear text; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A `--user NAME:PASSWORD` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserArg {
    /// The login name.
    pub name: String,
    /// The plain password.
    pub password: Password,
}

/// An inclusive range of TCP ports, `lo <= hi`, neither 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

/// The storage named by `--fs` (or `fs` in the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsSpec {
    /// The host directory given by `--root`.
    Dir,
    /// A littlefs image file.
    LittleFs(PathBuf),
    /// A FAT image file, served through `fatfs` (long names; host only).
    Fat(PathBuf),
    /// A FAT image file (MBR-partitioned) served through `embedded-sdmmc`,
    /// the no_std path boards use with SD cards (8.3 names).
    SdFat(PathBuf),
}

impl std::str::FromStr for FsSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "dir" {
            return Ok(FsSpec::Dir);
        }
        match s.split_once(':') {
            Some(("littlefs", path)) if !path.is_empty() => Ok(FsSpec::LittleFs(path.into())),
            Some(("fat", path)) if !path.is_empty() => Ok(FsSpec::Fat(path.into())),
            Some(("sdfat", path)) if !path.is_empty() => Ok(FsSpec::SdFat(path.into())),
            _ => Err("expected dir, littlefs:IMAGE, fat:IMAGE or sdfat:IMAGE".into()),
        }
    }
}

/// Parses `--fs-size` (`16M`, `512K`, `1G`, bytes).
#[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
pub fn parse_size(s: &str) -> Result<u64, String> {
    ferry_fs::image::parse_size(s).ok_or_else(|| format!("{s:?} is not a size like 16M or 512K"))
}

/// Parses `--fs-size`: without image support, any use is an error.
#[cfg(not(any(feature = "littlefs", feature = "fat", feature = "sdfat")))]
pub fn parse_size(_: &str) -> Result<u64, String> {
    Err("ferryd was built without image support (features littlefs, fat, sdfat)".into())
}

/// Parses `NAME:PASSWORD`, splitting at the first `:`.
pub fn parse_user(s: &str) -> Result<UserArg, String> {
    let (name, password) = s
        .split_once(':')
        .ok_or_else(|| "expected NAME:PASSWORD".to_string())?;
    check_user_name(name)?;
    if password.is_empty() {
        return Err(format!("user {name:?}: the password is empty"));
    }
    Ok(UserArg {
        name: name.to_string(),
        password: Password(password.to_string()),
    })
}

/// Checks that `name` can be sent in a `USER` command: not empty, no spaces
/// or control characters (those could never match what a client sends).
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the user name is empty".to_string());
    }
    if name
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        return Err(format!(
            "user name {name:?} holds a space, ':' or a control character"
        ));
    }
    Ok(())
}

/// Parses `LO-HI` (e.g. `50000-50100`); a single port `P` means `P-P`.
pub fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let port = |p: &str| -> Result<u16, String> {
        match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("{p:?} is not a port number (1-65535)")),
            Ok(n) => Ok(n),
        }
    };
    let (lo, hi) = (port(lo)?, port(hi)?);
    if lo > hi {
        return Err(format!(
            "empty port range {lo}-{hi}: the first port is above the last"
        ));
    }
    Ok(PortRange { lo, hi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_lo_hi_and_single_port() {
        assert_eq!(
            parse_port_range("50000-50100"),
            Ok(PortRange {
                lo: 50000,
                hi: 50100
            })
        );
        assert_eq!(
            parse_port_range("2000"),
            Ok(PortRange { lo: 2000, hi: 2000 })
        );
        assert_eq!(
            parse_port_range(" 1 - 65535 "),
            Ok(PortRange { lo: 1, hi: 65535 })
        );
    }

    #[test]
    fn port_range_rejects_bad_input() {
        for bad in [
            "", "-", "0-10", "10-0", "5-4", "1-65536", "a-b", "1-2-3", "70000",
        ] {
            assert!(parse_port_range(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_splits_at_first_colon() {
        let u = parse_user("alice:pa:ss:").unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.password.0, "pa:ss:");
    }

    #[test]
    fn user_rejects_missing_parts() {
        for bad in ["alice", ":pw", "alice:", "al ice:pw", "a\tb:pw"] {
            assert!(parse_user(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn password_debug_is_masked() {
        let u = parse_user("bob:secret").unwrap();
        let shown = format!("{u:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn cli_parses_all_options() {
        let cli = Cli::try_parse_from([
            "ferryd",
            "--root",
            "/srv/ftp",
            "--listen",
            "127.0.0.1:2121",
            "--listen",
            "[::1]:2121",
            "--user",
            "a:b:c",
            "--user",
            "d:e",
            "--anonymous",
            "--read-only",
            "--passive-ports",
            "50000-50010",
            "--passive-address",
            "203.0.113.7",
            "--max-sessions",
            "8",
            "--max-per-ip",
            "2",
            "--idle-timeout",
            "60",
        ])
        .unwrap();
        assert_eq!(cli.root, Some(PathBuf::from("/srv/ftp")));
        assert_eq!(cli.listen.len(), 2);
        assert_eq!(cli.listen[1], "[::1]:2121".parse().unwrap());
        assert_eq!(cli.users.len(), 2);
        assert_eq!(cli.users[0].password.0, "b:c");
        assert!(cli.anonymous && cli.read_only);
        assert_eq!(
            cli.passive_ports,
            Some(PortRange {
                lo: 50000,
                hi: 50010
            })
        );
        assert_eq!(cli.passive_address, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(cli.max_sessions, Some(8));
        assert_eq!(cli.max_per_ip, Some(2));
        assert_eq!(cli.idle_timeout, Some(60));
        assert!(!cli.hash_password);
    }

    #[test]
    fn cli_parses_tls_options() {
        let cli = Cli::try_parse_from([
            "ferryd",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--implicit-listen",
            "0.0.0.0:990",
            "--implicit-listen",
            "[::]:990",
            "--require-tls",
            "--tls-require-reuse",
        ])
        .unwrap();
        assert_eq!(cli.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(cli.tls_key, Some(PathBuf::from("k.pem")));
        assert_eq!(cli.implicit_listen.len(), 2);
        assert!(cli.require_tls && cli.tls_require_reuse && !cli.tls_self_signed);
        let quick = Cli::try_parse_from(["ferryd", "--tls-self-signed"]).unwrap();
        assert!(quick.tls_self_signed && quick.tls_cert.is_none());
    }

    #[test]
    fn cli_with_no_arguments_is_all_defaults() {
        let cli = Cli::try_parse_from(["ferryd"]).unwrap();
        assert!(cli.root.is_none() && cli.listen.is_empty() && cli.users.is_empty());
    }

    #[test]
    fn cli_rejects_bad_values() {
        for args in [
            &["ferryd", "--listen", "127.0.0.1"][..],
            &["ferryd", "--listen", "::1:2121"],
            &["ferryd", "--passive-ports", "9-8"],
            &["ferryd", "--user", "nopassword"],
            &["ferryd", "--max-sessions", "-1"],
            &["ferryd", "--hash-password", "--anonymous"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
    #[test]
    fn fs_and_size_are_parsed() {
        let cli =
            Cli::try_parse_from(["ferryd", "--fs", "littlefs:a.img", "--fs-size", "16M"]).unwrap();
        assert_eq!(cli.fs, Some(FsSpec::LittleFs("a.img".into())));
        assert_eq!(cli.fs_size, Some(16 << 20));
        assert_eq!("fat:/x/y.img".parse(), Ok(FsSpec::Fat("/x/y.img".into())));
        assert_eq!("sdfat:sd.img".parse(), Ok(FsSpec::SdFat("sd.img".into())));
        assert_eq!("dir".parse(), Ok(FsSpec::Dir));
        for bad in ["ext4:x", "littlefs:", "fat", ""] {
            assert!(bad.parse::<FsSpec>().is_err(), "{bad:?}");
        }
        assert!(Cli::try_parse_from(["ferryd", "--fs", "fat:x", "--root", "/tmp"]).is_err());
        assert!(Cli::try_parse_from(["ferryd", "--fs-size", "8X"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
