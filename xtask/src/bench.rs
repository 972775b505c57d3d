//! `cargo xtask bench [--quick] [--write]`: ferryd's speed, memory and CPU
//! time beside peer FTP servers, measured in the same run on loopback.
//!
//! Every server gets its own root, a free control port and its own passive
//! range, and the same client commands (Python's ftplib for the large
//! files, `xtask/bench/transfer.py`, and the small operations,
//! `xtask/bench/small_ops.py`; curl for the checked download and the
//! latency load). The roots
//! and the large file are on tmpfs (`/dev/shm`, when it exists with room
//! for four copies of the file; else `$TMPDIR`, which the machine line
//! then names with the reason), so that the servers' disk is memory. Each
//! server is configured to admit the idle sessions (item 9) and
//! [`SESSION_HEADROOM`] more, in all and from one address.
//!
//! 1. RETR of a large file (256 MiB; `--quick`: 32 MiB), read 256 KiB at a
//!    time and discarded (`transfer.py retr`): MiB/s from PASV to 226, the
//!    median of three runs, after one untimed curl download whose bytes
//!    are checked (size and SHA-256). Not curl for the timed runs: its
//!    16 KiB reads capped every server near the same figure.
//! 2. The loopback ceiling (`xtask/bench/ceiling.py`), before each round
//!    of RETRs: as many bytes over one TCP connection on 127.0.0.1 with no
//!    server, sent with `sendfile` from the large file and with `send` from
//!    memory, received into a buffer and discarded; the table gives
//!    ferryd's RETR and STOR as a share of the higher median. A third
//!    figure is an upload's own ceiling: `sendfile` again, the receiver
//!    splicing the bytes into a file on the servers' file system.
//! 3. STOR of a file as large, sent with `sendfile` (`transfer.py stor`):
//!    MiB/s from PASV to 226, the median of three runs; after each, the
//!    file on the server's disk must have the size and SHA-256 of the
//!    source, or the bench fails (moving wrong bytes fast is worthless).
//! 4. A session doing 500 (`--quick`: 100) rounds of STOR 1 KiB, RETR it
//!    (bytes compared), DELE: rounds per second; then 200 (100) fresh
//!    connections, each login, PWD, QUIT: connections per second; the
//!    median of three runs of each.
//! 5. Eight such sessions at once (processes of their own, distinct file
//!    names), 250 (50) rounds each: rounds per second over all, to the end
//!    of the slowest; the median of three runs. It runs after items 6 and
//!    7: it can leave a server's passive ports in TIME_WAIT.
//! 6. NOOP round trips (p50, p99) of one logged-in session, a NOOP every
//!    5 ms for 10 s (3 s), while four curl clients download the large file
//!    in a loop (`xtask/bench/latency.py downloads`). The timing is
//!    `xtask/bench/ftpctl.py`'s, shared with `brute_force.py`.
//! 7. The same while 40 connections guess the bench user's password
//!    (`latency.py guessing`); not vsftpd, whose anonymous user has none.
//! 8. Memory: the server process's `VmHWM` (peak RSS) before the idle
//!    sessions, and the peak of `VmRSS` summed over the server and its child
//!    processes until then, sampled every [`SAMPLE_EVERY`] (vsftpd and
//!    pure-ftpd fork per connection; their listener's own `VmHWM` is not
//!    what their sessions use).
//! 9. 1000 (`--quick`: 200) idle logged-in sessions at once from one
//!    process (`xtask/bench/idle_sessions.py`, asyncio): how many were
//!    admitted and the seconds to log them all in; the RSS summed over the
//!    server's processes with all held, less the same just before, per
//!    admitted session (and the same of anonymous PSS, which shares a
//!    forking server's common pages among its processes instead of
//!    counting them in each, and leaves out mapped files); then each QUITs
//!    (all must get their 221).
//! 10. CPU time of the server (`utime + stime + cutime + cstime` from
//!     `/proc/PID/stat`: reaped children included) over its life, and the
//!     part each workload took. vsftpd runs under a child subreaper
//!     (`xtask/bench/subreaper.py`) that reaps the session processes which
//!     outlive their parent: its `cutime`/`cstime` is added.
//!
//! All servers run at once, idle but for the one being measured; each run
//! of each workload goes to every server in turn, so that load from
//! elsewhere on the machine falls on all of them alike.
//!
//! 11. Issue 14's goals for ferryd (`bench/goals.rs`), each "met" or "not
//!     met" from this run's figures: at least 1.2x the best peer on every
//!     throughput row, RETR and STOR at least 0.8 of the loopback ceiling,
//!     at most 4 KiB of RSS per idle session (with every session admitted),
//!     a NOOP p99 under the downloads of at most 5 ms.
//! 12. FTPES (`bench/tls.rs`): RETR and STOR over TLS with `curl
//!     --ssl-reqd` and FTPS logins per second, beside pure-ftpd and vsftpd
//!     with TLS through OpenSSL.
//!
//! The peers: pyftpdlib (pip), its default asynchronous single-process
//! server; vsftpd (Debian), standalone as root with anonymous login;
//! pure-ftpd (Debian's package, unpacked by `cargo xtask setup`: it
//! conflicts with vsftpd's), standalone as root with one virtual user.
//! vsftpd will not chroot into a root its user can write, so the clients
//! work in a `bench/` directory of each server's root, the same path
//! everywhere. A missing peer is skipped with a loud line.
//!
//! Times come from the clients (curl's `time_total`, the helpers'
//! `time.perf_counter`); nothing asserts on them: the chore prints numbers,
//! and `--write` records them in docs/BENCHMARKS.md between
//! `<!-- bench:begin -->` and `<!-- bench:end -->`. It fails on wrong bytes
//! and on a server that misbehaves (exits, refuses a workload, does not
//! answer QUIT), except that a peer failing one of the concurrent workloads
//! (items 5, 6, 7, 9: they find the limits of a configuration) while its
//! server runs on has that row marked failed, the reason in the notes, and
//! goes on; ferryd failing any workload fails the bench. Every subprocess has a time limit, every server is stopped
//! by a guard (also on failure), and the temporary directory is removed.
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cmd::{self, find_program, header};
use crate::docs;
use crate::Failure;

mod goals;
mod load;
mod peers;
mod process;
mod report;
pub mod tls;

use load::{Idle, Latency, Load, DOWNLOADERS, GUESSERS, PARALLEL_CLIENTS, SESSION_HEADROOM};
use peers::{ferryd_launch, pure_ftpd_launch, pyftpdlib_launch, vsftpd_launch};
use process::{
    clock_ticks, curl_version, free_port, python_executable, python_version, read_status_kib,
    run_bounded, run_inherited, sha256, target_dir, Server,
};
use report::{median, notes, print_runs, provenance, table, Machine};

/// How much work one run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    /// Size of the RETR and STOR files, MiB.
    file_mib: u64,
    /// Timed runs of each large transfer (the median is reported).
    runs: usize,
    /// STOR + RETR + DELE rounds in one session.
    rounds: u32,
    /// Fresh connections, each login + PWD + QUIT.
    connections: u32,
    /// STOR + RETR + DELE rounds of each of the parallel clients.
    parallel_rounds: u32,
    /// Seconds of NOOPs under each load.
    noop_seconds: u32,
    /// Idle logged-in sessions held at once.
    idle_sessions: u32,
}

/// The full bench.
const FULL: Sizes = Sizes {
    file_mib: 256,
    runs: 3,
    rounds: 500,
    connections: 200,
    parallel_rounds: 250,
    noop_seconds: 10,
    idle_sessions: 1000,
};

/// `--quick`: a smoke run.
const QUICK: Sizes = Sizes {
    file_mib: 32,
    runs: 3,
    rounds: 100,
    connections: 100,
    parallel_rounds: 50,
    noop_seconds: 3,
    idle_sessions: 200,
};

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `--quick`: small files, few operations.
    pub quick: bool,
    /// `--write`: record the table in docs/BENCHMARKS.md.
    pub write: bool,
}

impl Options {
    /// Parses the arguments after `bench`; `None` for anything unknown.
    pub fn parse(args: &[&str]) -> Option<Options> {
        let mut options = Options::default();
        for arg in args {
            match *arg {
                "--quick" => options.quick = true,
                "--write" => options.write = true,
                _ => return None,
            }
        }
        Some(options)
    }

    fn sizes(self) -> Sizes {
        if self.quick {
            QUICK
        } else {
            FULL
        }
    }

    /// The command as the user would type it.
    fn command(self) -> String {
        let mut command = String::from("cargo xtask bench");
        if self.quick {
            command.push_str(" --quick");
        }
        if self.write {
            command.push_str(" --write");
        }
        command
    }
}

/// How often the memory sampler looks at the server's processes.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Passive ranges: server `i` gets `PASSIVE_BASE + i * PASSIVE_SPAN` and the
/// `PASSIVE_SPAN - 1` ports above it, below Linux's ephemeral range
/// (32768-60999 by default), so clients' ports never collide with them.
/// pure-ftpd admits at most half as many sessions as it has passive ports:
/// the span must be at least twice the bench's [`session_limit`] (1100).
const PASSIVE_BASE: u16 = 20_000;
/// See [`PASSIVE_BASE`].
const PASSIVE_SPAN: u16 = 2_500;
/// The directory, inside each server's root, that the clients work in (vsftpd
/// refuses to chroot anonymous users into a root they can write).
const WORK_DIR: &str = "bench";
/// The large file each server serves for RETR.
const RETR_NAME: &str = "big.bin";
/// Each server's standard output and error, in its directory.
const SERVER_LOG: &str = "server.log";
/// The login that ferryd and pyftpdlib get (vsftpd: anonymous).
const USER: &str = "bench";
/// See [`USER`].
const PASSWORD: &str = "bench";

/// Time limits of the subprocesses.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
const START_LIMIT: Duration = Duration::from_secs(15);
const STOP_LIMIT: Duration = Duration::from_secs(5);
const SETTLE_LIMIT: Duration = Duration::from_secs(5);
const TRANSFER_LIMIT: Duration = Duration::from_secs(150);
const CURL_MAX_TIME: &str = "120";
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);
const HASH_LIMIT: Duration = Duration::from_secs(120);
const QUICK_LIMIT: Duration = Duration::from_secs(10);

/// How `small_ops.py` starts the message of a wrong byte: the bench fails
/// on it in every workload.
const WRONG_BYTES: &str = "WRONG BYTES";

/// The servers compared, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Ferryd,
    Pyftpdlib,
    Vsftpd,
    PureFtpd,
}

const PEERS: [Peer; 4] = [Peer::Ferryd, Peer::Pyftpdlib, Peer::Vsftpd, Peer::PureFtpd];

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Ferryd => "ferryd",
            Peer::Pyftpdlib => "pyftpdlib",
            Peer::Vsftpd => "vsftpd",
            Peer::PureFtpd => "pure-ftpd",
        }
    }
}

/// What the bench found for one server.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ran(Box<Measured>),
    Skipped(String),
    Failed(String),
}

/// One server's row of results.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    peer: Peer,
    version: String,
    setup: String,
    outcome: Outcome,
}

/// The figures of one server.
#[derive(Debug, Clone, Default, PartialEq)]
struct Measured {
    /// MiB/s of each timed RETR.
    retr: Vec<f64>,
    /// MiB/s of each timed STOR.
    stor: Vec<f64>,
    /// Rounds per second of each session.
    rounds: Vec<f64>,
    /// Connections per second of each run.
    connections: Vec<f64>,
    /// Rounds per second over all parallel clients, of each run.
    parallel: Vec<f64>,
    /// NOOP round trips while clients download the large file.
    under_downloads: Option<Latency>,
    /// NOOP round trips while connections guess passwords, or why not run.
    under_guessing: Option<Result<Latency, String>>,
    /// The idle logged-in sessions.
    idle: Option<Idle>,
    /// The workloads this server failed alone (a peer whose server ran
    /// on), and why; their rows say "failed".
    failed_rows: Vec<(Phase, String)>,
    /// VmRSS once started and idle, KiB.
    rss_start_kib: u64,
    /// VmHWM of the server process before the idle sessions, KiB.
    hwm_kib: u64,
    /// Peak of VmRSS summed over the server's processes before the idle
    /// sessions, KiB (sampled).
    tree_peak_kib: u64,
    /// Whether the server had child processes (vsftpd's sessions).
    forks: bool,
    cpu: Cpu,
}

impl Phase {
    /// The workload's name in the notes.
    fn title(self) -> &'static str {
        match self {
            Phase::Retr => "RETR",
            Phase::Stor => "STOR",
            Phase::Rounds => "small files",
            Phase::Connections => "logins",
            Phase::Parallel => "8 small-files clients",
            Phase::UnderDownloads => "NOOPs under downloads",
            Phase::UnderGuessing => "NOOPs under password guessing",
            Phase::Idle => "idle sessions",
        }
    }
}

impl Measured {
    /// Why this server failed the workload `phase` alone, if it did.
    fn row_failure(&self, phase: Phase) -> Option<&str> {
        self.failed_rows
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, why)| why.as_str())
    }
}

/// Server CPU seconds: the whole run and each workload's part.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cpu {
    total: f64,
    retr: f64,
    stor: f64,
    rounds: f64,
    connections: f64,
    parallel: f64,
    under_downloads: f64,
    under_guessing: f64,
    idle: f64,
}

/// Runs the chore.
pub fn run(options: Options) -> Result<(), Failure> {
    let sizes = options.sizes();
    let root = cmd::root();
    for tool in ["curl", "python3", "sha256sum"] {
        if find_program(tool).is_none() {
            return Err(Failure(format!(
                "{tool} not found: the bench's clients need it (run cargo xtask setup)"
            )));
        }
    }

    header("bench: ferryd release build");
    run_inherited(
        cmd::cargo().args(["build", "--release", "-p", "ferryd", "--locked"]),
        BUILD_LIMIT,
    )?;
    let ferryd = target_dir(&root).join("release/ferryd");

    let machine = Machine::now();
    let python = python_executable()?;
    let clients = format!(
        "curl {}, Python {} ftplib",
        curl_version(),
        python_version(&python)
    );
    let work = TempDir::new(sizes.file_mib * MIB * 4 + 256 * MIB)?;
    header(&format!(
        "bench: a {} MiB file of pseudo-random bytes",
        sizes.file_mib
    ));
    let source = work.path().join("source.bin");
    write_pseudo_random(&source, sizes.file_mib * MIB)
        .map_err(|e| Failure(format!("cannot write {}: {e}", source.display())))?;
    let source_sha = sha256(&source).map_err(Failure)?;
    println!("{} sha256 {source_sha}", source.display());
    let source = Source {
        path: source,
        bytes: sizes.file_mib * MIB,
        sha256: source_sha,
    };
    let context = Context {
        root: root.clone(),
        work: work.path().to_path_buf(),
        python,
        ferryd,
        sizes,
        source,
        clk_tck: clock_ticks(),
    };

    let mut reports = Vec::new();
    let mut contenders = Vec::new();
    let mut ceiling = Ceiling::default();
    for (index, peer) in PEERS.iter().copied().enumerate() {
        header(&format!("bench: start {}", peer.name()));
        match start_peer(&context, peer, index) {
            Ok(contender) => contenders.push(contender),
            Err(report) => {
                match &report.outcome {
                    Outcome::Skipped(why) => println!("\n!!!! SKIPPED {}: {why}\n", peer.name()),
                    Outcome::Failed(why) => println!("\n!!!! FAILED {}: {why}\n", peer.name()),
                    Outcome::Ran(_) => {}
                }
                reports.push(report);
            }
        }
    }
    run_workloads(&context, &mut contenders, &mut ceiling);
    for contender in contenders {
        let report = contender.finish(&context);
        match &report.outcome {
            Outcome::Failed(why) => println!("\n!!!! FAILED {}: {why}\n", report.peer.name()),
            Outcome::Ran(measured) => print_runs(report.peer, measured),
            Outcome::Skipped(_) => {}
        }
        reports.push(report);
    }
    reports.sort_by_key(|r| PEERS.iter().position(|&p| p == r.peer));
    let machine = machine.finish();

    let table = table(&reports, &sizes, &ceiling);
    let notes = notes(&reports, &ceiling);
    let goals = goals::render(&goals::assess(&reports, &ceiling, &sizes));
    let machine = machine.describe(&clients, &work.describe());
    println!("\n{machine}");
    println!("\n{table}\n{goals}{notes}");

    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Failed(why) => Some(format!("{}: {why}", r.peer.name())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(Failure(format!(
            "the bench failed on {} (docs/BENCHMARKS.md left unchanged)",
            failed.join("; ")
        )));
    }
    // The FTPES rows, with their own servers (the plain ones are stopped).
    let tls_table = tls::run(&context)?;
    println!("\n{tls_table}");
    if options.write {
        let section = format!(
            "{}\n\n{machine}\n\n{table}\n{goals}{notes}\n{tls_table}",
            provenance(&root, options),
        );
        docs::update_section(&root.join("docs/BENCHMARKS.md"), "bench", &section)?;
        println!("\nwrote docs/BENCHMARKS.md");
    }
    Ok(())
}

/// What every server's bench shares.
struct Context {
    root: PathBuf,
    work: PathBuf,
    python: PathBuf,
    ferryd: PathBuf,
    sizes: Sizes,
    source: Source,
    clk_tck: u64,
}

/// The large file, its size and hash.
struct Source {
    path: PathBuf,
    bytes: u64,
    sha256: String,
}

const MIB: u64 = 1024 * 1024;

/// The loopback ceiling (`xtask/bench/ceiling.py`): MiB/s of each run.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ceiling {
    /// sendfile from the large file (on the servers' file system) to a
    /// socket, the receiver discarding.
    sendfile: Vec<f64>,
    /// write from memory, the same receiver.
    write: Vec<f64>,
    /// sendfile from the large file, the receiver splicing the bytes into
    /// a file on the servers' file system: an upload's own ceiling.
    to_file: Vec<f64>,
    /// Why there are no figures, if the script failed.
    failed: Option<String>,
}

impl Ceiling {
    /// The higher of the two medians, the one ferryd is compared with.
    fn best(&self) -> Option<f64> {
        match (median(&self.sendfile), median(&self.write)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Sessions each server is configured to admit: the idle ones and a margin.
fn session_limit(sizes: &Sizes) -> u32 {
    sizes.idle_sessions + SESSION_HEADROOM
}

/// Prepares and starts one server; a report of why not if it cannot run.
fn start_peer(context: &Context, peer: Peer, index: usize) -> Result<Contender, Report> {
    let mut report = Report {
        peer,
        version: String::new(),
        setup: String::new(),
        outcome: Outcome::Skipped(String::new()),
    };
    let dir = context.work.join(peer.name());
    let port = match free_port() {
        Ok(port) => port,
        Err(e) => {
            report.outcome = Outcome::Failed(format!("no free port: {e}"));
            return Err(report);
        }
    };
    let offset = PASSIVE_SPAN * u16::try_from(index).unwrap_or(0);
    let passive = (
        PASSIVE_BASE + offset,
        PASSIVE_BASE + offset + PASSIVE_SPAN - 1,
    );
    let sessions = session_limit(&context.sizes);
    let prepared = fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        .and_then(|()| match peer {
            Peer::Ferryd => ferryd_launch(context, &dir, port, passive, Some(sessions)),
            Peer::Pyftpdlib => pyftpdlib_launch(context, &dir, port, passive, sessions),
            Peer::Vsftpd => vsftpd_launch(context, &dir, port, passive, Some(sessions)),
            Peer::PureFtpd => pure_ftpd_launch(context, &dir, port, passive, Some(sessions), None),
        });
    let launch = match prepared {
        Ok(launch) => launch,
        // A peer that is missing is left out; ferryd must run.
        Err(why) if peer == Peer::Ferryd => {
            report.outcome = Outcome::Failed(why);
            return Err(report);
        }
        Err(why) => {
            report.outcome = Outcome::Skipped(why);
            return Err(report);
        }
    };
    report.version = launch.version;
    report.setup = launch.setup;
    let served = dir.join("root").join(WORK_DIR);
    if let Err(e) = link_or_copy(&context.source.path, &served.join(RETR_NAME)) {
        report.outcome = Outcome::Failed(format!("cannot place {RETR_NAME}: {e}"));
        return Err(report);
    }
    let mut command = launch.command;
    let started = Server::start(&mut command, &dir.join(SERVER_LOG), port, launch.wrapped);
    let server = match started {
        Ok(server) => server,
        Err(why) => {
            // A peer that cannot run here is left out; ferryd must run.
            report.outcome = if peer == Peer::Ferryd {
                Outcome::Failed(why)
            } else {
                Outcome::Skipped(format!("cannot run it here: {why}"))
            };
            return Err(report);
        }
    };
    let client = Client {
        port,
        user: launch.user,
        password: launch.password,
        served,
        scratch: dir.clone(),
    };
    let measured = Measured {
        rss_start_kib: read_status_kib(server.pid(), "VmRSS").unwrap_or(0),
        ..Measured::default()
    };
    Ok(Contender {
        report,
        server,
        client,
        measured,
        failed: None,
    })
}

/// How the clients reach one server.
struct Client {
    port: u16,
    user: String,
    password: String,
    /// The server's `bench/` directory on disk.
    served: PathBuf,
    /// Where client-side files go.
    scratch: PathBuf,
}

impl Client {
    fn url(&self, name: &str) -> String {
        format!(
            "ftp://{}:{}@127.0.0.1:{}/{WORK_DIR}/{name}",
            self.user, self.password, self.port
        )
    }

    /// curl with the options every transfer shares: passive mode (EPSV,
    /// then PASV), no `.curlrc`, bounded.
    fn curl(&self) -> Command {
        let mut curl = Command::new("curl");
        curl.args([
            "--disable",
            "--silent",
            "--show-error",
            "--ftp-pasv",
            "--connect-timeout",
            "10",
            "--max-time",
            CURL_MAX_TIME,
        ]);
        curl
    }

    /// Downloads `name` to `output`: (bytes, seconds) as curl saw them.
    fn retr(&self, name: &str, output: &Path) -> Result<(u64, f64), String> {
        let mut curl = self.curl();
        curl.arg("--output")
            .arg(output)
            .args(["--write-out", "%{size_download} %{time_total}"])
            .arg(self.url(name));
        println!("$ {}", cmd::show(&curl));
        let out = run_bounded(&mut curl, Stdio::null(), TRANSFER_LIMIT)?;
        parse_curl(&out).ok_or_else(|| format!("curl printed {out:?}"))
    }

    /// A timed RETR of `name` (discarded) or, with `source`, STOR of it as
    /// `name`, by `xtask/bench/transfer.py`: (bytes, seconds from PASV to
    /// 226).
    fn transfer(
        &self,
        context: &Context,
        name: &str,
        source: Option<&Path>,
    ) -> Result<(u64, f64), String> {
        let mut python = Command::new(&context.python);
        python
            .arg(context.root.join("xtask/bench/transfer.py"))
            .arg(if source.is_some() { "stor" } else { "retr" })
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args([&self.user, &self.password, WORK_DIR, name]);
        if let Some(source) = source {
            python.arg(source);
        }
        println!("$ {}", cmd::show(&python));
        let out = run_bounded(&mut python, Stdio::null(), TRANSFER_LIMIT)?;
        parse_transfer(&out).ok_or_else(|| format!("transfer.py printed {out:?}"))
    }

    /// Runs `small_ops.py MODE ... count`: operations per second.
    fn small_ops(&self, context: &Context, mode: &str, count: u32) -> Result<f64, String> {
        let mut python = Command::new(&context.python);
        python
            .arg(context.root.join("xtask/bench/small_ops.py"))
            .args([mode, "127.0.0.1"])
            .arg(self.port.to_string())
            .args([&self.user, &self.password, WORK_DIR])
            .arg(count.to_string());
        println!("$ {}", cmd::show(&python));
        let out = run_bounded(&mut python, Stdio::null(), SCRIPT_LIMIT)?;
        let (done, seconds) =
            parse_small_ops(&out).ok_or_else(|| format!("small_ops.py printed {out:?}"))?;
        if done != u64::from(count) || seconds <= 0.0 {
            return Err(format!("small_ops.py did {done} of {count} in {seconds} s"));
        }
        Ok(done as f64 / seconds)
    }
}

/// A started server and what has been measured of it so far.
struct Contender {
    /// Its name, version and setup; the outcome is set by [`Contender::finish`].
    report: Report,
    server: Server,
    client: Client,
    measured: Measured,
    /// Why it failed: it is stopped, and takes no further steps.
    failed: Option<String>,
}

/// A workload, whose CPU time is counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Retr,
    Stor,
    Rounds,
    Connections,
    Parallel,
    UnderDownloads,
    UnderGuessing,
    Idle,
}

impl Contender {
    /// Runs one step against this server unless it failed before: the server
    /// is settled before and after, and the CPU time it took goes to `phase`.
    /// A failure stops the server.
    fn step<T>(
        &mut self,
        context: &Context,
        phase: Option<Phase>,
        work: impl FnOnce(&Client, &Server) -> Result<T, String>,
    ) -> Option<T> {
        if self.failed.is_some() {
            return None;
        }
        match self.timed(context, phase, work) {
            Ok(value) => Some(value),
            Err(why) => {
                self.fail(why);
                None
            }
        }
    }

    /// Fails this server for `why` (shown with the end of its log) and
    /// stops it: no further workload runs against it.
    fn fail(&mut self, why: String) {
        println!(
            "---- {} failed: {why}\n---- its log, last lines ----\n{}",
            self.report.peer.name(),
            self.server.log_tail()
        );
        self.failed = Some(why);
        self.server.stop();
    }

    /// Runs one step of a workload in which a peer's failure is its row's
    /// alone (the concurrent workloads, which find the limits of a server's
    /// configuration): if the server still runs and the bytes were not
    /// wrong, the reason is recorded against `phase` and the server goes
    /// on. ferryd's failure, wrong bytes, or a server that exited fail the
    /// server as [`Contender::step`] does. `None` once failed either way.
    fn row_step<T>(
        &mut self,
        context: &Context,
        phase: Phase,
        work: impl FnOnce(&Client, &Server) -> Result<T, String>,
    ) -> Option<T> {
        if self.failed.is_some() || self.row_failure(phase).is_some() {
            return None;
        }
        match self.timed(context, Some(phase), work) {
            Ok(value) => Some(value),
            Err(why) => {
                let alone = self.report.peer != Peer::Ferryd
                    && !why.contains(WRONG_BYTES)
                    && self.server.check_running().is_ok();
                if alone {
                    println!(
                        "---- {} failed this workload (its row says so; it goes on): {why}\n\
                         ---- its log, last lines ----\n{}",
                        self.report.peer.name(),
                        self.server.log_tail()
                    );
                    self.measured.failed_rows.push((phase, why));
                } else {
                    self.fail(why);
                }
                None
            }
        }
    }

    /// Why this server failed the workload `phase` alone, if it did.
    fn row_failure(&self, phase: Phase) -> Option<&str> {
        self.measured.row_failure(phase)
    }

    fn timed<T>(
        &mut self,
        context: &Context,
        phase: Option<Phase>,
        work: impl FnOnce(&Client, &Server) -> Result<T, String>,
    ) -> Result<T, String> {
        self.server.settle();
        let before = self.server.cpu_ticks()?;
        let value = work(&self.client, &self.server);
        self.server.check_running()?;
        let value = value?;
        self.server.settle();
        let after = self.server.cpu_ticks()?;
        let seconds = after.saturating_sub(before) as f64 / context.clk_tck as f64;
        let cpu = &mut self.measured.cpu;
        match phase {
            Some(Phase::Retr) => cpu.retr += seconds,
            Some(Phase::Stor) => cpu.stor += seconds,
            Some(Phase::Rounds) => cpu.rounds += seconds,
            Some(Phase::Connections) => cpu.connections += seconds,
            Some(Phase::Parallel) => cpu.parallel += seconds,
            Some(Phase::UnderDownloads) => cpu.under_downloads += seconds,
            Some(Phase::UnderGuessing) => cpu.under_guessing += seconds,
            Some(Phase::Idle) => cpu.idle += seconds,
            None => {}
        }
        Ok(value)
    }

    /// Records the memory peaks so far (VmHWM, the sampler's summed peak),
    /// before the idle sessions raise them.
    fn snapshot_peaks(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let pid = self.server.pid();
        let hwm = self.server.check_running().and_then(|()| {
            read_status_kib(pid, "VmHWM").ok_or_else(|| format!("cannot read /proc/{pid}/status"))
        });
        match hwm {
            Ok(hwm) => self.measured.hwm_kib = hwm,
            Err(why) => {
                self.fail(why);
                return;
            }
        }
        let (tree_peak, forks) = self.server.stop_sampling();
        self.measured.tree_peak_kib = tree_peak;
        self.measured.forks = forks;
    }

    /// Reads the final figures, stops the server, and says how it went.
    fn finish(mut self, context: &Context) -> Report {
        let finals = self.server.cpu_ticks();
        let (_, forks) = self.server.sampled();
        self.server.stop();
        let mut report = self.report;
        report.outcome = match (self.failed, finals) {
            (Some(why), _) | (None, Err(why)) => Outcome::Failed(why),
            (None, Ok(ticks)) => {
                let mut measured = self.measured;
                measured.cpu.total = ticks as f64 / context.clk_tck as f64;
                measured.forks |= forks;
                Outcome::Ran(Box::new(measured))
            }
        };
        report
    }
}

/// The contenders in their order for run `run` of a workload: every one,
/// starting with a different one each run.
fn in_turn<T>(contenders: &mut [T], run: usize) -> impl Iterator<Item = &mut T> {
    let (before, from) = contenders.split_at_mut(run % contenders.len().max(1));
    from.iter_mut().chain(before)
}

/// The workloads, interleaved: each run of each workload goes to every
/// server in turn (starting with a different one each run), so that load
/// from elsewhere on the machine falls on all of them alike; the loopback
/// ceiling takes its turn before the servers' RETRs.
fn run_workloads(context: &Context, contenders: &mut [Contender], ceiling: &mut Ceiling) {
    let sizes = context.sizes;
    let source = &context.source;

    header("bench: one checked RETR each (untimed)");
    for contender in contenders.iter_mut() {
        contender.step(context, None, |client, _| {
            let check = client.scratch.join("retr-check.bin");
            let (bytes, _) = client.retr(RETR_NAME, &check)?;
            verify(&check, bytes, source).map_err(|e| format!("RETR {RETR_NAME}: {e}"))?;
            fs::remove_file(&check).map_err(|e| format!("cannot remove {}: {e}", check.display()))
        });
    }

    header(&format!(
        "bench: RETR {} MiB, and the loopback ceiling",
        sizes.file_mib
    ));
    for run in 0..sizes.runs {
        if ceiling.failed.is_none() {
            match load::ceiling(context) {
                Ok((sendfile, write, to_file)) => {
                    ceiling.sendfile.push(sendfile);
                    ceiling.write.push(write);
                    ceiling.to_file.push(to_file);
                }
                Err(why) => {
                    println!("\n!!!! the loopback ceiling failed: {why}\n");
                    ceiling.failed = Some(why);
                }
            }
        }
        for contender in in_turn(contenders, run) {
            let rate = contender.step(context, Some(Phase::Retr), |client, _| {
                let (bytes, secs) = client.transfer(context, RETR_NAME, None)?;
                if bytes != source.bytes {
                    return Err(format!("RETR moved {bytes} bytes of {}", source.bytes));
                }
                Ok(mib_per_s(bytes, secs))
            });
            contender.measured.retr.extend(rate);
        }
    }

    header(&format!(
        "bench: STOR {} MiB, each checked on disk",
        sizes.file_mib
    ));
    for run in 0..sizes.runs {
        for contender in in_turn(contenders, run) {
            let rate = contender.step(context, Some(Phase::Stor), |client, _| {
                let name = format!("up-{run}.bin");
                let (bytes, secs) = client.transfer(context, &name, Some(&source.path))?;
                let on_disk = client.served.join(&name);
                verify(&on_disk, bytes, source).map_err(|e| format!("STOR {name}: {e}"))?;
                fs::remove_file(&on_disk)
                    .map_err(|e| format!("cannot remove {}: {e}", on_disk.display()))?;
                Ok(mib_per_s(bytes, secs))
            });
            contender.measured.stor.extend(rate);
        }
    }

    header("bench: small files and logins");
    for run in 0..sizes.runs {
        for contender in in_turn(contenders, run) {
            let rate = contender.step(context, Some(Phase::Rounds), |client, _| {
                client.small_ops(context, "rounds", sizes.rounds)
            });
            contender.measured.rounds.extend(rate);
        }
    }
    for run in 0..sizes.runs {
        for contender in in_turn(contenders, run) {
            let rate = contender.step(context, Some(Phase::Connections), |client, _| {
                client.small_ops(context, "connections", sizes.connections)
            });
            contender.measured.connections.extend(rate);
        }
    }

    header(&format!(
        "bench: NOOP round trips while {DOWNLOADERS} curl clients download {RETR_NAME}"
    ));
    for contender in contenders.iter_mut() {
        let latency = contender.row_step(context, Phase::UnderDownloads, |client, _| {
            client.latency(context, Load::Downloads, source.bytes, sizes.noop_seconds)
        });
        contender.measured.under_downloads = latency;
    }

    header(&format!(
        "bench: NOOP round trips while {GUESSERS} connections guess passwords"
    ));
    for contender in contenders.iter_mut() {
        if contender.report.peer == Peer::Vsftpd {
            contender.measured.under_guessing = Some(Err(
                "anonymous only (no password is asked, none to guess)".into(),
            ));
            continue;
        }
        let latency = contender.row_step(context, Phase::UnderGuessing, |client, _| {
            client.latency(context, Load::Guessing, source.bytes, sizes.noop_seconds)
        });
        contender.measured.under_guessing = latency.map(Ok);
    }

    // After the NOOP rows: a server that leaves its passive ports in
    // TIME_WAIT here (pure-ftpd) would otherwise fail those rows too.
    header(&format!(
        "bench: {PARALLEL_CLIENTS} small-files clients at once, {} rounds each",
        sizes.parallel_rounds
    ));
    for run in 0..sizes.runs {
        for contender in in_turn(contenders, run) {
            let rate = contender.row_step(context, Phase::Parallel, |client, _| {
                client.parallel_rounds(context, sizes.parallel_rounds)
            });
            contender.measured.parallel.extend(rate);
            if contender.row_failure(Phase::Parallel).is_some() {
                // A row with a failed run has no median.
                contender.measured.parallel.clear();
            }
        }
    }

    // The memory peaks of the workloads above, before the idle sessions;
    // the samplers stop (scanning thousands of vsftpd processes every
    // SAMPLE_EVERY would load the CPUs the logins need).
    for contender in contenders.iter_mut() {
        contender.snapshot_peaks();
    }
    header(&format!(
        "bench: {} idle logged-in sessions at once",
        sizes.idle_sessions
    ));
    for contender in contenders.iter_mut() {
        let idle = contender.row_step(context, Phase::Idle, |client, server| {
            client.idle_sessions(context, server, sizes.idle_sessions)
        });
        contender.measured.idle = idle;
    }
}

/// Checks that the file at `path` is the source: curl's byte count, the size
/// on disk, the SHA-256.
fn verify(path: &Path, moved: u64, source: &Source) -> Result<(), String> {
    let size = fs::metadata(path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?
        .len();
    if moved != source.bytes || size != source.bytes {
        return Err(format!(
            "curl moved {moved} bytes and {size} are on disk, of {}",
            source.bytes
        ));
    }
    let sha = sha256(path)?;
    if sha != source.sha256 {
        return Err(format!(
            "the bytes differ: sha256 {sha}, the source's {}",
            source.sha256
        ));
    }
    Ok(())
}

fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / MIB as f64 / seconds
    } else {
        0.0
    }
}

/// A hard link (the servers read the same cached pages), or a copy.
fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::hard_link(from, to).or_else(|_| fs::copy(from, to).map(|_| ()))
}

/// Writes `bytes` of xorshift output: incompressible, and the same each run.
fn write_pseudo_random(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = File::create(path)?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; MIB as usize];
    let mut left = bytes;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(MIB);
        file.write_all(&chunk[..n as usize])?;
        left -= n;
    }
    file.sync_all()
}

/// A temporary directory, removed when dropped: the servers' roots, the
/// large file, the clients' scratch files.
struct TempDir {
    path: PathBuf,
    /// What the machine line says of where it is.
    about: String,
}

/// Where the temporary directory goes first: tmpfs, so that the servers'
/// disk is memory (as issue 14 measured), not the machine's disk.
const SHM: &str = "/dev/shm";

impl TempDir {
    /// `/dev/shm/ferry-bench-PID` when `/dev/shm` exists with `needed`
    /// bytes free, else `$TMPDIR/ferry-bench-PID`; first removes, in both,
    /// those of earlier runs whose process is gone (stopped by a signal,
    /// they could not clean up).
    fn new(needed: u64) -> Result<TempDir, Failure> {
        let shm = Path::new(SHM);
        let temp = std::env::temp_dir();
        for base in [shm, temp.as_path()] {
            remove_stale(base);
        }
        let free = shm.is_dir().then(|| free_bytes(shm)).flatten();
        let (base, why) = match free {
            Some(free) if free >= needed => (shm.to_path_buf(), String::new()),
            Some(free) => (
                temp,
                format!(
                    " ({SHM} has {} MiB free, short of the {} MiB needed)",
                    free / MIB,
                    needed / MIB
                ),
            ),
            None => (temp, format!(" ({SHM} is missing or unreadable)")),
        };
        let path = base.join(format!("ferry-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .map_err(|e| Failure(format!("cannot create {}: {e}", path.display())))?;
        let kind = file_system_type(&path).unwrap_or_else(|| "file system unknown".into());
        let about = format!(
            "Server roots and the large file in {} ({kind}){why}.",
            base.display()
        );
        Ok(TempDir { path, about })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Where it is, for the machine line.
    fn describe(&self) -> String {
        self.about.clone()
    }
}

/// Removes `base/ferry-bench-PID` directories whose process is gone.
fn remove_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stale = name
            .to_str()
            .and_then(|n| n.strip_prefix("ferry-bench-"))
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Bytes free for us on the file system of `path` (`df -Pk`).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = process::quiet(Command::new("df").arg("-Pk").arg(path)).ok()?;
    parse_df_available_kib(&out).map(|kib| kib * 1024)
}

/// The "Available" column (KiB) of `df -Pk`'s one file system line.
fn parse_df_available_kib(out: &str) -> Option<u64> {
    out.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// The type of the file system of `path` (`stat -f`): "tmpfs", "ext2/ext3".
fn file_system_type(path: &Path) -> Option<String> {
    process::quiet(Command::new("stat").args(["-f", "-c", "%T"]).arg(path))
        .ok()
        .filter(|t| !t.is_empty())
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---- parsing the clients' output ----

/// curl's `--write-out "%{size_*} %{time_total}"`: (bytes, seconds).
fn parse_curl(out: &str) -> Option<(u64, f64)> {
    let mut parts = out.split_whitespace();
    let bytes = parts.next()?.parse().ok()?;
    let seconds = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((bytes, seconds))
}

/// small_ops.py's `{"count": N, "seconds": S}`.
fn parse_transfer(out: &str) -> Option<(u64, f64)> {
    Some((
        json_field(out, "bytes")?.parse().ok()?,
        json_field(out, "seconds")?.parse().ok()?,
    ))
}

fn parse_small_ops(out: &str) -> Option<(u64, f64)> {
    Some((
        json_field(out, "count")?.parse().ok()?,
        json_field(out, "seconds")?.parse().ok()?,
    ))
}

/// A scalar field of the last line of `out` that starts with `{` (the one
/// line of JSON a helper script prints), as written: `"name": VALUE`.
fn json_field<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    let start = line.find(&format!("\"{name}\":"))? + name.len() + 3;
    let value = line.get(start..)?.trim_start();
    let end = value.find([',', '}']).unwrap_or(value.len());
    value.get(..end).map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]), Some(Options::default()));
        let both = Options::parse(&["--write", "--quick"]).unwrap();
        assert!(both.quick && both.write);
        assert_eq!(both.command(), "cargo xtask bench --quick --write");
        assert_eq!(both.sizes(), QUICK);
        assert_eq!(Options::default().sizes(), FULL);
        assert_eq!(Options::parse(&["--fast"]), None);
    }

    #[test]
    fn client_outputs() {
        assert_eq!(
            parse_curl("268435456 0.512345"),
            Some((268_435_456, 0.512345))
        );
        assert_eq!(parse_curl("268435456"), None);
        assert_eq!(parse_curl("1 2 3"), None);
        assert_eq!(
            parse_small_ops("{\"count\": 500, \"seconds\": 1.25}\n"),
            Some((500, 1.25))
        );
        assert_eq!(
            parse_small_ops("noise\n{\"seconds\": 2e-3, \"count\": 7}"),
            Some((7, 0.002))
        );
        assert_eq!(parse_small_ops("{\"count\": 1}"), None);
        assert_eq!(
            parse_transfer("{\"bytes\": 33554432, \"seconds\": 0.0125}\n"),
            Some((33_554_432, 0.0125))
        );
        assert_eq!(parse_transfer("{\"bytes\": 1}"), None);
    }

    #[test]
    fn script_fields() {
        let out = "log line\n{\"held\": 64, \"of\": 200, \"seconds\": 0.5}\n";
        assert_eq!(json_field(out, "held"), Some("64"));
        assert_eq!(json_field(out, "seconds"), Some("0.5"));
        assert_eq!(json_field(out, "late"), None);
    }

    #[test]
    fn free_space_and_limits() {
        let df = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n\
                  tmpfs             24729748 2275000  22454748      10% /dev/shm\n";
        assert_eq!(parse_df_available_kib(df), Some(22_454_748));
        assert_eq!(parse_df_available_kib("Filesystem\n"), None);
        assert_eq!(session_limit(&FULL), 1100);
        assert_eq!(session_limit(&QUICK), 300);
        // pure-ftpd's sessions are capped at half its passive ports, and
        // every range stays below the ephemeral ports (32768).
        assert!(u32::from(PASSIVE_SPAN) >= 2 * session_limit(&FULL));
        let servers = u32::try_from(PEERS.len()).unwrap();
        assert!(u32::from(PASSIVE_BASE) + servers * u32::from(PASSIVE_SPAN) <= 30_000);
    }

    #[test]
    fn each_run_starts_with_the_next_contender() {
        let mut servers = [0, 1, 2, 3];
        for run in 0..9 {
            let order: Vec<i32> = in_turn(&mut servers, run).map(|s| *s).collect();
            let expected: Vec<i32> = (0..4).map(|k| ((k + run) % 4) as i32).collect();
            assert_eq!(order, expected, "run {run}");
        }
        let mut none: [i32; 0] = [];
        assert_eq!(in_turn(&mut none, 3).count(), 0);
    }

    #[test]
    fn the_ceiling_is_the_higher_median() {
        let ceiling = Ceiling {
            sendfile: vec![1.0, 5.0, 3.0],
            write: vec![4.0],
            to_file: vec![2.0],
            failed: None,
        };
        assert_eq!(ceiling.best(), Some(4.0));
        let only_write = Ceiling {
            sendfile: vec![],
            ..ceiling
        };
        assert_eq!(only_write.best(), Some(4.0));
        assert_eq!(Ceiling::default().best(), None);
    }

    #[test]
    fn transfer_rates() {
        assert_eq!(mib_per_s(256 * MIB, 0.5), 512.0);
        assert_eq!(mib_per_s(1, 0.0), 0.0);
    }
}
