//! The processes of `cargo xtask bench`: servers that a guard stops, a
//! sampler of their memory, what `/proc` says of them, and subprocesses run
//! with a time limit.
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{HASH_LIMIT, QUICK_LIMIT, SAMPLE_EVERY, SETTLE_LIMIT, START_LIMIT, STOP_LIMIT};
use crate::cmd;
use crate::Failure;

/// A started server; dropping it stops it. It stays in our process group,
/// so that Ctrl-C reaches it too.
pub(super) struct Server {
    /// The started process.
    child: Child,
    /// The server's own process: `child`, or its child when wrapped.
    pid: u32,
    log: PathBuf,
    sampler: Option<Sampler>,
    stopped: bool,
}

impl Server {
    /// Starts `command`, logging to `log`, and waits for its `220` greeting
    /// on `port`. `wrapped`: the server is the started process's only child.
    pub(super) fn start(
        command: &mut Command,
        log: &Path,
        port: u16,
        wrapped: bool,
    ) -> Result<Server, String> {
        // Appending: vsftpd writes its own log to the same file.
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        println!("$ {}", cmd::show(command));
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", cmd::show(command)))?;
        let mut server = Server {
            pid: child.id(),
            child,
            log: log.to_path_buf(),
            sampler: None,
            stopped: false,
        };
        // The wrapped server is found before anyone connects: until then
        // it is its wrapper's only child.
        let found = if wrapped {
            server.find_wrapped()
        } else {
            Ok(())
        };
        let ready = found.and_then(|()| server.wait_ready(port));
        if let Err(why) = ready {
            let tail = server.log_tail();
            server.stop();
            return Err(format!("{why}; its log: {tail}"));
        }
        server.settle();
        server.sampler = Some(Sampler::start(server.child.id(), server.pid()));
        Ok(server)
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's CPU time in clock ticks: its own, its reaped children's,
    /// and those its wrapper reaped.
    pub(super) fn cpu_ticks(&self) -> Result<u64, String> {
        let unreadable = |pid| format!("cannot read /proc/{pid}/stat");
        let server = read_stat(self.pid).ok_or_else(|| unreadable(self.pid))?;
        let leader = self.child.id();
        if leader == self.pid {
            return Ok(server.ticks);
        }
        let wrapper = read_stat(leader).ok_or_else(|| unreadable(leader))?;
        Ok(server.ticks + wrapper.children)
    }

    /// Waits until the server's helper processes (vsftpd's sessions) are
    /// gone and reaped, so that their CPU time is counted.
    pub(super) fn settle(&self) {
        let deadline = Instant::now() + SETTLE_LIMIT;
        while Instant::now() < deadline && !helpers(self.child.id(), self.pid).is_empty() {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sets `pid` to the wrapper's child, once there is one.
    fn find_wrapped(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        let leader = self.child.id();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("its wrapper exited with {status}"));
            }
            let children: Vec<u32> = proc_table()
                .into_iter()
                .filter(|&(_, ppid)| ppid == leader)
                .map(|(pid, _)| pid)
                .collect();
            match children.as_slice() {
                [] if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                [pid] => {
                    self.pid = *pid;
                    return Ok(());
                }
                _ => return Err(format!("its wrapper {leader} has children {children:?}")),
            }
        }
    }

    fn wait_ready(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited with {status}"));
            }
            if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .map_err(|e| e.to_string())?;
                let mut greeting = String::new();
                BufReader::new(stream)
                    .read_line(&mut greeting)
                    .map_err(|e| format!("no greeting on port {port}: {e}"))?;
                return if greeting.starts_with("220") {
                    Ok(())
                } else {
                    Err(format!("it greeted with {:?}", greeting.trim_end()))
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing listens on port {port} after {START_LIMIT:?}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if the started process has exited (the server crashed or quit),
    /// with its exit status.
    pub(super) fn check_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("it exited with {status}")),
            Err(e) => Err(format!("cannot wait for it: {e}")),
        }
    }

    /// VmRSS and anonymous PSS summed over the server and its helper
    /// processes now, KiB. Anonymous PSS (`Pss_Anon` of
    /// `/proc/PID/smaps_rollup`) divides each page a forking server's
    /// processes share among them, and leaves out mapped files (libraries),
    /// whose share moves when other processes map the same files (the
    /// Python clients map libpython and libc too).
    pub(super) fn memory_kib(&self) -> (u64, u64) {
        let pids: Vec<u32> = std::iter::once(self.pid)
            .chain(helpers(self.child.id(), self.pid))
            .collect();
        let rss = pids
            .iter()
            .filter_map(|&p| read_status_kib(p, "VmRSS"))
            .sum();
        let pss = pids
            .iter()
            .filter_map(|&p| {
                let text = fs::read_to_string(format!("/proc/{p}/smaps_rollup")).ok()?;
                parse_status_kib(&text, "Pss_Anon")
            })
            .sum();
        (rss, pss)
    }

    /// Stops the sampler (its scans of `/proc` cost CPU that thousands of
    /// processes make noticeable): its peak and whether it saw children.
    pub(super) fn stop_sampling(&mut self) -> (u64, bool) {
        let sampled = self.sampled();
        self.sampler = None;
        sampled
    }

    /// The sampler's peak of summed VmRSS (KiB), and whether it saw children.
    pub(super) fn sampled(&self) -> (u64, bool) {
        self.sampler
            .as_ref()
            .map(|s| {
                (
                    s.peak_kib.load(Ordering::Relaxed),
                    s.forks.load(Ordering::Relaxed),
                )
            })
            .unwrap_or((0, false))
    }

    /// The last lines of the server's log.
    pub(super) fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }

    /// SIGTERM (a wrapper passes it on), then SIGKILL if the process is
    /// still there after [`STOP_LIMIT`]; then SIGKILL to the helper processes
    /// that were there before (sessions of a client that failed), and to a
    /// wrapped server whose wrapper did not exit. Idempotent.
    pub(super) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.sampler = None;
        let signal = |name: &str, pid: u32| {
            let _ = Command::new("kill")
                .args([name, &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        };
        let helpers = helpers(self.child.id(), self.pid);
        signal("-TERM", self.child.id());
        if wait_until(&mut self.child, STOP_LIMIT).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if self.pid != self.child.id() {
                signal("-KILL", self.pid);
            }
        }
        for pid in helpers {
            signal("-KILL", pid);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The processes a server started (vsftpd's sessions), also those
/// reparented to its wrapper: the descendants of `leader` but the server.
fn helpers(leader: u32, server: u32) -> Vec<u32> {
    let mut found = descendants(leader, &proc_table());
    found.retain(|&pid| pid != server);
    found
}

/// A thread that sums VmRSS over a server and its helper processes every
/// [`SAMPLE_EVERY`] and keeps the peak; stopped when dropped.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    forks: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    fn start(leader: u32, pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let forks = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, peak_kib, forks) = (stop.clone(), peak_kib.clone(), forks.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let children = helpers(leader, pid);
                    if !children.is_empty() {
                        forks.store(true, Ordering::Relaxed);
                    }
                    let total: u64 = std::iter::once(pid)
                        .chain(children)
                        .filter_map(|p| read_status_kib(p, "VmRSS"))
                        .sum();
                    peak_kib.fetch_max(total, Ordering::Relaxed);
                    thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Sampler {
            stop,
            peak_kib,
            forks,
            thread: Some(thread),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---- /proc ----

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
pub(super) fn read_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, field)
}

/// `field` of a `/proc/PID/status` text, in kB.
fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// What the bench reads from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    ppid: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
    /// cutime + cstime: of the children it reaped.
    children: u64,
}

/// Parses `/proc/PID/stat`: the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
    let ppid = fields.get(1)?.parse().ok()?;
    let mut ticks = [0u64; 4];
    for (tick, index) in ticks.iter_mut().zip(11..=14) {
        let value: i64 = fields.get(index)?.parse().ok()?;
        *tick = u64::try_from(value).unwrap_or(0);
    }
    let [utime, stime, cutime, cstime] = ticks;
    Some(Stat {
        ppid,
        ticks: utime + stime + cutime + cstime,
        children: cutime + cstime,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process as (pid, ppid).
fn proc_table() -> Vec<(u32, u32)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
            Some((pid, stat.ppid))
        })
        .collect()
}

/// The descendants of `root` in a (pid, ppid) table.
fn descendants(root: u32, table: &[(u32, u32)]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in table {
            if ppid == parent && pid != root && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

/// Clock ticks per second (`getconf CLK_TCK`; Linux's is 100).
pub(super) fn clock_ticks() -> u64 {
    quiet(Command::new("getconf").arg("CLK_TCK"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

// ---- subprocesses ----

/// Runs `cmd` with `stdin`, its output captured, killed after `limit`: its
/// stdout if it exited with 0.
pub(super) fn run_bounded(
    cmd: &mut Command,
    stdin: Stdio,
    limit: Duration,
) -> Result<String, String> {
    let shown = cmd::show(cmd);
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_until(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        None => Err(format!("`{shown}` took longer than {limit:?}; killed")),
        Some(status) if status.success() => Ok(stdout),
        Some(status) => Err(format!("`{shown}` exited with {status}: {}", stderr.trim())),
    }
}

/// Runs `cmd`, a client that pauses: once it has printed its first line
/// (the pause), `at_pause` gets that line, then the client's standard input
/// is closed (its signal to go on); killed after `limit` in all. What
/// `at_pause` returned and the rest of the client's stdout, if it exited
/// with 0.
pub(super) fn run_paused<T>(
    cmd: &mut Command,
    limit: Duration,
    at_pause: impl FnOnce(&str) -> T,
) -> Result<(T, String), String> {
    let shown = cmd::show(cmd);
    let deadline = Instant::now() + limit;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    let stderr = drain(child.stderr.take());
    let stdout = child.stdout.take();
    let (first_tx, first_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut rest = String::new();
        if let Some(stdout) = stdout {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = first_tx.send(first);
            let _ = lines.read_to_string(&mut rest);
        }
        rest
    });
    let value = match first_rx.recv_timeout(limit) {
        Ok(line) if !line.is_empty() => Some(at_pause(line.trim())),
        _ => None,
    };
    drop(child.stdin.take());
    let status = wait_until(
        &mut child,
        deadline.saturating_duration_since(Instant::now()),
    );
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let rest = reader.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match (status, value) {
        (None, _) => Err(format!("`{shown}` took longer than {limit:?}; killed")),
        (Some(status), _) if !status.success() => {
            Err(format!("`{shown}` exited with {status}: {}", stderr.trim()))
        }
        (Some(_), None) => Err(format!("`{shown}` ended before it paused")),
        (Some(_), Some(value)) => Ok((value, rest)),
    }
}

/// Runs `cmd` quietly with a short limit: its stdout, trimmed.
pub(super) fn quiet(cmd: &mut Command) -> Result<String, String> {
    run_bounded(cmd, Stdio::null(), QUICK_LIMIT).map(|out| out.trim().to_string())
}

/// Runs `cmd` with inherited output after printing it, killed after `limit`.
pub(super) fn run_inherited(cmd: &mut Command, limit: Duration) -> Result<(), Failure> {
    let shown = cmd::show(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure(format!("cannot start `{shown}`: {e}")))?;
    match wait_until(&mut child, limit) {
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(Failure(format!("`{shown}` exited with {status}"))),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(Failure(format!("`{shown}` took longer than {limit:?}")))
        }
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// The child's exit status, or `None` if it still runs after `limit`.
fn wait_until(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// SHA-256 of a file, from `sha256sum`.
pub(super) fn sha256(path: &Path) -> Result<String, String> {
    let out = run_bounded(
        Command::new("sha256sum").arg(path),
        Stdio::null(),
        HASH_LIMIT,
    )?;
    out.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum printed {out:?}"))
}

/// `python3` as the file it runs (not a pyenv shim), so the servers' process
/// is the interpreter itself.
pub(super) fn python_executable() -> Result<PathBuf, Failure> {
    quiet(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]))
        .map(PathBuf::from)
        .map_err(|e| Failure(format!("python3: {e}")))
}

pub(super) fn python_version(python: &Path) -> String {
    quiet(Command::new(python).args(["-c", "import platform; print(platform.python_version())"]))
        .unwrap_or_else(|_| "?".into())
}

pub(super) fn curl_version() -> String {
    quiet(Command::new("curl").arg("--version"))
        .ok()
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The target directory cargo builds into.
pub(super) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// A port nobody listens on now.
pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status =
            "Name:\tferryd\nVmPeak:\t  10000 kB\nVmHWM:\t    4321 kB\nVmRSS:\t    4000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(4321));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(4000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // A field whose name starts another's is not taken for it.
        assert_eq!(parse_status_kib("VmRSSx:\t1 kB\n", "VmRSS"), None);
        // smaps_rollup's Pss_Anon, not its Pss.
        let rollup = "Rss:  900 kB\nPss:   300 kB\nPss_Anon:   10 kB\n";
        assert_eq!(parse_status_kib(rollup, "Pss_Anon"), Some(10));
        assert_eq!(parse_status_kib(rollup, "Pss"), Some(300));
    }

    #[test]
    fn stat_fields() {
        // Field 2 with spaces and a parenthesis; utime 11, stime 22,
        // cutime 33, cstime 44.
        let stat = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 11 22 33 44 20 0 1 0 5 6 7";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                ppid: 1,
                ticks: 110,
                children: 77
            })
        );
        assert_eq!(parse_stat("1234 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn process_tree() {
        let table = [(1, 0), (10, 1), (11, 10), (12, 11), (20, 1), (13, 10)];
        let mut found = descendants(10, &table);
        found.sort_unstable();
        assert_eq!(found, [11, 12, 13]);
        assert!(descendants(12, &table).is_empty());
    }
}
