//! Issue 14's goals for ferryd, each judged "met" or "not met" from the
//! run's own figures: printed under the table and written with it. Nothing
//! here fails the bench; the timings only inform.
use super::load::Idle;
use super::report::{ferryd_and_best_peer, THROUGHPUT};
use super::{median, Ceiling, Outcome, Peer, Report, Sizes};

/// ferryd at least this many times the best peer on each throughput row.
const PEER_FACTOR: f64 = 1.2;
/// RETR and STOR at least this share of the loopback ceiling.
const CEILING_SHARE: f64 = 0.8;
/// RSS per idle session at most this, KiB.
const IDLE_KIB: f64 = 4.0;
/// NOOP p99 under the downloads at most this, ms.
const NOOP_P99_MS: f64 = 5.0;

/// One goal: what it asks, what the run found, and whether it is met
/// (`None`: not measured).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Goal {
    pub(super) asks: String,
    pub(super) found: String,
    pub(super) met: Option<bool>,
}

/// Judges every goal from the reports and the ceiling.
pub(super) fn assess(reports: &[Report], ceiling: &Ceiling, sizes: &Sizes) -> Vec<Goal> {
    let mut goals = Vec::new();
    for (name, pick) in THROUGHPUT {
        let asks = format!("{name}: ferryd >= {PEER_FACTOR}x the best peer");
        goals.push(match ferryd_and_best_peer(reports, pick) {
            (Some(f), Some((peer, b))) if b > 0.0 => Goal {
                asks,
                found: format!(
                    "{:.2}x ({} against {} {})",
                    f / b,
                    fmt(f),
                    peer.name(),
                    fmt(b)
                ),
                met: Some(f >= PEER_FACTOR * b),
            },
            (None, _) => unmeasured(asks, "no figure of ferryd"),
            _ => unmeasured(asks, "no peer measured"),
        });
    }
    for (index, (name, pick)) in THROUGHPUT.iter().take(2).enumerate() {
        let asks = format!("{name}: ferryd >= {CEILING_SHARE} of the loopback ceiling");
        let ferryd = ferryd_and_best_peer(reports, *pick).0;
        // An upload must also be stored: its own ceiling, for the record.
        let stored = match (index, ferryd, median(&ceiling.to_file)) {
            (1, Some(f), Some(c)) if c > 0.0 => format!(
                "; {:.2} of the {} an upload into the servers' file system reaches",
                f / c,
                fmt(c)
            ),
            _ => String::new(),
        };
        goals.push(match (ferryd, ceiling.best()) {
            (Some(f), Some(c)) if c > 0.0 => Goal {
                asks,
                found: format!(
                    "{:.2} ({} of {}, the higher of sendfile and write){stored}",
                    f / c,
                    fmt(f),
                    fmt(c)
                ),
                met: Some(f >= CEILING_SHARE * c),
            },
            (None, _) => unmeasured(asks, "no figure of ferryd"),
            _ => unmeasured(asks, "the ceiling was not measured"),
        });
    }
    let ferryd = reports.iter().find_map(|r| match &r.outcome {
        Outcome::Ran(m) if r.peer == Peer::Ferryd => Some(m),
        _ => None,
    });
    let asks = format!(
        "RSS per idle session (ferryd, {} sessions) <= {IDLE_KIB} KiB",
        sizes.idle_sessions
    );
    goals.push(
        match ferryd.and_then(|m| m.idle.map(|idle| (idle, m.rss_start_kib))) {
            Some((idle, start_kib)) => idle_goal(asks, &idle, start_kib),
            None => unmeasured(asks, "not measured"),
        },
    );
    let asks = format!("NOOP p99 under load (ferryd) <= {NOOP_P99_MS} ms");
    goals.push(match ferryd.and_then(|m| m.under_downloads) {
        Some(latency) => Goal {
            asks,
            found: format!("{:.2} ms", latency.p99_ms),
            met: Some(latency.p99_ms <= NOOP_P99_MS),
        },
        None => unmeasured(asks, "not measured"),
    });
    goals
}

/// The idle-session goal: met only if every session asked for was admitted
/// and each cost at most [`IDLE_KIB`]. The found text adds ferryd's RSS
/// once started (its session table grows as sessions arrive: the slots
/// it starts with are there, not in the difference).
fn idle_goal(asks: String, idle: &Idle, start_kib: u64) -> Goal {
    let Some(kib) = idle.per_session_kib() else {
        return unmeasured(asks, "no session admitted");
    };
    let all = idle.admitted == idle.of;
    let mut found = format!("{kib:.1} KiB");
    if !all {
        found += &format!(
            ", but only {} of {} sessions were admitted",
            idle.admitted, idle.of
        );
    }
    found += &format!(" (RSS once started: {:.1} MiB)", start_kib as f64 / 1024.0);
    Goal {
        asks,
        found,
        met: Some(all && kib <= IDLE_KIB),
    }
}

fn unmeasured(asks: String, why: &str) -> Goal {
    Goal {
        asks,
        found: why.into(),
        met: None,
    }
}

/// A figure with about three significant digits.
fn fmt(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The goals block: one line each.
pub(super) fn render(goals: &[Goal]) -> String {
    let mut out = String::from("Goals (issue 14), judged from this run:\n\n");
    for goal in goals {
        let verdict = match goal.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "not measured",
        };
        out += &format!("- {}: {verdict}: {}\n", goal.asks, goal.found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::load::Latency;
    use super::super::{Measured, FULL};
    use super::*;

    fn report(peer: Peer, measured: Measured) -> Report {
        Report {
            peer,
            version: "v".into(),
            setup: "s".into(),
            outcome: Outcome::Ran(Box::new(measured)),
        }
    }

    #[test]
    fn goals_from_the_figures() {
        let ferryd = Measured {
            retr: vec![3000.0, 3300.0, 3200.0],
            stor: vec![2000.0],
            rounds: vec![2500.0],
            connections: vec![5000.0],
            parallel: vec![],
            under_downloads: Some(Latency {
                count: 100,
                p50_ms: 0.1,
                p99_ms: 4.9,
                max_ms: 9.0,
                load: 10,
            }),
            idle: Some(Idle {
                of: 1000,
                admitted: 1000,
                seconds: 1.0,
                before_kib: 8000,
                held_kib: 12_000,
                ..Idle::default()
            }),
            ..Measured::default()
        };
        let peer = Measured {
            retr: vec![3000.0],
            stor: vec![1000.0],
            rounds: vec![2000.0],
            connections: vec![100.0],
            parallel: vec![500.0],
            ..Measured::default()
        };
        let skipped = Report {
            peer: Peer::PureFtpd,
            version: String::new(),
            setup: String::new(),
            outcome: Outcome::Skipped("missing".into()),
        };
        let reports = [
            report(Peer::Ferryd, ferryd),
            report(Peer::Vsftpd, peer),
            skipped,
        ];
        let ceiling = Ceiling {
            sendfile: vec![4100.0],
            write: vec![3000.0],
            to_file: vec![2000.0],
            failed: None,
        };
        let goals = assess(&reports, &ceiling, &FULL);
        let met: Vec<Option<bool>> = goals.iter().map(|g| g.met).collect();
        assert_eq!(
            met,
            [
                Some(false), // RETR 3200 against 3000: 1.07x
                Some(true),  // STOR 2.0x
                Some(true),  // small files 1.25x
                Some(true),  // logins
                None,        // no figure of ferryd's 8 clients
                Some(false), // RETR 3200 of 4100: 0.78
                Some(false), // STOR 0.5
                Some(true),  // 4.0 KiB per session
                Some(true),  // p99 4.9 ms
            ]
        );
        assert_eq!(goals[0].found, "1.07x (3200 against vsftpd 3000)");
        assert_eq!(goals[5].asks, "RETR: ferryd >= 0.8 of the loopback ceiling");
        assert_eq!(
            goals[6].found,
            "0.49 (2000 of 4100, the higher of sendfile and write); 1.00 of the 2000 an \
             upload into the servers' file system reaches"
        );
        let text = render(&goals);
        assert!(text.contains("- STOR: ferryd >= 1.2x the best peer: met: 2.00x"));
        assert!(text.contains("- 8 small-files clients: ferryd >= 1.2x the best peer: not measured: no figure of ferryd"));
        assert_eq!(text.lines().count(), 2 + goals.len());
    }

    #[test]
    fn idle_sessions_must_all_be_admitted() {
        let idle = Idle {
            of: 1000,
            admitted: 64,
            seconds: 1.0,
            before_kib: 8000,
            held_kib: 8064,
            ..Idle::default()
        };
        let goal = idle_goal("asks".into(), &idle, 9216);
        assert_eq!(goal.met, Some(false));
        assert_eq!(
            goal.found,
            "1.0 KiB, but only 64 of 1000 sessions were admitted (RSS once started: 9.0 MiB)"
        );
        let none = Idle {
            admitted: 0,
            ..idle
        };
        assert_eq!(idle_goal("asks".into(), &none, 0).met, None);
    }
}
