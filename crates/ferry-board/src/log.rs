//! The engine's events as log lines.
use core::fmt;

use ferry_core::server::{Event, Observer, TransferKind};

/// Logs each of the engine's events as one line through `print`, the
/// board's way to print (`print(format_args!(..))`; the function adds the
/// line end). Commands are not logged.
#[derive(Clone, Copy)]
pub struct LogObserver {
    print: fn(fmt::Arguments<'_>),
}

impl LogObserver {
    /// An observer printing through `print`.
    pub const fn new(print: fn(fmt::Arguments<'_>)) -> LogObserver {
        LogObserver { print }
    }
}

impl fmt::Debug for LogObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogObserver").finish_non_exhaustive()
    }
}

impl Observer for LogObserver {
    fn event(&mut self, event: Event<'_>) {
        let print = self.print;
        match event {
            Event::Connected { session, peer } => {
                print(format_args!("[{session}] {peer} connected"))
            }
            Event::Refused { peer } => {
                print(format_args!("{peer} refused with 421 (limit reached)"))
            }
            Event::Evicted { session } => print(format_args!(
                "[{session}] evicted: not logged in, room needed"
            )),
            Event::Command { .. } => {}
            Event::Login { session, user, ok } => print(format_args!(
                "[{session}] login {} {}",
                user.escape_ascii(),
                if ok { "ok" } else { "failed" }
            )),
            Event::Transfer {
                session,
                kind,
                path,
                bytes,
                ok,
            } => print(format_args!(
                "[{session}] {} {} {bytes} bytes {}",
                kind_name(kind),
                path.escape_ascii(),
                if ok { "ok" } else { "failed" }
            )),
            Event::Disconnected { session } => print(format_args!("[{session}] disconnected")),
        }
    }
}

/// A transfer's kind as the log names it.
fn kind_name(kind: TransferKind) -> &'static str {
    match kind {
        TransferKind::Download => "download",
        TransferKind::Upload => "upload",
        TransferKind::Append => "append",
        TransferKind::Listing => "listing",
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::cell::RefCell;
    use std::string::String;
    use std::vec::Vec;

    std::thread_local! {
        static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    fn record(args: fmt::Arguments<'_>) {
        LINES.with(|l| l.borrow_mut().push(std::format!("{args}")));
    }

    #[test]
    fn one_line_per_event() {
        let mut observer = LogObserver::new(record);
        observer.event(Event::Login {
            session: 1,
            user: b"ferry",
            ok: true,
        });
        observer.event(Event::Command {
            session: 1,
            line: b"NOOP",
        });
        observer.event(Event::Transfer {
            session: 1,
            kind: TransferKind::Upload,
            path: b"/a b.txt",
            bytes: 42,
            ok: true,
        });
        let lines = LINES.with(|l| l.borrow().clone());
        assert_eq!(
            lines,
            ["[1] login ferry ok", "[1] upload /a b.txt 42 bytes ok"]
        );
    }
}
