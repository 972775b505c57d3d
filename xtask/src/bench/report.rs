//! What `cargo xtask bench` prints and writes: the machine, the table of
//! servers × metrics, and the notes under it.
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;

use super::process::quiet;
use super::{Measured, Options, Outcome, Peer, Report, Sizes, SAMPLE_EVERY};

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

    pub(super) fn describe(&self, clients: &str) -> String {
        format!(
            "Machine: {} CPUs ({}), Linux {}; load average (1, 5, 15 min) {} at the start, \
             {} at the end. Clients: {clients}, on the same machine.",
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

/// Server × metric.
pub(super) fn table(reports: &[Report], sizes: &Sizes) -> String {
    let mut header = vec![String::new()];
    header.extend(reports.iter().map(|r| r.peer.name().to_string()));
    let metric = |title: String, cell: &dyn Fn(&Measured) -> String| -> Vec<String> {
        let mut row = vec![title];
        row.extend(reports.iter().map(|r| match &r.outcome {
            Outcome::Ran(m) => cell(m),
            Outcome::Skipped(_) => "skipped".into(),
            Outcome::Failed(_) => "failed".into(),
        }));
        row
    };
    let median_of = |runs: &[f64]| median(runs).map_or_else(|| "-".into(), rate);
    let rows = vec![
        header,
        metric(
            format!(
                "RETR {} MiB (curl), MiB/s, median of {}",
                sizes.file_mib, sizes.runs
            ),
            &|m| median_of(&m.retr),
        ),
        metric(
            format!(
                "STOR {} MiB (curl -T), MiB/s, median of {}, bytes checked",
                sizes.file_mib, sizes.runs
            ),
            &|m| median_of(&m.stor),
        ),
        metric(
            format!(
                "{} × STOR 1 KiB + RETR + DELE in one session (ftplib), rounds/s, \
                 median of {} sessions",
                sizes.rounds, sizes.runs
            ),
            &|m| median_of(&m.rounds),
        ),
        metric(
            format!(
                "{} × connect, login, PWD, QUIT (ftplib), connections/s, median of {}",
                sizes.connections, sizes.runs
            ),
            &|m| median_of(&m.connections),
        ),
        metric("RSS once started (VmRSS), MiB".into(), &|m| {
            mib(m.rss_start_kib)
        }),
        metric("peak RSS of the server process (VmHWM), MiB".into(), &|m| {
            if m.forks {
                format!("{} (listener only)", mib(m.hwm_kib))
            } else {
                mib(m.hwm_kib)
            }
        }),
        metric(
            format!(
                "peak RSS summed over the server's processes (sampled every {} ms), MiB",
                SAMPLE_EVERY.as_millis()
            ),
            &|m| mib(m.tree_peak_kib),
        ),
        metric(
            "server CPU over its life (user + sys, reaped children included), s".into(),
            &|m| format!("{:.2}", m.cpu.total),
        ),
        metric(
            "of which RETR / STOR / small files / connections, s".into(),
            &|m| {
                format!(
                    "{:.2} / {:.2} / {:.2} / {:.2}",
                    m.cpu.retr, m.cpu.stor, m.cpu.rounds, m.cpu.connections
                )
            },
        ),
    ];
    markdown_table(&rows)
}

/// Versions, configurations, skips and the single runs, under the table.
pub(super) fn notes(reports: &[Report]) -> String {
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
    if reports
        .iter()
        .any(|r| matches!(&r.outcome, Outcome::Ran(m) if m.forks))
    {
        out.push_str(
            "\nA server that forks per connection (vsftpd) has its listener's VmHWM in \
             the VmHWM row, which says nothing of its sessions; the summed row adds the \
             sessions' processes while they lived, as often as the sampler caught them \
             (short sessions may fall between two samples). Its CPU rows count the \
             sessions once reaped, by the listener or by the subreaper it runs under: \
             the bench waits for that after each workload.\n",
        );
    }
    out
}

/// The single runs, in the order they ran.
pub(super) fn runs(measured: &Measured) -> String {
    let list = |v: &[f64]| v.iter().map(|&x| rate(x)).collect::<Vec<_>>().join(", ");
    format!(
        "RETR {} MiB/s; STOR {} MiB/s; {} rounds/s; {} connections/s",
        list(&measured.retr),
        list(&measured.stor),
        list(&measured.rounds),
        list(&measured.connections)
    )
}

pub(super) fn print_runs(peer: Peer, measured: &Measured) {
    println!("{}: {}", peer.name(), runs(measured));
}

#[cfg(test)]
mod tests {
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
            rss_start_kib: 1024,
            hwm_kib: 2048,
            tree_peak_kib: 4096,
            forks: true,
            cpu: Cpu {
                total: 1.0,
                retr: 0.25,
                stor: 0.5,
                rounds: 0.125,
                connections: 0.125,
            },
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
        ];
        let text = table(&reports, &FULL);
        assert!(text.starts_with("|  | ferryd | pyftpdlib | vsftpd |\n|---|---:|---:|---:|\n"));
        assert!(
            text.contains("| RETR 256 MiB (curl), MiB/s, median of 3 | 200 | skipped | failed |")
        );
        assert!(text.contains("| 2.0 (listener only) |"));
        assert!(text.contains("| 0.25 / 0.50 / 0.12 / 0.12 |"));
        assert_eq!(text.lines().count(), 11);
        let notes = notes(&reports);
        assert!(notes.contains("- pyftpdlib: skipped: missing"));
        assert!(notes.contains(
            "Runs: RETR 100, 300, 200 MiB/s; STOR 50.0 MiB/s; 1000, 900, 1100 rounds/s; \
             500 connections/s."
        ));
        assert!(notes.contains("forks per connection"));
    }
}
