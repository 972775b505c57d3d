//! The readable record of a run: commands sent, replies received, faults
//! injected, each with the simulated time.

use std::cell::RefCell;
use std::rc::Rc;

/// Lines of a run's trace, stamped with the simulated time.
#[derive(Debug, Default)]
pub struct Trace {
    /// Simulated milliseconds, set by the run before each step.
    pub now: u64,
    /// The lines so far.
    pub lines: Vec<String>,
}

impl Trace {
    /// Adds a line at the current time.
    pub fn log(&mut self, line: impl AsRef<str>) {
        let now = self.now;
        self.lines.push(format!(
            "{:>4}.{:03} {}",
            now / 1000,
            now % 1000,
            line.as_ref()
        ));
    }
}

/// A [`Trace`] shared by the parts of a run.
pub type SharedTrace = Rc<RefCell<Trace>>;

/// Bytes as a short readable string: printable ASCII as is, the rest escaped,
/// cut after `max` bytes.
pub fn show(bytes: &[u8], max: usize) -> String {
    let mut s: String = bytes
        .iter()
        .take(max)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > max {
        s.push_str(&format!("...({} bytes)", bytes.len()));
    }
    s
}
