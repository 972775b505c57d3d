//! The settings `ferryd` runs with: the TOML config file, merged with the
//! command line (which wins), checked once at start.
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{self, Secret};
use crate::cli::{self, Cli, FsSpec, Password};

/// `--max-sessions` unless given. Each worker's session table grows to
/// at most this long as sessions need slots (a slot costs its session
/// state, about 18 KB with 4096-byte paths; the transfer buffer is
/// shared); idle logged-in sessions are parked outside it, a few hundred
/// bytes each.
pub const DEFAULT_MAX_SESSIONS: usize = 64;

/// The most `--max-sessions` can be (the engine counts in `u16`).
pub const MAX_SESSIONS: usize = u16::MAX as usize;

/// `--busy-poll` unless given, in microseconds: longer than a client takes
/// to send its next command after a reply (tens of microseconds on
/// loopback), short enough that an idle worker soon sleeps.
const DEFAULT_BUSY_POLL_US: u64 = 50;
/// The most `--busy-poll` can be: a millisecond of spinning per event.
const MAX_BUSY_POLL_US: u64 = 1000;
/// The most `--workers` can be.
pub const MAX_WORKERS: usize = 64;

/// Where `ferryd` listens when no address is given.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2121);

/// The directory served when no root is given (relative to the working directory).
pub const DEFAULT_ROOT: &str = "ftp-root";

/// The user created when none is configured.
pub const DEFAULT_USER: &str = "ferry";

/// `--max-per-ip` unless given: enough for a user's parallel transfers
/// (FileZilla opens 2 to 10), few enough that one address cannot take the
/// whole table.
pub const DEFAULT_MAX_PER_IP: u16 = 8;

/// `--login-timeout` unless given, in seconds.
pub const DEFAULT_LOGIN_TIMEOUT_SECS: u32 = 30;

/// A startup problem, shown to the user as is; `ferryd` exits with code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

impl From<String> for StartupError {
    fn from(s: String) -> Self {
        StartupError(s)
    }
}

/// The config file, as written. Every field is optional; unknown keys are
/// errors so that a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Directory to serve; relative paths are relative to the config file.
    pub root: Option<PathBuf>,
    /// `"dir"`, `"littlefs:IMAGE"`, `"fat:IMAGE"` or `"sdfat:IMAGE"`; a relative image path is
    /// relative to the config file.
    #[serde(default, deserialize_with = "de_fs")]
    pub fs: Option<FsSpec>,
    /// Size of an image to create, e.g. `"16M"`.
    #[serde(default, deserialize_with = "de_size")]
    pub fs_size: Option<u64>,
    /// Addresses to listen on.
    pub listen: Option<Vec<SocketAddr>>,
    /// Allow anonymous read-only logins.
    pub anonymous: Option<bool>,
    /// Read-only for all users.
    pub read_only: Option<bool>,
    /// `"LO-HI"`.
    pub passive_ports: Option<String>,
    /// Address announced in PASV replies.
    pub passive_address: Option<IpAddr>,
    /// Most concurrent sessions.
    pub max_sessions: Option<usize>,
    /// Engine instances (threads).
    pub workers: Option<usize>,
    /// Microseconds a worker polls without sleeping after its last event.
    pub busy_poll: Option<u64>,
    /// Most concurrent sessions per IP (0 = no limit).
    pub max_per_ip: Option<u16>,
    /// Idle timeout in seconds.
    pub idle_timeout: Option<u64>,
    /// Login timeout in seconds (0 = none).
    pub login_timeout: Option<u32>,
    /// TLS certificate chain (PEM); relative to the config file.
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM); relative to the config file.
    pub tls_key: Option<PathBuf>,
    /// Make a throwaway self-signed certificate at start.
    pub tls_self_signed: Option<bool>,
    /// Addresses for implicit FTPS.
    pub implicit_listen: Option<Vec<SocketAddr>>,
    /// TLS required for logins and data transfers.
    pub require_tls: Option<bool>,
    /// Data connections must resume the control connection's TLS session.
    pub tls_require_reuse: Option<bool>,
    /// `[[user]]` tables.
    #[serde(default, rename = "user")]
    pub users: Vec<FileUser>,
}

/// One `[[user]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUser {
    /// Login name.
    pub name: String,
    /// An argon2 PHC string (`$argon2id$v=19$...`), from `ferryd --hash-password`.
    pub password_hash: Option<String>,
    /// A plain password (for tests and throwaway setups).
    pub password: Option<String>,
    /// Directory inside the root that becomes this user's `/`.
    pub home: Option<String>,
    /// Whether this user may only read.
    #[serde(default)]
    pub read_only: bool,
}

impl fmt::Debug for FileUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileUser")
            .field("name", &self.name)
            .field("home", &self.home)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl FileConfig {
    /// Parses the text of a config file.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses a config file; a relative `root` becomes relative to
    /// the file's directory.
    pub fn load(path: &Path) -> Result<FileConfig, StartupError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let mut file =
            FileConfig::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        if let (Some(root), Some(dir)) = (&file.root, path.parent()) {
            if root.is_relative() {
                file.root = Some(dir.join(root));
            }
        }
        for file_path in [&mut file.tls_cert, &mut file.tls_key]
            .into_iter()
            .flatten()
        {
            if let (true, Some(dir)) = (file_path.is_relative(), path.parent()) {
                *file_path = dir.join(&*file_path);
            }
        }
        if let (
            Some(FsSpec::LittleFs(image) | FsSpec::Fat(image) | FsSpec::SdFat(image)),
            Some(dir),
        ) = (&mut file.fs, path.parent())
        {
            if image.is_relative() {
                *image = dir.join(&*image);
            }
        }
        Ok(file)
    }
}

/// Parses the config file's `fs` like `--fs`.
fn de_fs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<FsSpec>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Parses the config file's `fs_size` like `--fs-size`.
fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    cli::parse_size(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// An image file served instead of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The volume format.
    pub kind: ImageKind,
    /// The image file.
    pub path: PathBuf,
    /// Its size, to create it if missing (and to check it otherwise).
    pub size: Option<u64>,
}

/// The volume format of an [`Image`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// littlefs, 4 KiB blocks.
    LittleFs,
    /// FAT12/16/32 through `fatfs`.
    Fat,
    /// FAT16/32 through `embedded-sdmmc` (an MBR-partitioned image).
    SdFat,
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files: the chain (leaf first) and its private key.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A throwaway self-signed certificate made at start.
    SelfSigned,
}

/// FTPS settings (present when a certificate is configured).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate.
    pub cert: CertSource,
    /// Implicit-FTPS listeners (TLS from the first byte).
    pub implicit_listen: Vec<SocketAddr>,
    /// Data connections must resume the control connection's TLS session.
    pub require_reuse: bool,
}

/// A user who may log in.
#[derive(Debug, Clone)]
pub struct UserSpec {
    /// Login name.
    pub name: String,
    /// How the password is checked.
    pub secret: Secret,
    /// Canonical home inside the root (`/` or `/a/b`).
    pub home: String,
    /// Only reading allowed.
    pub read_only: bool,
}

/// Everything `ferryd` needs to run, checked.
#[derive(Debug)]
pub struct Settings {
    /// The directory served (not yet created or canonicalized), unless
    /// `image` is set.
    pub root: PathBuf,
    /// An image file served instead of `root`.
    pub image: Option<Image>,
    /// Listening addresses, at least one, no duplicates.
    pub listen: Vec<SocketAddr>,
    /// Configured users (possibly empty when anonymous is on).
    pub users: Vec<UserSpec>,
    /// The user made up at start, if no user was configured; also in `users`.
    pub generated: Option<(String, Password)>,
    /// Anonymous logins allowed.
    pub anonymous: bool,
    /// FTPS, if a certificate is configured.
    pub tls: Option<TlsSettings>,
    /// Engine settings.
    pub engine: ferry_core::Config,
    /// Engine instances, one thread each, sharing the listeners
    /// (`SO_REUSEPORT`) and the session limits.
    pub workers: usize,
    /// How long a worker polls without sleeping after its last event.
    pub busy_poll: Duration,
}

/// `--workers` unless given: one per core on Linux when serving a
/// directory; else 1 (an image has one writer; elsewhere the system does
/// not spread connections over listeners sharing a port).
pub fn default_workers(image: bool) -> usize {
    if image || !cfg!(target_os = "linux") {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS))
}

impl Settings {
    /// Merges the config file named by `cli.config` (if any) with `cli`.
    pub fn from_cli(cli: Cli) -> Result<Settings, StartupError> {
        let file = match &cli.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        Settings::merge(cli, file, auth::random_password)
    }

    /// Merges `file` and `cli` (the command line wins) and checks the result.
    /// `make_password` makes the default user's password when no user is given.
    pub fn merge(
        cli: Cli,
        file: FileConfig,
        make_password: impl FnOnce() -> String,
    ) -> Result<Settings, StartupError> {
        let image = storage(&cli, &file)?;
        let (tls, require_tls) = tls_settings(&cli, &file)?;
        let root = cli
            .root
            .or(file.root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));

        let mut listen = if !cli.listen.is_empty() {
            cli.listen
        } else {
            file.listen.unwrap_or_default()
        };
        if listen.is_empty() {
            listen.push(DEFAULT_LISTEN);
        }
        for (i, addr) in listen.iter().enumerate() {
            if listen[..i].contains(addr) {
                return Err(format!("listen address {addr} is given twice").into());
            }
        }
        let implicit = tls.as_ref().map_or(&[][..], |t| &t.implicit_listen[..]);
        for (i, addr) in implicit.iter().enumerate() {
            if implicit[..i].contains(addr) || listen.contains(addr) {
                return Err(format!("listen address {addr} is given twice").into());
            }
        }
        if listen.len() + implicit.len() > ferry_core::server::MAX_LISTENERS {
            return Err(format!(
                "at most {} listen addresses (--listen and --implicit-listen together) \
                 are supported, {} given",
                ferry_core::server::MAX_LISTENERS,
                listen.len() + implicit.len()
            )
            .into());
        }

        let anonymous = cli.anonymous || file.anonymous.unwrap_or(false);
        let read_only = cli.read_only || file.read_only.unwrap_or(false);

        let passive_ports = match (cli.passive_ports, file.passive_ports) {
            (Some(range), _) => Some(range),
            (None, Some(text)) => Some(
                cli::parse_port_range(&text).map_err(|e| format!("config: passive_ports: {e}"))?,
            ),
            (None, None) => None,
        };
        let passive_address = cli.passive_address.or(file.passive_address);

        let max_sessions = cli
            .max_sessions
            .or(file.max_sessions)
            .unwrap_or(DEFAULT_MAX_SESSIONS);
        if max_sessions == 0 || max_sessions > MAX_SESSIONS {
            return Err(format!(
                "max sessions must be between 1 and {MAX_SESSIONS}, not {max_sessions}"
            )
            .into());
        }
        let workers = match cli.workers.or(file.workers) {
            Some(n) if n == 0 || n > MAX_WORKERS => {
                return Err(format!("workers must be between 1 and {MAX_WORKERS}, not {n}").into())
            }
            Some(n) if n > 1 && !cfg!(target_os = "linux") => {
                return Err(
                    "several workers need Linux (SO_REUSEPORT spreading connections \
                            by client address)"
                        .to_string()
                        .into(),
                )
            }
            Some(n) if n > 1 && image.is_some() => {
                return Err("an image file is served by one worker (--workers 1)"
                    .to_string()
                    .into())
            }
            Some(n) => n,
            None => default_workers(image.is_some()),
        };
        let max_per_ip = cli.max_per_ip.or(file.max_per_ip);
        let idle_timeout = cli.idle_timeout.or(file.idle_timeout);
        let busy_poll = match cli.busy_poll.or(file.busy_poll) {
            Some(us) if us > MAX_BUSY_POLL_US => {
                return Err(format!(
                    "busy_poll must be at most {MAX_BUSY_POLL_US} microseconds, not {us}"
                )
                .into())
            }
            us => Duration::from_micros(us.unwrap_or(DEFAULT_BUSY_POLL_US)),
        };
        let login_timeout = cli.login_timeout.or(file.login_timeout);
        if idle_timeout == Some(0) {
            return Err("idle timeout must be at least 1 second".to_string().into());
        }

        let mut users = file_users(file.users)?;
        for arg in cli.users {
            let secret = Secret::Plain(arg.password);
            // A command-line password replaces the file's; home and
            // read_only stay as the file configured them.
            match users.iter_mut().find(|u| u.name == arg.name) {
                Some(user) => user.secret = secret,
                None => users.push(UserSpec {
                    name: arg.name,
                    secret,
                    home: "/".to_string(),
                    read_only: false,
                }),
            }
        }
        if anonymous {
            if let Some(u) = users
                .iter()
                .find(|u| auth::is_anonymous_name(u.name.as_bytes()))
            {
                return Err(format!(
                    "user {:?} is configured, but with anonymous logins on that name \
                     takes any password",
                    u.name
                )
                .into());
            }
        }
        if users.len() >= usize::from(u16::MAX) {
            return Err(format!("too many users ({})", users.len()).into());
        }

        let mut generated = None;
        if users.is_empty() && !anonymous {
            let password = Password(make_password());
            users.push(UserSpec {
                name: DEFAULT_USER.to_string(),
                secret: Secret::Plain(password.clone()),
                home: "/".to_string(),
                read_only: false,
            });
            generated = Some((DEFAULT_USER.to_string(), password));
        }

        let mut engine = ferry_core::Config {
            // Checked above: at most MAX_SESSIONS, which fits in u16.
            max_sessions: u16::try_from(max_sessions).unwrap_or(u16::MAX),
            read_only,
            passive_address,
            require_tls_login: require_tls,
            require_tls_data: require_tls,
            ..Default::default()
        };
        if let Some(range) = passive_ports {
            engine.passive_ports = (range.lo, range.hi);
        }
        engine.max_per_ip = max_per_ip.unwrap_or(DEFAULT_MAX_PER_IP);
        engine.login_timeout_ms = login_timeout
            .unwrap_or(DEFAULT_LOGIN_TIMEOUT_SECS)
            .saturating_mul(1000);
        if let Some(secs) = idle_timeout {
            engine.idle_timeout_ms = secs.saturating_mul(1000);
        }

        Ok(Settings {
            root,
            image,
            listen,
            users,
            generated,
            anonymous,
            tls,
            engine,
            workers,
            busy_poll,
        })
    }
}

/// The FTPS settings of `cli` and `file` (the command line wins), and
/// whether TLS is required; every TLS option but the certificate needs one.
fn tls_settings(cli: &Cli, file: &FileConfig) -> Result<(Option<TlsSettings>, bool), StartupError> {
    let pair = |cert: &Option<PathBuf>, key: &Option<PathBuf>, from: &str| match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(StartupError(format!(
            "{from}: a TLS certificate needs its key: give both tls_cert and tls_key \
             (--tls-cert and --tls-key)"
        ))),
    };
    let cli_files = pair(&cli.tls_cert, &cli.tls_key, "command line")?;
    let file_files = pair(&file.tls_cert, &file.tls_key, "config")?;
    if cli_files.is_some() && cli.tls_self_signed {
        return Err(
            "give either --tls-cert/--tls-key or --tls-self-signed, not both"
                .to_string()
                .into(),
        );
    }
    if file_files.is_some() && file.tls_self_signed == Some(true) {
        return Err(
            "config: give either tls_cert/tls_key or tls_self_signed, not both"
                .to_string()
                .into(),
        );
    }
    let cert = match (cli_files, cli.tls_self_signed) {
        (Some(files), _) => Some(files),
        (None, true) => Some(CertSource::SelfSigned),
        (None, false) => match (file_files, file.tls_self_signed) {
            (Some(files), _) => Some(files),
            (None, Some(true)) => Some(CertSource::SelfSigned),
            (None, _) => None,
        },
    };
    let implicit_listen = if cli.implicit_listen.is_empty() {
        file.implicit_listen.clone().unwrap_or_default()
    } else {
        cli.implicit_listen.clone()
    };
    let require_tls = cli.require_tls || file.require_tls == Some(true);
    let require_reuse = cli.tls_require_reuse || file.tls_require_reuse == Some(true);
    let Some(cert) = cert else {
        let needs = [
            (!implicit_listen.is_empty(), "--implicit-listen"),
            (require_tls, "--require-tls"),
            (require_reuse, "--tls-require-reuse"),
        ];
        if let Some((_, option)) = needs.iter().find(|(given, _)| *given) {
            return Err(format!(
                "{option} needs a certificate: give --tls-cert FILE --tls-key FILE, \
                 or --tls-self-signed"
            )
            .into());
        }
        return Ok((None, false));
    };
    Ok((
        Some(TlsSettings {
            cert,
            implicit_listen,
            require_reuse,
        }),
        require_tls,
    ))
}

/// The image to serve, if any: the command line's `--fs` or `--root` wins
/// over the file's `fs` or `root`; `--fs-size` (or `fs_size`) needs an image.
fn storage(cli: &Cli, file: &FileConfig) -> Result<Option<Image>, StartupError> {
    let is_image = |fs: &Option<FsSpec>| {
        matches!(
            fs,
            Some(FsSpec::LittleFs(_) | FsSpec::Fat(_) | FsSpec::SdFat(_))
        )
    };
    if is_image(&file.fs) && file.root.is_some() {
        return Err("config: give either root or an image in fs, not both"
            .to_string()
            .into());
    }
    let fs = if cli.fs.is_some() || cli.root.is_some() {
        cli.fs.clone()
    } else {
        file.fs.clone()
    };
    let size = cli.fs_size.or(file.fs_size);
    let (kind, path) = match fs {
        None | Some(FsSpec::Dir) => {
            if size.is_some() {
                return Err(
                    "--fs-size (fs_size) is for an image: give --fs littlefs:IMAGE, \
                            fat:IMAGE or sdfat:IMAGE"
                        .to_string()
                        .into(),
                );
            }
            return Ok(None);
        }
        Some(FsSpec::LittleFs(path)) => (ImageKind::LittleFs, path),
        Some(FsSpec::Fat(path)) => (ImageKind::Fat, path),
        Some(FsSpec::SdFat(path)) => (ImageKind::SdFat, path),
    };
    Ok(Some(Image { kind, path, size }))
}

/// Checks the `[[user]]` tables.
fn file_users(users: Vec<FileUser>) -> Result<Vec<UserSpec>, StartupError> {
    let mut out: Vec<UserSpec> = Vec::with_capacity(users.len());
    for u in users {
        let name = u.name;
        cli::check_user_name(&name).map_err(|e| format!("config: [[user]]: {e}"))?;
        if out.iter().any(|o| o.name == name) {
            return Err(format!("config: user {name:?} is defined twice").into());
        }
        let secret = match (u.password_hash, u.password) {
            (Some(hash), None) => Secret::hash(&hash)
                .map_err(|e| format!("config: user {name:?}: password_hash: {e}"))?,
            (None, Some(plain)) if !plain.is_empty() => Secret::Plain(Password(plain)),
            (None, Some(_)) => {
                return Err(format!("config: user {name:?}: the password is empty").into())
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "config: user {name:?}: give either password_hash or password, not both"
                )
                .into())
            }
            (None, None) => {
                return Err(format!(
                    "config: user {name:?}: password_hash (from `ferryd --hash-password`) \
                     or password is required"
                )
                .into())
            }
        };
        let home = match u.home {
            Some(home) => {
                canonical_home(&home).map_err(|e| format!("config: user {name:?}: home: {e}"))?
            }
            None => "/".to_string(),
        };
        out.push(UserSpec {
            name,
            secret,
            home,
            read_only: u.read_only,
        });
    }
    Ok(out)
}

/// Turns a home directory as written (`/alice`, `alice/`, `/a//b`) into the
/// canonical form the engine uses (`/alice`, `/a/b`); `.`, `..`, `\` and
/// control characters are refused, so a home can never leave the root.
pub fn canonical_home(home: &str) -> Result<String, String> {
    let mut out = String::new();
    for part in home.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("{home:?} holds a '.' or '..' component"));
        }
        if part.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(format!("{home:?} holds a '\\' or a control character"));
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("ferryd").chain(args.iter().copied())).unwrap()
    }

    fn merge(args: &[&str], toml: &str) -> Result<Settings, StartupError> {
        Settings::merge(cli(args), FileConfig::parse(toml).unwrap(), || {
            "generated".into()
        })
    }

    #[test]
    fn defaults_make_one_user_with_a_generated_password() {
        let s = merge(&[], "").unwrap();
        assert_eq!(s.root, PathBuf::from("ftp-root"));
        assert_eq!(s.listen, vec![DEFAULT_LISTEN]);
        assert!(!s.anonymous);
        let engine = ferry_core::Config {
            max_sessions: 64,
            max_per_ip: 8,
            login_timeout_ms: 30_000,
            ..Default::default()
        };
        assert_eq!(s.engine, engine);
        assert_eq!(s.users.len(), 1);
        assert_eq!(s.users[0].name, "ferry");
        assert_eq!(s.users[0].home, "/");
        assert_eq!(
            s.generated,
            Some(("ferry".into(), Password("generated".into())))
        );
    }

    #[test]
    fn anonymous_alone_makes_no_default_user() {
        let s = merge(&["--anonymous"], "").unwrap();
        assert!(s.anonymous && s.users.is_empty() && s.generated.is_none());
    }

    #[test]
    fn cli_user_makes_no_default_user() {
        let s = merge(&["--user", "a:b"], "").unwrap();
        assert_eq!(s.users.len(), 1);
        assert!(s.generated.is_none());
    }

    #[test]
    fn toml_with_all_settings_and_users() {
        let hash = auth::tests::cheap_hash("s3cret");
        let text = format!(
            r#"
            root = "/srv/ftp"
            listen = ["0.0.0.0:21", "[::]:21"]
            anonymous = false
            read_only = true
            passive_ports = "50000-50100"
            passive_address = "198.51.100.4"
            max_sessions = 10
            max_per_ip = 3
            idle_timeout = 120
            login_timeout = 7

            [[user]]
            name = "alice"
            password_hash = "{hash}"
            home = "alice/"

            [[user]]
            name = "bob"
            password = "pw:with:colons"
            read_only = true
            "#
        );
        let s = merge(&[], &text).unwrap();
        assert_eq!(s.root, PathBuf::from("/srv/ftp"));
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.listen[1], "[::]:21".parse().unwrap());
        assert_eq!(s.engine.max_sessions, 10);
        assert_eq!(s.engine.passive_ports, (50000, 50100));
        assert_eq!(
            s.engine.passive_address,
            Some("198.51.100.4".parse().unwrap())
        );
        assert_eq!(s.engine.max_per_ip, 3);
        assert_eq!(s.engine.idle_timeout_ms, 120_000);
        assert_eq!(s.engine.login_timeout_ms, 7_000);
        assert!(s.engine.read_only);
        assert!(s.generated.is_none());
        assert_eq!(s.users.len(), 2);
        assert_eq!(s.users[0].home, "/alice");
        assert!(matches!(s.users[0].secret, Secret::Hash(_)));
        assert!(s.users[0].secret.verify(b"s3cret"));
        assert!(!s.users[0].secret.verify(b"wrong"));
        assert!(s.users[1].read_only);
        assert!(s.users[1].secret.verify(b"pw:with:colons"));
    }

    #[test]
    fn cli_overrides_the_file() {
        let text = r#"
            root = "/from/file"
            listen = ["127.0.0.1:21"]
            passive_ports = "1000-2000"
            max_sessions = 10
            idle_timeout = 5
            [[user]]
            name = "alice"
            password = "old"
            home = "/alice"
            read_only = true
        "#;
        let s = merge(
            &[
                "--root",
                "/from/cli",
                "--listen",
                "[::1]:2121",
                "--passive-ports",
                "3000-3001",
                "--max-sessions",
                "2",
                "--login-timeout",
                "0",
                "--user",
                "alice:new",
                "--user",
                "carol:c",
            ],
            text,
        )
        .unwrap();
        assert_eq!(s.root, PathBuf::from("/from/cli"));
        assert_eq!(s.listen, vec!["[::1]:2121".parse().unwrap()]);
        assert_eq!(s.engine.passive_ports, (3000, 3001));
        assert_eq!(s.engine.idle_timeout_ms, 5000);
        assert_eq!(s.engine.login_timeout_ms, 0);
        assert_eq!(s.engine.max_sessions, 2);
        let alice = &s.users[0];
        assert!(alice.secret.verify(b"new") && !alice.secret.verify(b"old"));
        assert_eq!(alice.home, "/alice");
        assert!(alice.read_only);
        assert_eq!(s.users[1].name, "carol");
        assert_eq!(s.users[1].home, "/");
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        for (text, needle) in [
            ("rooot = \"x\"", "unknown field"),
            ("passive_ports = \"9-1\"", "passive_ports"),
            ("listen = [\"localhost\"]", "listen"),
            ("[[user]]\nname = \"a\"", "required"),
            ("[[user]]\nname = \"a\"\npassword = \"x\"\npassword_hash = \"y\"", "not both"),
            ("[[user]]\nname = \"a\"\npassword_hash = \"plain\"", "password_hash"),
            ("[[user]]\nname = \"a\"\npassword = \"x\"\nhome = \"/../etc\"", "'..'"),
            (
                "[[user]]\nname = \"a\"\npassword = \"x\"\n[[user]]\nname = \"a\"\npassword = \"y\"",
                "twice",
            ),
        ] {
            let err = FileConfig::parse(text)
                .map_err(StartupError)
                .and_then(|f| Settings::merge(cli(&[]), f, || "pw".into()))
                .unwrap_err();
            assert!(err.0.contains(needle), "{text:?}: {err}");
        }
    }

    #[cfg(any(feature = "littlefs", feature = "fat", feature = "sdfat"))]
    #[test]
    fn image_storage_from_cli_or_file() {
        let s = merge(&["--fs", "littlefs:/i.img", "--fs-size", "1M"], "").unwrap();
        let image = Image {
            kind: ImageKind::LittleFs,
            path: "/i.img".into(),
            size: Some(1 << 20),
        };
        assert_eq!(s.image, Some(image));
        assert_eq!(merge(&[], "").unwrap().image, None);
        assert_eq!(merge(&["--fs", "dir"], "").unwrap().image, None);
        let s = merge(&[], "fs = \"fat:/f.img\"\nfs_size = \"8M\"").unwrap();
        let image = Image {
            kind: ImageKind::Fat,
            path: "/f.img".into(),
            size: Some(8 << 20),
        };
        assert_eq!(s.image, Some(image));
        // The command line's --root wins over the file's image.
        assert_eq!(
            merge(&["--root", "/r"], "fs = \"fat:/f.img\"")
                .unwrap()
                .image,
            None
        );
        assert!(merge(&["--fs-size", "8M"], "")
            .unwrap_err()
            .0
            .contains("image"));
        assert!(FileConfig::parse("fs = \"ext4:x\"").is_err());
        assert!(FileConfig::parse("fs_size = \"lots\"").is_err());
        let both = FileConfig::parse("root = \"/r\"\nfs = \"fat:/f.img\"").unwrap();
        assert!(Settings::merge(cli(&[]), both, || "pw".into()).is_err());
    }

    #[test]
    fn tls_options_merge_and_are_checked() {
        let s = merge(&[], "").unwrap();
        assert!(s.tls.is_none());
        assert!(!s.engine.require_tls_login && !s.engine.require_tls_data);

        let s = merge(
            &[
                "--tls-self-signed",
                "--implicit-listen",
                "127.0.0.1:990",
                "--require-tls",
            ],
            "",
        )
        .unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(tls.cert, CertSource::SelfSigned);
        assert_eq!(tls.implicit_listen, vec!["127.0.0.1:990".parse().unwrap()]);
        assert!(!tls.require_reuse);
        assert!(s.engine.require_tls_login && s.engine.require_tls_data);

        let text = "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_require_reuse = true\n";
        let s = merge(&[], text).unwrap();
        let tls = s.tls.unwrap();
        assert!(tls.require_reuse);
        assert_eq!(
            tls.cert,
            CertSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        // The command line's certificate wins over the file's.
        let s = merge(&["--tls-self-signed"], text).unwrap();
        assert_eq!(s.tls.unwrap().cert, CertSource::SelfSigned);

        for (args, needle) in [
            (&["--tls-cert", "c.pem"][..], "needs its key"),
            (&["--tls-key", "k.pem"], "needs its key"),
            (
                &["--tls-cert", "c", "--tls-key", "k", "--tls-self-signed"],
                "not both",
            ),
            (
                &["--implicit-listen", "127.0.0.1:990"],
                "needs a certificate",
            ),
            (&["--require-tls"], "needs a certificate"),
            (&["--tls-require-reuse"], "needs a certificate"),
            (
                &[
                    "--tls-self-signed",
                    "--listen",
                    "127.0.0.1:21",
                    "--implicit-listen",
                    "127.0.0.1:21",
                ],
                "twice",
            ),
            (
                &[
                    "--tls-self-signed",
                    "--listen",
                    "127.0.0.1:21",
                    "--listen",
                    "127.0.0.1:22",
                    "--implicit-listen",
                    "127.0.0.1:990",
                    "--implicit-listen",
                    "127.0.0.1:991",
                    "--implicit-listen",
                    "127.0.0.1:992",
                ],
                "at most",
            ),
        ] {
            let err = merge(args, "").unwrap_err();
            assert!(err.0.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn tls_files_in_the_config_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferryd.toml");
        std::fs::write(&path, "tls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\n").unwrap();
        let file = FileConfig::load(&path).unwrap();
        assert_eq!(file.tls_cert, Some(dir.path().join("c.pem")));
        assert_eq!(file.tls_key, Some(PathBuf::from("/abs/k.pem")));
    }

    #[test]
    fn limits_are_checked() {
        let too_many = (MAX_SESSIONS + 1).to_string();
        assert!(merge(&["--max-sessions", &too_many], "")
            .unwrap_err()
            .0
            .contains("between 1"));
        assert!(merge(&["--max-sessions", "0"], "").is_err());
        assert!(merge(&["--idle-timeout", "0"], "").is_err());
        let listens: Vec<String> = (0..=ferry_core::server::MAX_LISTENERS)
            .flat_map(|i| ["--listen".to_string(), format!("127.0.0.1:{}", 2000 + i)])
            .collect();
        let args: Vec<&str> = listens.iter().map(String::as_str).collect();
        assert!(merge(&args, "").unwrap_err().0.contains("at most"));
        let twice = ["--listen", "127.0.0.1:21", "--listen", "127.0.0.1:21"];
        assert!(merge(&twice, "").unwrap_err().0.contains("twice"));
    }

    #[test]
    fn busy_poll_is_bounded_and_the_command_line_wins() {
        let us = |s: Settings| s.busy_poll.as_micros();
        assert_eq!(
            us(merge(&[], "").unwrap()),
            u128::from(DEFAULT_BUSY_POLL_US)
        );
        assert_eq!(us(merge(&[], "busy_poll = 0").unwrap()), 0);
        assert_eq!(
            us(merge(&["--busy-poll", "200"], "busy_poll = 7").unwrap()),
            200
        );
        assert_eq!(us(merge(&["--busy-poll", "1000"], "").unwrap()), 1000);
        let over = merge(&["--busy-poll", "1001"], "").unwrap_err();
        assert!(over.0.contains("at most 1000"), "{}", over.0);
    }

    #[test]
    fn workers_and_large_tables() {
        let s = merge(&["--max-sessions", "10000"], "").unwrap();
        assert_eq!(s.engine.max_sessions, 10000);
        assert_eq!(s.workers, default_workers(false));
        assert!(s.workers >= 1);
        assert_eq!(merge(&[], "workers = 1").unwrap().workers, 1);
        assert!(merge(&["--workers", "0"], "")
            .unwrap_err()
            .0
            .contains("between 1"));
        let too_many = (MAX_WORKERS + 1).to_string();
        assert!(merge(&["--workers", &too_many], "").is_err());
        // An image has one writer.
        assert_eq!(default_workers(true), 1);
        let image = merge(&["--fs", "littlefs:x.img", "--workers", "2"], "");
        if cfg!(target_os = "linux") {
            assert!(image.unwrap_err().0.contains("one worker"));
            assert_eq!(merge(&["--workers", "3"], "").unwrap().workers, 3);
        } else {
            assert!(image.is_err());
            assert!(merge(&["--workers", "3"], "")
                .unwrap_err()
                .0
                .contains("Linux"));
        }
    }

    #[test]
    fn anonymous_names_cannot_also_be_users() {
        assert!(merge(&["--anonymous", "--user", "ftp:x"], "").is_err());
        assert!(merge(&["--user", "ftp:x"], "").is_ok());
    }

    #[test]
    fn homes_are_canonical_and_stay_inside() {
        assert_eq!(canonical_home("/").unwrap(), "/");
        assert_eq!(canonical_home("").unwrap(), "/");
        assert_eq!(canonical_home("alice").unwrap(), "/alice");
        assert_eq!(canonical_home("//a///b/").unwrap(), "/a/b");
        for bad in ["/a/../b", "./a", "/a\\b", "/a\nb"] {
            assert!(canonical_home(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_root_in_file_is_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferryd.toml");
        std::fs::write(&path, "root = \"files\"\n").unwrap();
        let file = FileConfig::load(&path).unwrap();
        assert_eq!(file.root, Some(dir.path().join("files")));
        std::fs::write(&path, "fs = \"fat:img/f.img\"\n").unwrap();
        let file = FileConfig::load(&path).unwrap();
        assert_eq!(file.fs, Some(FsSpec::Fat(dir.path().join("img/f.img"))));
        let missing = FileConfig::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.0.contains("cannot read config file"));
    }
}
