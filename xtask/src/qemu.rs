//! `cargo xtask qemu [--tap] [--port PORT] [--verbose] [--profile
//! default|emftp|tls] [--tls] [--implicit-port PORT]`: builds the Cortex-M3
//! firmware (`boards/qemu-mps2-an385`) with the engine in the given protocol
//! profile (`--emftp` is short for `--profile emftp`, `--tls` for `--profile
//! tls`: the default profile serving FTPES on the control port and implicit
//! FTPS on port 990, forwarded from `--implicit-port`, 9990 by default) and
//! boots it in `qemu-system-arm`, with networking a client on this machine
//! can reach, and prints how to connect. Ctrl-C stops QEMU.
//!
//! Two ways to network it:
//! - **User networking** (default, no root): QEMU's NAT forwards
//!   `127.0.0.1:PORT` (2121) to the firmware's port 21, and the passive
//!   ports 50000-50007 to themselves; the firmware is told to name
//!   `127.0.0.1` in PASV replies. Active mode (PORT/EPRT) cannot work this
//!   way: the client names 127.0.0.1, but the firmware sees its control
//!   connection come from QEMU's NAT (10.0.2.2) and refuses to connect
//!   elsewhere (the FTP bounce check).
//! - **`--tap`** (root, /dev/net/tun): a network namespace made for the run,
//!   holding a TAP device (10.0.2.2/24) that QEMU attaches the firmware
//!   (10.0.2.15) to. Addresses are real, so both passive and active mode
//!   work; clients run inside the namespace (`ip netns exec NAME ...`). The
//!   namespace is deleted when QEMU stops.
//!
//! `tests/qemu` uses the same command lines ([`qemu_command`] is mirrored
//! there) to drive the firmware with real clients.
use std::path::Path;
use std::process::Command;

use crate::cmd::{self, find_program, header};
use crate::firmware::{self, Profile, QEMU_MPS2_AN385};
use crate::Failure;

/// The firmware's address (its default boot argument `ip=`), QEMU user
/// networking's guest address.
pub const FIRMWARE_IP: &str = "10.0.2.15";
/// The other end: QEMU's NAT gateway, or the TAP device's address.
pub const HOST_SIDE_IP: &str = "10.0.2.2";
/// The firmware's passive ports (its `PASSIVE_PORTS`).
pub const PASSIVE_PORTS: (u16, u16) = (50000, 50007);
/// The fixed user (`USER` in the firmware's `src/main.rs`).
pub const USER: &str = "ferry";
/// Its password.
pub const PASSWORD: &str = "ferry";
/// The TAP device's name inside the namespace.
const TAP: &str = "fqemu0";

/// What booting the firmware needs beyond building it.
pub fn missing() -> Option<String> {
    let mut missing = Vec::new();
    if let Some(build) = firmware::missing() {
        missing.push(build);
    }
    if find_program("qemu-system-arm").is_none() {
        missing.push("qemu-system-arm (Debian package qemu-system-arm)".to_string());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// What `--tap` (and the test) needs beyond [`missing`].
pub fn tap_missing() -> Option<String> {
    let mut missing = Vec::new();
    if find_program("ip").is_none() {
        missing.push("ip (Debian package iproute2)");
    }
    if !Path::new("/dev/net/tun").exists() {
        missing.push("/dev/net/tun");
    }
    let uid = cmd::output(Command::new("id").arg("-u")).unwrap_or_default();
    if uid.trim() != "0" {
        missing.push("root (network namespaces)");
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The QEMU command line for `elf`, with `nic` as the `-nic` option and
/// `boot_args` as the firmware's boot arguments (semihosting). QEMU leaves
/// the terminal alone (no serial console, no monitor), so Ctrl-C stops it;
/// the firmware's log is QEMU's standard output.
pub fn qemu_command(elf: &Path, nic: &str, boot_args: &[&str]) -> Command {
    let mut semihosting = String::from("enable=on,target=native,arg=ferry");
    for arg in boot_args {
        semihosting.push_str(",arg=");
        semihosting.push_str(arg);
    }
    let mut qemu = Command::new("qemu-system-arm");
    qemu.args(["-cpu", "cortex-m3", "-M", "mps2-an385"])
        .args(["-display", "none", "-serial", "null", "-monitor", "none"])
        .args(["-semihosting-config", &semihosting])
        .args(["-nic", nic])
        .arg("-kernel")
        .arg(elf);
    qemu
}

/// `cargo xtask test`'s step: builds the firmware in each protocol profile
/// and drives both with real clients (`tests/qemu`, on a TAP device in a
/// namespace; pytest boots one profile after the other and stops QEMU in
/// every outcome). The tests also hold the firmware's stack figures to
/// [`firmware::QEMU_SERVING_STACK_LIMIT`].
pub fn test(root: &Path) -> Result<(), Failure> {
    let mut pytest = Command::new("python3");
    for profile in Profile::ALL {
        let elf = firmware::build_qemu(root, profile)?;
        pytest.env(firmware_variable(profile), &elf);
    }
    pytest
        .current_dir(root)
        .env(
            "FERRY_QEMU_STACK_LIMIT",
            firmware::QEMU_SERVING_STACK_LIMIT.to_string(),
        )
        .args(["-m", "pytest", "-q", "tests/qemu"]);
    cmd::run(&mut pytest)
}

/// The variable that tells `tests/qemu` where `profile`'s firmware is.
fn firmware_variable(profile: Profile) -> &'static str {
    match profile {
        Profile::Default => "FERRY_QEMU_FIRMWARE",
        Profile::Emftp => "FERRY_QEMU_FIRMWARE_EMFTP",
        Profile::Tls => "FERRY_QEMU_FIRMWARE_TLS",
    }
}

/// Runs the chore.
pub fn run(args: &[&str]) -> Result<(), Failure> {
    let mut tap = false;
    let mut verbose = false;
    let mut port: u16 = 2121;
    let mut implicit_port: u16 = 9990;
    let mut profile = Profile::Default;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--tap" => tap = true,
            "--verbose" => verbose = true,
            "--emftp" => profile = Profile::Emftp,
            "--tls" => profile = Profile::Tls,
            "--profile" => {
                profile = rest
                    .next()
                    .and_then(|p| Profile::parse(p))
                    .ok_or("--profile needs default, emftp or tls")?;
            }
            "--implicit-port" => {
                implicit_port = rest
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--implicit-port needs a port number")?;
            }
            "--port" => {
                port = rest
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a port number")?;
            }
            other => return Err(Failure(format!("qemu: unknown argument {other:?}"))),
        }
    }
    if let Some(missing) = missing() {
        return Err(Failure(format!("missing {missing}; run cargo xtask setup")));
    }
    if tap {
        if let Some(missing) = tap_missing() {
            return Err(Failure(format!("--tap needs {missing}")));
        }
    }
    let root = cmd::root();
    header(&format!(
        "build {}, {} profile",
        QEMU_MPS2_AN385.title,
        profile.name()
    ));
    let elf = firmware::build_qemu(&root, profile)?;
    let mut boot_args = Vec::new();
    if verbose {
        boot_args.push("verbose");
    }
    let tls = (profile == Profile::Tls).then_some(implicit_port);
    if tap {
        run_tap(&elf, &boot_args, tls.is_some())
    } else {
        run_user(&elf, port, tls, &boot_args)
    }
}

/// The firmware's implicit FTPS port (its boot argument's default).
const IMPLICIT_PORT: u16 = 990;

/// Boots with QEMU's user networking (NAT with forwarded ports); `tls`:
/// the TLS firmware, with implicit FTPS forwarded from that host port.
fn run_user(elf: &Path, port: u16, tls: Option<u16>, boot_args: &[&str]) -> Result<(), Failure> {
    let nic = user_nic(port, tls);
    let mut args = vec!["pasv=127.0.0.1"];
    args.extend_from_slice(boot_args);
    let mut qemu = qemu_command(elf, &nic, &args);
    header("boot in qemu-system-arm (user networking)");
    if let Some(implicit) = tls {
        println!(
            "\nFTPS (test certificate boards/qemu-mps2-an385/tls/cert.pem, TEST-ONLY RNG: not secure):\n\
             \x20 explicit (FTPES) 127.0.0.1:{port}   curl --ssl-reqd --cacert boards/qemu-mps2-an385/tls/cert.pem -u {USER}:{PASSWORD} ftp://127.0.0.1:{port}/\n\
             \x20 implicit (FTPS)  127.0.0.1:{implicit} -> {FIRMWARE_IP}:{IMPLICIT_PORT}   curl --cacert boards/qemu-mps2-an385/tls/cert.pem -u {USER}:{PASSWORD} ftps://127.0.0.1:{implicit}/"
        );
    }
    println!(
        "\nFerry on a Cortex-M3 in QEMU (mps2-an385), behind QEMU's NAT:\n\
         \x20 control port  127.0.0.1:{port} -> {FIRMWARE_IP}:21\n\
         \x20 passive ports 127.0.0.1:{}-{} -> the same ports (PASV names 127.0.0.1)\n\
         \x20 login         user {USER}, password {PASSWORD}\n\
         \x20 connect with  curl -u {USER}:{PASSWORD} ftp://127.0.0.1:{port}/\n\
         \x20               curl -u {USER}:{PASSWORD} -T FILE ftp://127.0.0.1:{port}/\n\
         \x20               lftp -u {USER},{PASSWORD} -p {port} 127.0.0.1\n\
         \x20 passive mode only: through the NAT, active mode (PORT/EPRT) is refused\n\
         \x20 by the bounce check; `cargo xtask qemu --tap` gives real addresses.\n\
         \x20 Ctrl-C stops QEMU.\n",
        PASSIVE_PORTS.0, PASSIVE_PORTS.1
    );
    let status = run_qemu(&mut qemu)?;
    report_exit(status)
}

/// QEMU's user networking: the control port, the passive ports and, with
/// `tls`, the implicit FTPS port forwarded from 127.0.0.1.
fn user_nic(port: u16, tls: Option<u16>) -> String {
    let mut nic = format!("user,model=lan9118,hostfwd=tcp:127.0.0.1:{port}-:21");
    if let Some(implicit) = tls {
        nic.push_str(&format!(
            ",hostfwd=tcp:127.0.0.1:{implicit}-:{IMPLICIT_PORT}"
        ));
    }
    for p in PASSIVE_PORTS.0..=PASSIVE_PORTS.1 {
        nic.push_str(&format!(",hostfwd=tcp:127.0.0.1:{p}-:{p}"));
    }
    nic
}

/// Boots on a TAP device in a network namespace made for the run.
fn run_tap(elf: &Path, boot_args: &[&str], tls: bool) -> Result<(), Failure> {
    let ns = Namespace::create(&format!("ferry-qemu-{}", std::process::id()))?;
    let nic = format!("tap,ifname={TAP},script=no,downscript=no,model=lan9118");
    let mut qemu = Command::new("ip");
    let inner = qemu_command(elf, &nic, boot_args);
    qemu.args(["netns", "exec", &ns.name])
        .arg(inner.get_program())
        .args(inner.get_args());
    header(&format!(
        "boot in qemu-system-arm (TAP device in namespace {})",
        ns.name
    ));
    let exec = format!("ip netns exec {}", ns.name);
    println!(
        "\nFerry on a Cortex-M3 in QEMU (mps2-an385), on TAP device {TAP} in network namespace {ns}:\n\
         \x20 firmware      {FIRMWARE_IP}:21 (the namespace's side is {HOST_SIDE_IP}/24)\n\
         \x20 login         user {USER}, password {PASSWORD}\n\
         \x20 connect with  {exec} curl -u {USER}:{PASSWORD} ftp://{FIRMWARE_IP}/\n\
         \x20               {exec} curl -u {USER}:{PASSWORD} -P - ftp://{FIRMWARE_IP}/   (active mode)\n\
         \x20               {exec} lftp -u {USER},{PASSWORD} {FIRMWARE_IP}\n\
         \x20 Ctrl-C stops QEMU and deletes the namespace.\n",
        ns = ns.name
    );
    if tls {
        println!(
            "FTPS: explicit on {FIRMWARE_IP}:21, implicit on {FIRMWARE_IP}:{IMPLICIT_PORT} \
             (test certificate boards/qemu-mps2-an385/tls/cert.pem; TEST-ONLY RNG: not secure)"
        );
    }
    let status = run_qemu(&mut qemu);
    drop(ns);
    let status = status?;
    report_exit(status)
}

/// QEMU's exit: Ctrl-C (SIGINT) is the normal end; the firmware stops QEMU
/// with exit code 1 after a panic or fault.
fn report_exit(status: std::process::ExitStatus) -> Result<(), Failure> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() || status.signal() == Some(SIGINT) {
        println!("\nqemu: stopped");
        Ok(())
    } else {
        Err(Failure(format!("qemu-system-arm exited with {status}")))
    }
}

const SIGINT: i32 = 2;

extern "C" {
    /// libc's `signal(2)`: `handler` is a function address, or 0 (default)
    /// or 1 (ignore).
    fn signal(signum: i32, handler: usize) -> usize;
}

/// Starts QEMU and waits for it with SIGINT ignored by xtask: Ctrl-C
/// stops QEMU (started before, so with the default action) while xtask
/// lives on to clean up and report.
fn run_qemu(qemu: &mut Command) -> Result<std::process::ExitStatus, Failure> {
    const SIG_DFL: usize = 0;
    const SIG_IGN: usize = 1;
    println!("$ {}", cmd::show(qemu));
    let mut child = qemu
        .spawn()
        .map_err(|e| Failure(format!("cannot start qemu-system-arm: {e}")))?;
    // SAFETY: `signal` with SIG_IGN or SIG_DFL installs no handler code,
    // and xtask has no SIGINT handling of its own to disturb.
    let previous = unsafe { signal(SIGINT, SIG_IGN) };
    let status = child.wait();
    // SAFETY: as above; puts back what was there.
    unsafe {
        signal(
            SIGINT,
            if previous == SIG_IGN {
                SIG_IGN
            } else {
                SIG_DFL
            },
        )
    };
    status.map_err(|e| Failure(format!("waiting for qemu-system-arm failed: {e}")))
}

/// A network namespace with a TAP device for QEMU, deleted on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create(name: &str) -> Result<Namespace, Failure> {
        cmd::run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Namespace {
            name: name.to_string(),
        };
        let cidr = format!("{HOST_SIDE_IP}/24");
        let steps: [&[&str]; 4] = [
            &["link", "set", "lo", "up"],
            &["tuntap", "add", "dev", TAP, "mode", "tap"],
            &["addr", "add", &cidr, "dev", TAP],
            &["link", "set", TAP, "up"],
        ];
        for step in steps {
            cmd::run(
                Command::new("ip")
                    .args(["netns", "exec", name, "ip"])
                    .args(step),
            )?;
        }
        Ok(ns)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace removes its TAP device too.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    #[test]
    fn user_networking_forwards_the_implicit_port_with_tls_only() {
        let plain = user_nic(2121, None);
        assert!(plain.contains("hostfwd=tcp:127.0.0.1:2121-:21,"), "{plain}");
        assert!(!plain.contains(":990"), "{plain}");
        let tls = user_nic(2121, Some(9990));
        assert!(tls.contains("hostfwd=tcp:127.0.0.1:9990-:990,"), "{tls}");
        assert!(tls.contains("hostfwd=tcp:127.0.0.1:50007-:50007"), "{tls}");
    }
}
