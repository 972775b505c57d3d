//! The bench's concurrent workloads: eight small-files clients at once,
//! NOOP round trips under load (`xtask/bench/latency.py`), and many idle
//! logged-in sessions with the memory they cost
//! (`xtask/bench/idle_sessions.py`); and what their scripts print.
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::process::{run_bounded, run_paused, Server};
use super::{json_field, Client, Context, RETR_NAME, SCRIPT_LIMIT, WORK_DIR};
use crate::cmd;

/// Small-files clients at once.
pub(super) const PARALLEL_CLIENTS: u32 = 8;
/// curl clients downloading the large file in a loop during the NOOPs.
pub(super) const DOWNLOADERS: u32 = 4;
/// Connections guessing passwords during the NOOPs.
pub(super) const GUESSERS: u32 = 40;
/// Sessions a server is configured to admit beyond the idle ones (the
/// bench's own connections, a margin).
pub(super) const SESSION_HEADROOM: u32 = 100;
/// The idle-sessions script's limit for the logins, and again for holding.
const IDLE_LIMIT: Duration = Duration::from_secs(120);
/// How long the held sessions are left before the server's memory is read.
const IDLE_SETTLE: Duration = Duration::from_millis(500);

/// NOOP round trips of one session under a load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Latency {
    /// NOOPs sent.
    pub(super) count: u64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    /// Downloads completed or passwords tried meanwhile.
    pub(super) load: u64,
}

/// Many idle logged-in sessions at once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Idle {
    /// Sessions asked for.
    pub(super) of: u64,
    /// Sessions that got their 230.
    pub(super) admitted: u64,
    /// Seconds from the first connect to the last login reply.
    pub(super) seconds: f64,
    /// VmRSS summed over the server's processes just before, KiB.
    pub(super) before_kib: u64,
    /// The same with every admitted session held, KiB.
    pub(super) held_kib: u64,
    /// Anonymous PSS summed over the server's processes just before, KiB.
    pub(super) before_pss_kib: u64,
    /// The same with every admitted session held, KiB.
    pub(super) held_pss_kib: u64,
}

impl Idle {
    /// RSS (held − before) / admitted, KiB; `None` if none was admitted.
    pub(super) fn per_session_kib(&self) -> Option<f64> {
        self.per_session(self.before_kib, self.held_kib)
    }

    /// The same of anonymous PSS, KiB.
    pub(super) fn pss_per_session_kib(&self) -> Option<f64> {
        self.per_session(self.before_pss_kib, self.held_pss_kib)
    }

    fn per_session(&self, before: u64, held: u64) -> Option<f64> {
        (self.admitted > 0).then(|| (held as f64 - before as f64) / self.admitted as f64)
    }
}

/// The load under which NOOPs are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Load {
    /// [`DOWNLOADERS`] curl clients downloading the large file in a loop.
    Downloads,
    /// [`GUESSERS`] connections sending wrong passwords for the bench's user.
    Guessing,
}

impl Client {
    /// `small_ops.py parallel-rounds`: rounds per second over all clients.
    pub(super) fn parallel_rounds(&self, context: &Context, rounds: u32) -> Result<f64, String> {
        let mut python = Command::new(&context.python);
        python
            .arg(context.root.join("xtask/bench/small_ops.py"))
            .args(["parallel-rounds", "127.0.0.1"])
            .arg(self.port.to_string())
            .args([&self.user, &self.password, WORK_DIR])
            .arg(rounds.to_string())
            .arg(PARALLEL_CLIENTS.to_string());
        println!("$ {}", cmd::show(&python));
        let out = run_bounded(&mut python, Stdio::null(), SCRIPT_LIMIT)?;
        let (done, seconds) =
            super::parse_small_ops(&out).ok_or_else(|| format!("small_ops.py printed {out:?}"))?;
        let asked = u64::from(rounds) * u64::from(PARALLEL_CLIENTS);
        if done != asked || seconds <= 0.0 {
            return Err(format!("small_ops.py did {done} of {asked} in {seconds} s"));
        }
        Ok(done as f64 / seconds)
    }

    /// `latency.py`: NOOP round trips for `seconds` under `load`.
    pub(super) fn latency(
        &self,
        context: &Context,
        load: Load,
        bytes: u64,
        seconds: u32,
    ) -> Result<Latency, String> {
        let mut python = Command::new(&context.python);
        python.arg(context.root.join("xtask/bench/latency.py"));
        match load {
            Load::Downloads => python.arg("downloads"),
            Load::Guessing => python.arg("guessing"),
        };
        python
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args([&self.user, &self.password]);
        match load {
            Load::Downloads => python
                .arg(format!("{WORK_DIR}/{RETR_NAME}"))
                .arg(bytes.to_string())
                .arg(DOWNLOADERS.to_string()),
            Load::Guessing => python.args([&self.user, "-"]).arg(GUESSERS.to_string()),
        };
        python.arg(seconds.to_string());
        println!("$ {}", cmd::show(&python));
        let out = run_bounded(&mut python, Stdio::null(), SCRIPT_LIMIT)?;
        parse_latency(&out).ok_or_else(|| format!("latency.py printed {out:?}"))
    }

    /// `idle_sessions.py`: logs `count` sessions in, reads the server's
    /// memory while all are held, then lets them QUIT.
    pub(super) fn idle_sessions(
        &self,
        context: &Context,
        server: &Server,
        count: u32,
    ) -> Result<Idle, String> {
        let mut python = Command::new(&context.python);
        python
            .arg(context.root.join("xtask/bench/idle_sessions.py"))
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .args([&self.user, &self.password])
            .arg(count.to_string())
            .arg(IDLE_LIMIT.as_secs().to_string());
        println!("$ {}", cmd::show(&python));
        let (before_kib, before_pss_kib) = server.memory_kib();
        let (held, rest) = run_paused(&mut python, IDLE_LIMIT * 2 + SCRIPT_LIMIT, |line| {
            println!("{line}");
            thread::sleep(IDLE_SETTLE);
            (parse_held(line), server.memory_kib())
        })?;
        let (held, (held_kib, held_pss_kib)) = held;
        let (admitted, of, seconds) =
            held.ok_or_else(|| "idle_sessions.py printed no count of held sessions".to_string())?;
        // Every admitted session must have been let go: a server that does
        // not answer QUIT misbehaves.
        let quit = json_field(&rest, "quit").and_then(|q| q.parse::<u64>().ok());
        if quit != Some(admitted) {
            return Err(format!(
                "{admitted} sessions were held but {quit:?} answered QUIT with 221: \
                 idle_sessions.py printed {rest:?}"
            ));
        }
        Ok(Idle {
            of,
            admitted,
            seconds,
            before_kib,
            held_kib,
            before_pss_kib,
            held_pss_kib,
        })
    }
}

/// Runs `ceiling.py` on the large file: (sendfile, write, to_file) MiB/s.
pub(super) fn ceiling(context: &Context) -> Result<(f64, f64, f64), String> {
    let mut python = Command::new(&context.python);
    python
        .arg(context.root.join("xtask/bench/ceiling.py"))
        .arg(&context.source.path);
    println!("$ {}", cmd::show(&python));
    let out = run_bounded(&mut python, Stdio::null(), SCRIPT_LIMIT)?;
    parse_ceiling(&out, context.source.bytes).ok_or_else(|| format!("ceiling.py printed {out:?}"))
}

/// latency.py's `{"count": N, "p50": ms, "p99": ms, "max": ms, "load": L}`.
fn parse_latency(out: &str) -> Option<Latency> {
    let number = |name| json_field(out, name)?.parse::<f64>().ok();
    let whole = |name| json_field(out, name)?.parse::<u64>().ok();
    Some(Latency {
        count: whole("count")?,
        p50_ms: number("p50")?,
        p99_ms: number("p99")?,
        max_ms: number("max")?,
        load: whole("load")?,
    })
}

/// idle_sessions.py's pause line `{"held": A, "of": N, "seconds": S, ...}`:
/// (admitted, asked, seconds).
fn parse_held(line: &str) -> Option<(u64, u64, f64)> {
    Some((
        json_field(line, "held")?.parse().ok()?,
        json_field(line, "of")?.parse().ok()?,
        json_field(line, "seconds")?.parse().ok()?,
    ))
}

/// ceiling.py's `{"bytes": B, "sendfile": MiB/s, "write": MiB/s,
/// "to_file": MiB/s}`, if it moved `bytes`.
fn parse_ceiling(out: &str, bytes: u64) -> Option<(f64, f64, f64)> {
    let moved: u64 = json_field(out, "bytes")?.parse().ok()?;
    (moved == bytes).then_some(())?;
    Some((
        json_field(out, "sendfile")?.parse().ok()?,
        json_field(out, "write")?.parse().ok()?,
        json_field(out, "to_file")?.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_outputs() {
        assert_eq!(
            parse_latency(
                "{\"count\": 1800, \"p50\": 0.12, \"p99\": 4.5, \"max\": 9.75, \"load\": 42}\n"
            ),
            Some(Latency {
                count: 1800,
                p50_ms: 0.12,
                p99_ms: 4.5,
                max_ms: 9.75,
                load: 42
            })
        );
        assert_eq!(parse_latency("{\"count\": 1, \"p50\": 1}"), None);
        assert_eq!(
            parse_held(
                "{\"held\": 64, \"of\": 200, \"seconds\": 0.5, \"late\": 0, \"refused\": [\"reply 421\"]}"
            ),
            Some((64, 200, 0.5))
        );
        assert_eq!(
            parse_ceiling(
                "{\"bytes\": 1024, \"sendfile\": 5000.5, \"write\": 4000, \"to_file\": 2100}",
                1024
            ),
            Some((5000.5, 4000.0, 2100.0))
        );
        assert_eq!(
            parse_ceiling("{\"bytes\": 1000, \"sendfile\": 1, \"write\": 1}", 1024),
            None
        );
    }

    #[test]
    fn memory_per_idle_session() {
        let idle = Idle {
            of: 1000,
            admitted: 1000,
            seconds: 1.0,
            before_kib: 8000,
            held_kib: 11_000,
            before_pss_kib: 6000,
            held_pss_kib: 6500,
        };
        assert_eq!(idle.per_session_kib(), Some(3.0));
        assert_eq!(idle.pss_per_session_kib(), Some(0.5));
        let none = Idle {
            admitted: 0,
            ..idle
        };
        assert_eq!(none.per_session_kib(), None);
        // Memory given back meanwhile shows as a negative cost, not a wrap.
        let less = Idle {
            held_kib: 7000,
            ..idle
        };
        assert_eq!(less.per_session_kib(), Some(-1.0));
    }
}
