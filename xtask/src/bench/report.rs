//! What `cargo xtask bench` prints and writes: the machine, the table of
//! servers × metrics (with ferryd's ratio to the best peer and to the
//! loopback ceiling), and the notes under it.
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;

use super::load::{Latency, DOWNLOADERS, GUESSERS, PARALLEL_CLIENTS, SESSION_HEADROOM};
use super::process::quiet;
use super::{Ceiling, Measured, Options, Outcome, Peer, Phase, Report, Sizes, SAMPLE_EVERY};

/// The machine and its load at the start and the end.
pub(super) struct Machine {
    cpus: usize,
    model: String,
    kernel: String,
    load_start: String,
    load_end: String,
}

impl Machine {
    pub(super) fn now() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            cpus: thread::available_parallelism().map_or(1, |n| n.get()),
            model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
                .map_or_else(|| "unknown CPU".into(), |m| m.trim().to_string()),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "?".into(), |k| k.trim().to_string()),
            load_start: load_average(),
            load_end: String::new(),
        }
    }

    pub(super) fn finish(mut self) -> Machine {
        self.load_end = load_average();
        self
    }

    /// The machine line; `roots`: where the servers' files were.
    pub(super) fn describe(&self, clients: &str, roots: &str) -> String {
        format!(
            "Machine: {} CPUs ({}), Linux {}; load average (1, 5, 15 min) {} at the start, \
             {} at the end. Clients: {clients}, on the same machine. {roots}",
            self.cpus, self.model, self.kernel, self.load_start, self.load_end
        )
    }
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// "Measured by ... on DATE (commit ...)".
pub(super) fn provenance(root: &Path, options: Options) -> String {
    let date = quiet(Command::new("date").args(["-u", "+%Y-%m-%d"])).unwrap_or_default();
    let commit =
        quiet(
            Command::new("git")
                .current_dir(root)
                .args(["rev-parse", "--short", "HEAD"]),
        )
        .unwrap_or_else(|_| "unknown".into());
    let dirty = Command::new("git")
        .current_dir(root)
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|status| status.code() == Some(1));
    let dirty = if dirty {
        " with uncommitted changes"
    } else {
        ""
    };
    format!(
        "Measured by `{}` on {date} (commit {commit}{dirty}).",
        options.command()
    )
}

/// The median (the mean of the middle two for an even count).
pub(super) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => sorted.get(n / 2).copied(),
        _ => Some((sorted.get(n / 2 - 1)? + sorted.get(n / 2)?) / 2.0),
    }
}

/// A rate with three significant digits or so: `1234`, `123`, `12.3`, `1.23`.
fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// A Markdown table; the first row is the header.
fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        out.push_str("| ");
        out.push_str(&row.join(" | "));
        out.push_str(" |\n");
        if index == 0 {
            out.push('|');
            for column in 0..row.len() {
                out.push_str(if column == 0 { "---|" } else { "---:|" });
            }
            out.push('\n');
        }
    }
    out
}

/// Which figures of a server a throughput row shows.
pub(super) type Pick = fn(&Measured) -> &Vec<f64>;

/// The throughput rows whose goal is ferryd against the best peer: their
/// name in the goals block, and their figures.
pub(super) const THROUGHPUT: [(&str, Pick); 5] = [
    ("RETR", |m| &m.retr),
    ("STOR", |m| &m.stor),
    ("small files", |m| &m.rounds),
    ("logins", |m| &m.connections),
    ("8 small-files clients", |m| &m.parallel),
];

/// ferryd's median of a row and the best peer's (name, median), of the
/// servers that ran.
pub(super) fn ferryd_and_best_peer(
    reports: &[Report],
    pick: Pick,
) -> (Option<f64>, Option<(Peer, f64)>) {
    let mut ferryd = None;
    let mut best: Option<(Peer, f64)> = None;
    for report in reports {
        let Outcome::Ran(m) = &report.outcome else {
            continue;
        };
        let Some(value) = median(pick(m)) else {
            continue;
        };
        if report.peer == Peer::Ferryd {
            ferryd = Some(value);
        } else if best.is_none_or(|(_, b)| value > b) {
            best = Some((report.peer, value));
        }
    }
    (ferryd, best)
}

/// "1.06x" of ferryd to the best peer, or "-".
fn ratio_cell(reports: &[Report], pick: Pick) -> String {
    match ferryd_and_best_peer(reports, pick) {
        (Some(f), Some((_, b))) if b > 0.0 => format!("{:.2}x", f / b),
        _ => "-".into(),
    }
}

/// The loopback ceiling and ferryd's share of its higher figure; for an
/// `upload`, also the ceiling of storing the bytes and ferryd's share.
fn ceiling_cell(reports: &[Report], ceiling: &Ceiling, pick: Pick, upload: bool) -> String {
    let (Some(sendfile), Some(write), Some(best)) = (
        median(&ceiling.sendfile),
        median(&ceiling.write),
        ceiling.best(),
    ) else {
        return "failed".into();
    };
    let ferryd = ferryd_and_best_peer(reports, pick).0;
    let share = match ferryd {
        Some(f) if best > 0.0 => format!("; ferryd {:.2} of {}", f / best, rate(best)),
        _ => String::new(),
    };
    // An upload's own ceiling: the receiver stores the bytes too.
    let stored = match (upload, median(&ceiling.to_file), ferryd) {
        (true, Some(c), Some(f)) if c > 0.0 => {
            format!("; into a file {}, ferryd {:.2} of it", rate(c), f / c)
        }
        _ => String::new(),
    };
    format!(
        "sendfile {}, write {}{share}{stored}",
        rate(sendfile),
        rate(write)
    )
}

/// "p50 / p99" in ms.
fn latency_cell(latency: &Latency) -> String {
    format!("{:.2} / {:.2}", latency.p50_ms, latency.p99_ms)
}

/// Server × metric, then ferryd / best peer and the loopback ceiling.
pub(super) fn table(reports: &[Report], sizes: &Sizes, ceiling: &Ceiling) -> String {
    let mut header = vec![String::new()];
    header.extend(reports.iter().map(|r| r.peer.name().to_string()));
    header.push("ferryd / best peer".into());
    header.push("loopback ceiling, MiB/s".into());
    let metric = |title: String, cell: &dyn Fn(&Measured) -> String| -> Vec<String> {
        let mut row = vec![title];
        row.extend(reports.iter().map(|r| match &r.outcome {
            Outcome::Ran(m) => cell(m),
            Outcome::Skipped(_) => "skipped".into(),
            Outcome::Failed(_) => "failed".into(),
        }));
        row
    };
    let with = |mut row: Vec<String>, ratio: String, ceiling: String| {
        row.push(ratio);
        row.push(ceiling);
        row
    };
    let median_of = |runs: &[f64]| median(runs).map_or_else(|| "-".into(), rate);
    // A row this server failed alone says so.
    let unless_failed = |m: &Measured, phase: Phase, cell: String| {
        if m.row_failure(phase).is_some() {
            "failed".to_string()
        } else {
            cell
        }
    };
    let [retr, stor, rounds, connections, parallel] = THROUGHPUT.map(|(_, pick)| pick);
    let rows = vec![
        header,
        with(
            metric(
                format!(
                    "RETR {} MiB (ftplib, 256 KiB reads), MiB/s, median of {}",
                    sizes.file_mib, sizes.runs
                ),
                &|m| median_of(&m.retr),
            ),
            ratio_cell(reports, retr),
            ceiling_cell(reports, ceiling, retr, false),
        ),
        with(
            metric(
                format!(
                    "STOR {} MiB (ftplib, sendfile), MiB/s, median of {}, bytes checked",
                    sizes.file_mib, sizes.runs
                ),
                &|m| median_of(&m.stor),
            ),
            ratio_cell(reports, stor),
            ceiling_cell(reports, ceiling, stor, true),
        ),
        with(
            metric(
                format!(
                    "{} × STOR 1 KiB + RETR + DELE in one session (ftplib), rounds/s, \
                     median of {} sessions",
                    sizes.rounds, sizes.runs
                ),
                &|m| median_of(&m.rounds),
            ),
            ratio_cell(reports, rounds),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "{} × connect, login, PWD, QUIT (ftplib), connections/s, median of {}",
                    sizes.connections, sizes.runs
                ),
                &|m| median_of(&m.connections),
            ),
            ratio_cell(reports, connections),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "{PARALLEL_CLIENTS} sessions at once, each {} × STOR 1 KiB + RETR + DELE \
                     (ftplib, a process each), rounds/s over all, median of {}",
                    sizes.parallel_rounds, sizes.runs
                ),
                &|m| unless_failed(m, Phase::Parallel, median_of(&m.parallel)),
            ),
            ratio_cell(reports, parallel),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "NOOP round trip of a logged-in session while {DOWNLOADERS} curl clients \
                     download the file in a loop, {} s, p50 / p99 ms",
                    sizes.noop_seconds
                ),
                &|m| {
                    let cell = m.under_downloads.as_ref().map_or("-".into(), latency_cell);
                    unless_failed(m, Phase::UnderDownloads, cell)
                },
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "NOOP round trip while {GUESSERS} connections guess the password, {} s, \
                     p50 / p99 ms",
                    sizes.noop_seconds
                ),
                &|m| {
                    let cell = match &m.under_guessing {
                        Some(Ok(latency)) => latency_cell(latency),
                        Some(Err(_)) => "n/a".into(),
                        None => "-".into(),
                    };
                    unless_failed(m, Phase::UnderGuessing, cell)
                },
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "{} idle logged-in sessions at once from 127.0.0.1: admitted, s to log \
                     in all",
                    sizes.idle_sessions
                ),
                &|m| {
                    let cell = m.idle.as_ref().map_or("-".into(), |idle| {
                        format!("{} of {}, {:.2} s", idle.admitted, idle.of, idle.seconds)
                    });
                    unless_failed(m, Phase::Idle, cell)
                },
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                "RSS per idle session: (summed RSS with all held − just before) / admitted, \
                 KiB (the same of anonymous PSS)"
                    .into(),
                &|m| {
                    let cell = m.idle.as_ref().map_or("-".into(), |idle| {
                        match (idle.per_session_kib(), idle.pss_per_session_kib()) {
                            (Some(rss), Some(pss)) => format!("{rss:.1} (anon. PSS {pss:.1})"),
                            _ => "-".into(),
                        }
                    });
                    unless_failed(m, Phase::Idle, cell)
                },
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric("RSS once started (VmRSS), MiB".into(), &|m| {
                mib(m.rss_start_kib)
            }),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                "peak RSS of the server process (VmHWM) before the idle sessions, MiB".into(),
                &|m| {
                    if m.forks {
                        format!("{} (listener only)", mib(m.hwm_kib))
                    } else {
                        mib(m.hwm_kib)
                    }
                },
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                format!(
                    "peak RSS summed over the server's processes before the idle sessions \
                     (sampled every {} ms), MiB",
                    SAMPLE_EVERY.as_millis()
                ),
                &|m| mib(m.tree_peak_kib),
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                "server CPU over its life (user + sys, reaped children included), s".into(),
                &|m| format!("{:.2}", m.cpu.total),
            ),
            String::new(),
            String::new(),
        ),
        with(
            metric(
                "of which RETR / STOR / small files / connections / 8 clients / NOOPs under \
                 downloads / under guessing / idle sessions, s"
                    .into(),
                &|m| {
                    let c = &m.cpu;
                    [
                        c.retr,
                        c.stor,
                        c.rounds,
                        c.connections,
                        c.parallel,
                        c.under_downloads,
                        c.under_guessing,
                        c.idle,
                    ]
                    .map(|s| format!("{s:.2}"))
                    .join(" / ")
                },
            ),
            String::new(),
            String::new(),
        ),
    ];
    markdown_table(&rows)
}

/// Versions, configurations, skips and the single runs, under the table.
pub(super) fn notes(reports: &[Report], ceiling: &Ceiling) -> String {
    let mut out = String::from("\nServers:\n\n");
    for report in reports {
        let line = match &report.outcome {
            Outcome::Skipped(why) => format!("- {}: skipped: {why}", report.peer.name()),
            Outcome::Failed(why) => format!("- {}: failed: {why}", report.peer.name()),
            Outcome::Ran(m) => format!(
                "- {}: {}. {}. Runs: {}.",
                report.peer.name(),
                report.version,
                report.setup,
                runs(m)
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let ceiling_runs = |v: &[f64]| v.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(", ");
    out += &format!(
        "\nThe loopback ceiling (`xtask/bench/ceiling.py`, run before each round of RETRs): \
         the same number of bytes over one TCP connection on 127.0.0.1 with no FTP, the \
         receiver a separate process that `recv_into`s a 256 KiB buffer and discards; \
         the sender either `sendfile`s the large file (on the servers' file system) or \
         `send`s a 1 MiB buffer from memory. \"ferryd N of M\" is ferryd's median over \
         the higher of the two medians. An upload must also store what it receives, so \
         the STOR row adds a third figure, \"into a file\": the `sendfile` sender again, \
         the receiver `splice`-ing the bytes into a new file beside the large one (no \
         copy through the process), and ferryd's STOR as a share of it. {}\n",
        match &ceiling.failed {
            Some(why) => format!("It failed: {why}."),
            None => format!(
                "Runs: sendfile {} MiB/s; write {} MiB/s; into a file {} MiB/s.",
                ceiling_runs(&ceiling.sendfile),
                ceiling_runs(&ceiling.write),
                ceiling_runs(&ceiling.to_file)
            ),
        }
    );
    out += &format!(
        "\nThe concurrent rows: {PARALLEL_CLIENTS} `small_ops.py` clients in processes of \
         their own log in, then start their rounds together (distinct file names); the \
         rate is all their rounds over the time to the end of the slowest. The NOOP rows \
         (`xtask/bench/latency.py`, timing shared with `brute_force.py` in `ftpctl.py`) \
         send a NOOP every 5 ms on one logged-in session, the load starting a second \
         before: {DOWNLOADERS} curl processes each downloading the large file to \
         /dev/null again as soon as done (each checked for its byte count), or \
         {GUESSERS} connections sending USER and a wrong PASS for the bench's user over and \
         over. The idle sessions (`xtask/bench/idle_sessions.py`, asyncio, at most 24 \
         connecting and logging in at a time, below vsftpd's listen backlog of 32, each \
         given 30 s) are held while the server's memory, summed over its processes, is \
         read (0.5 s after the last login), then each sends QUIT and must get its 221; \
         every server is configured to admit that many sessions and {SESSION_HEADROOM} \
         more, in all and from one address. RSS counts a page shared by a forking \
         server's processes once in each; anonymous PSS (`Pss_Anon`, smaps_rollup) \
         divides it among them and leaves out mapped files. Memory a server allocated \
         at start for its sessions or in earlier workloads and kept (ferryd's session \
         table grows as sessions arrive, 64 slots at a time, and keeps its size) is in the \"before\" figure, so a server that \
         reuses it shows little or nothing per session: the \"RSS once started\" row \
         holds the rest. The idle sessions run last: the \
         VmHWM and summed-peak rows stop before them.\n"
    );
    let mut not_run = Vec::new();
    for report in reports {
        let Outcome::Ran(m) = &report.outcome else {
            continue;
        };
        if let Some(Err(why)) = &m.under_guessing {
            not_run.push(format!(
                "{}'s guessing row is n/a: {why}",
                report.peer.name()
            ));
        }
        for (phase, why) in &m.failed_rows {
            not_run.push(format!(
                "{} failed the {} workload (its server ran on, and the other rows \
                 are its): {why}",
                report.peer.name(),
                phase.title()
            ));
        }
    }
    for line in not_run {
        out += &format!("\n{line}.\n");
    }
    if reports
        .iter()
        .any(|r| matches!(&r.outcome, Outcome::Ran(m) if m.forks))
    {
        out.push_str(
            "\nA server that forks per connection (vsftpd, pure-ftpd) has its listener's \
             VmHWM in the VmHWM row, which says nothing of its sessions; the summed row adds \
             the sessions' processes while they lived, as often as the sampler caught them \
             (short sessions may fall between two samples), and so does the idle sessions' \
             RSS, where each process's shared pages count once per process. Its CPU rows \
             count the sessions once reaped, by the listener or by the subreaper it runs \
             under: the bench waits for that after each workload.\n",
        );
    }
    out
}

/// The single runs, in the order they ran, and the details of the
/// single-run rows.
pub(super) fn runs(measured: &Measured) -> String {
    let list = |v: &[f64]| v.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(", ");
    let latency = |l: &Latency, load: &str| {
        format!(
            "{} NOOPs, worst {:.2} ms, {} {load}",
            l.count, l.max_ms, l.load
        )
    };
    let mut out = format!(
        "RETR {} MiB/s; STOR {} MiB/s; {} rounds/s; {} connections/s; \
         {} rounds/s with {PARALLEL_CLIENTS} clients",
        list(&measured.retr),
        list(&measured.stor),
        list(&measured.rounds),
        list(&measured.connections),
        list(&measured.parallel),
    );
    if let Some(l) = &measured.under_downloads {
        out += &format!("; under downloads {}", latency(l, "downloads done"));
    }
    if let Some(Ok(l)) = &measured.under_guessing {
        out += &format!("; under guessing {}", latency(l, "passwords tried"));
    }
    if let Some(idle) = &measured.idle {
        out += &format!(
            "; idle sessions: summed RSS {} KiB before, {} KiB held (anonymous PSS {}, {})",
            idle.before_kib, idle.held_kib, idle.before_pss_kib, idle.held_pss_kib
        );
    }
    out
}

pub(super) fn print_runs(peer: Peer, measured: &Measured) {
    println!("{}: {}", peer.name(), runs(measured));
}

#[cfg(test)]
mod tests {
    use super::super::load::Idle;
    use super::super::{Cpu, FULL};
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[900.0, 100.0, 500.0]), Some(500.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn rates_and_sizes() {
        assert_eq!(rate(1234.56), "1235");
        assert_eq!(rate(123.4), "123");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(rate(1.234), "1.23");
        assert_eq!(mib(1536), "1.5");
    }

    #[test]
    fn markdown() {
        let rows = vec![
            vec!["".to_string(), "a".into(), "b".into()],
            vec!["x".to_string(), "1".into(), "2".into()],
        ];
        assert_eq!(
            markdown_table(&rows),
            "|  | a | b |\n|---|---:|---:|\n| x | 1 | 2 |\n"
        );
    }

    #[test]
    fn table_marks_skips_failures_and_forks() {
        let measured = Measured {
            retr: vec![100.0, 300.0, 200.0],
            stor: vec![50.0],
            rounds: vec![1000.0, 900.0, 1100.0],
            connections: vec![500.0],
            parallel: vec![2000.0],
            under_downloads: Some(Latency {
                count: 1800,
                p50_ms: 0.25,
                p99_ms: 4.5,
                max_ms: 9.0,
                load: 12,
            }),
            under_guessing: Some(Err("anonymous only".into())),
            idle: Some(Idle {
                of: 1000,
                admitted: 1000,
                seconds: 0.5,
                before_kib: 8000,
                held_kib: 10_500,
                ..Idle::default()
            }),
            rss_start_kib: 1024,
            hwm_kib: 2048,
            tree_peak_kib: 4096,
            forks: true,
            failed_rows: Vec::new(),
            cpu: Cpu {
                total: 1.0,
                retr: 0.25,
                stor: 0.5,
                rounds: 0.125,
                connections: 0.125,
                ..Cpu::default()
            },
        };
        let peer = Measured {
            retr: vec![100.0],
            failed_rows: vec![(Phase::Parallel, "425 no data port".into())],
            ..Measured::default()
        };
        let report = |peer, outcome| Report {
            peer,
            version: "v".into(),
            setup: "s".into(),
            outcome,
        };
        let reports = [
            report(Peer::Ferryd, Outcome::Ran(Box::new(measured))),
            report(Peer::Pyftpdlib, Outcome::Skipped("missing".into())),
            report(Peer::Vsftpd, Outcome::Failed("broke".into())),
            report(Peer::PureFtpd, Outcome::Ran(Box::new(peer))),
        ];
        let ceiling = Ceiling {
            sendfile: vec![400.0],
            write: vec![500.0, 300.0],
            to_file: vec![80.0],
            failed: None,
        };
        let text = table(&reports, &FULL, &ceiling);
        assert!(text.starts_with(
            "|  | ferryd | pyftpdlib | vsftpd | pure-ftpd | ferryd / best peer | \
             loopback ceiling, MiB/s |\n|---|---:|---:|---:|---:|---:|---:|\n"
        ));
        assert!(text.contains(
            "| RETR 256 MiB (ftplib, 256 KiB reads), MiB/s, median of 3 | 200 | skipped | failed | 100 | 2.00x | \
             sendfile 400, write 400; ferryd 0.50 of 400 |"
        ));
        assert!(text.contains("| 0.25 / 4.50 | "));
        assert!(text.contains("| n/a | "));
        assert!(text.contains("| 1000 of 1000, 0.50 s | "));
        assert!(text.contains("| 2.5 (anon. PSS 0.0) | "));
        assert!(text.contains("| 2.0 (listener only) |"));
        assert!(text.contains("| 0.25 / 0.50 / 0.12 / 0.12 / 0.00 / 0.00 / 0.00 / 0.00 |"));
        assert_eq!(text.lines().count(), 16);
        let notes = notes(&reports, &ceiling);
        assert!(notes.contains("- pyftpdlib: skipped: missing"));
        assert!(notes.contains(
            "Runs: RETR 100, 300, 200 MiB/s; STOR 50.0 MiB/s; 1000, 900, 1100 rounds/s; \
             500 connections/s; 2000 rounds/s with 8 clients; under downloads 1800 NOOPs, \
             worst 9.00 ms, 12 downloads done; idle sessions: summed RSS 8000 KiB before, \
             10500 KiB held (anonymous PSS 0, 0)."
        ));
        assert!(text.contains(
            "sendfile 400, write 400; ferryd 0.12 of 400; into a file 80.0, ferryd 0.62 of it |"
        ));
        assert!(notes
            .contains("Runs: sendfile 400 MiB/s; write 500, 300 MiB/s; into a file 80.0 MiB/s."));
        assert!(notes.contains("ferryd's guessing row is n/a: anonymous only."));
        assert!(notes.contains(
            "pure-ftpd failed the 8 small-files clients workload (its server ran on, and the \
             other rows are its): 425 no data port."
        ));
        assert!(
            text.contains("rounds/s over all, median of 3 | 2000 | skipped | failed | failed |")
        );
        assert!(notes.contains("forks per connection"));
    }
}
