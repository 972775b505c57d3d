//! host-tap's command line: the TAP device, the static address, the served
//! directory and the one user.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Parser;

/// How to try host-tap by hand, shown by `--help`.
const SETUP: &str = "\
host-tap needs a TAP device, root (or CAP_NET_ADMIN) and /dev/net/tun.
Try it by hand in a network namespace of its own, so nothing leaves it:

  ip netns add ferry
  ip netns exec ferry ip link set lo up
  ip netns exec ferry ip tuntap add dev tap0 mode tap
  ip netns exec ferry ip addr add 10.0.0.1/24 dev tap0
  ip netns exec ferry ip link set tap0 up
  mkdir -p /tmp/ferry-root
  ip netns exec ferry host-tap --tap tap0 --ip 10.0.0.2/24 --root /tmp/ferry-root

The kernel side of tap0 is 10.0.0.1; host-tap (smoltcp) answers on
10.0.0.2. From another terminal, a client inside the same namespace:

  ip netns exec ferry curl -u ferry:ferry ftp://10.0.0.2/
  ip netns exec ferry lftp -u ferry,ferry 10.0.0.2

Ctrl-C stops host-tap; `ip netns del ferry` removes the namespace and the
TAP device with it.";

/// Ferry's FTP engine on smoltcp over a Linux TAP device: the code path of
/// the firmware, on a PC.
#[derive(Debug, Parser)]
#[command(name = "host-tap", version, after_help = SETUP)]
pub struct Cli {
    /// The TAP device to attach to (created if missing, which needs root).
    #[arg(long, default_value = "tap0")]
    pub tap: String,
    /// host-tap's own IPv4 address and prefix on the TAP link.
    #[arg(long, default_value = "10.0.0.2/24")]
    pub ip: Cidr,
    /// Default gateway (only needed for clients beyond the TAP link).
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// The FTP control port.
    #[arg(long, default_value_t = 21)]
    pub port: u16,
    /// The directory served (created if missing). Default: a new temporary
    /// directory, printed at start.
    #[arg(long, conflicts_with = "fs")]
    pub root: Option<PathBuf>,
    /// Serve an image file instead of a directory: `littlefs:IMAGE` (the
    /// firmware's flash file system) or `fat:IMAGE`. A missing image is
    /// created with `--fs-size` and formatted.
    #[arg(long, value_name = "KIND:IMAGE")]
    pub fs: Option<FsSpec>,
    /// Size of an image that `--fs` creates, e.g. 8M (littlefs: a power of
    /// two from 64K to 1G).
    #[arg(long, value_name = "SIZE", requires = "fs", value_parser = parse_size)]
    pub fs_size: Option<u64>,
    /// The one user, as NAME:PASSWORD.
    #[arg(long, default_value = "ferry:ferry")]
    pub user: UserSpec,
    /// Receive and transmit buffer of each smoltcp socket, in KiB (the
    /// receive buffer is the TCP window).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub socket_buffer_kib: u16,
    /// Log every command line, not only connections, logins and transfers.
    #[arg(long, short)]
    pub verbose: bool,
}

/// An IPv4 address with its prefix length, e.g. `10.0.0.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length (0–32).
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX (e.g. 10.0.0.2/24)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{prefix:?} is not a prefix length (0-32)"))?;
        if addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast() {
            return Err(format!("{addr} cannot be host-tap's own address"));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// The storage named by `--fs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsSpec {
    /// A littlefs image file.
    LittleFs(PathBuf),
    /// A FAT image file.
    Fat(PathBuf),
}

impl FromStr for FsSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("littlefs", path)) if !path.is_empty() => Ok(FsSpec::LittleFs(path.into())),
            Some(("fat", path)) if !path.is_empty() => Ok(FsSpec::Fat(path.into())),
            _ => Err("expected littlefs:IMAGE or fat:IMAGE".into()),
        }
    }
}

/// Parses `--fs-size` (`8M`, `512K`, `1G`, bytes).
#[cfg(any(feature = "littlefs", feature = "fat"))]
pub fn parse_size(s: &str) -> Result<u64, String> {
    ferry_fs::image::parse_size(s).ok_or_else(|| format!("{s:?} is not a size like 8M or 512K"))
}

/// Parses `--fs-size`: without image support, any use is an error.
#[cfg(not(any(feature = "littlefs", feature = "fat")))]
pub fn parse_size(_: &str) -> Result<u64, String> {
    Err("host-tap was built without image support (features littlefs, fat)".into())
}

/// The user given by `--user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// The login name.
    pub name: String,
    /// The password (not shown by `Debug`).
    pub password: Password,
}

/// A password; its `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl FromStr for UserSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, password) = s
            .split_once(':')
            .ok_or_else(|| "expected NAME:PASSWORD".to_string())?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{name:?} is not a user name"));
        }
        if password.is_empty() {
            return Err("the password is empty".into());
        }
        Ok(UserSpec {
            name: name.into(),
            password: Password(password.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::parse_from(["host-tap"]);
        assert_eq!(cli.tap, "tap0");
        assert_eq!(
            cli.ip,
            Cidr {
                addr: Ipv4Addr::new(10, 0, 0, 2),
                prefix: 24
            }
        );
        assert_eq!(cli.port, 21);
        assert_eq!(cli.user.name, "ferry");
        assert_eq!(cli.user.password.0, "ferry");
        assert_eq!(format!("{:?}", cli.user.password), "***");
    }

    #[test]
    fn cidr_and_user_are_checked() {
        assert!("10.0.0.2".parse::<Cidr>().is_err());
        assert!("10.0.0.2/33".parse::<Cidr>().is_err());
        assert!("0.0.0.0/24".parse::<Cidr>().is_err());
        assert_eq!(
            "192.168.7.9/16".parse::<Cidr>(),
            Ok(Cidr {
                addr: Ipv4Addr::new(192, 168, 7, 9),
                prefix: 16
            })
        );
        assert!("nopassword".parse::<UserSpec>().is_err());
        assert!(":pw".parse::<UserSpec>().is_err());
        assert!("a:".parse::<UserSpec>().is_err());
        let u: UserSpec = "alice:se:cret".parse().unwrap();
        assert_eq!(
            (u.name.as_str(), u.password.0.as_str()),
            ("alice", "se:cret")
        );
    }

    #[cfg(any(feature = "littlefs", feature = "fat"))]
    #[test]
    fn fs_images_are_parsed() {
        let cli = Cli::parse_from(["host-tap", "--fs", "littlefs:/tmp/a.img", "--fs-size", "8M"]);
        assert_eq!(cli.fs, Some(FsSpec::LittleFs("/tmp/a.img".into())));
        assert_eq!(cli.fs_size, Some(8 << 20));
        assert_eq!("fat:x.img".parse(), Ok(FsSpec::Fat("x.img".into())));
        assert!("ext4:x.img".parse::<FsSpec>().is_err());
        assert!("littlefs:".parse::<FsSpec>().is_err());
        assert!(Cli::try_parse_from(["host-tap", "--fs", "fat:x", "--root", "/tmp"]).is_err());
        assert!(Cli::try_parse_from(["host-tap", "--fs-size", "8M"]).is_err());
    }

    #[test]
    fn help_explains_the_namespace_setup() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "ip netns add",
            "ip tuntap add",
            "ip addr add",
            "--tap tap0",
            "curl",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}");
        }
    }
}
