//! The size budget (`size-budget.toml` at the repository root): for each
//! engine build (protocol profile × opt-level), the enforced limit of each
//! figure and, where issue 10 sets one, the goal.
//!
//! The file is TOML, restricted to what this module reads: `[profile.opt]`
//! sections (e.g. `[emftp.z]`) holding integer keys, `rom = 30000` for the
//! enforced limit and `rom_goal = 5120` for the goal; `#` comments. A build
//! that exceeds a limit fails `cargo xtask size --check` (and so `cargo
//! xtask test`); the distance to each goal is printed either way.
//! `cargo xtask size --ratchet` lowers each limit to the figure measured
//! (never raises one); raising a limit is a deliberate edit of the file.
use std::collections::BTreeMap;

/// The figures a budget holds, in the order of summary.json's keys.
pub const METRICS: [&str; 4] = ["rom", "ram_one_session", "ram_each_further", "stack"];

/// The figures of the TLS layer's section (`[tls.z]`, see `size/tls.rs`).
pub const TLS_METRICS: [&str; 2] = ["rom", "ram_per_connection"];

/// One build's figures, in the order of [`METRICS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figures {
    pub profile: &'static str,
    pub opt: &'static str,
    pub values: [u32; 4],
}

/// Parsed budget: `(profile, opt)` → key → bytes.
#[derive(Debug, Default)]
pub struct Budget {
    sections: BTreeMap<(String, String), BTreeMap<String, u32>>,
}

/// A section header's `(profile, opt)`, or `None` for other lines.
fn header(line: &str) -> Option<(String, String)> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    let (profile, opt) = inner.trim().split_once('.')?;
    Some((profile.trim().to_string(), opt.trim().to_string()))
}

/// A `key = integer` line.
fn entry(line: &str) -> Option<(&str, u32)> {
    let (key, value) = line.split_once('=')?;
    let value: String = value.trim().chars().filter(|&c| c != '_').collect();
    Some((key.trim(), value.parse().ok()?))
}

/// `line` without its comment.
fn uncommented(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

impl Budget {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Budget, String> {
        let mut budget = Budget::default();
        let mut current = None;
        for (n, raw) in text.lines().enumerate() {
            let line = uncommented(raw);
            if line.is_empty() {
                continue;
            }
            if let Some(section) = header(line) {
                budget.sections.entry(section.clone()).or_default();
                current = Some(section);
                continue;
            }
            let (Some(section), Some((key, value))) = (&current, entry(line)) else {
                return Err(format!("line {}: cannot read `{}`", n + 1, raw.trim()));
            };
            let known = METRICS
                .iter()
                .chain(&TLS_METRICS)
                .any(|m| key == *m || key.strip_suffix("_goal") == Some(m));
            if !known {
                return Err(format!("line {}: unknown key `{key}`", n + 1));
            }
            if let Some(keys) = budget.sections.get_mut(section) {
                keys.insert(key.to_string(), value);
            }
        }
        Ok(budget)
    }

    fn get(&self, profile: &str, opt: &str, key: &str) -> Option<u32> {
        self.sections
            .get(&(profile.to_string(), opt.to_string()))?
            .get(key)
            .copied()
    }

    /// Compares `builds` with the budget: a line per figure, and what
    /// exceeds its limit (or has none).
    pub fn compare(&self, builds: &[Figures]) -> (String, Vec<String>) {
        self.compare_named(&named(builds))
    }

    /// [`Budget::compare`] for figures named `(profile, opt, figure,
    /// bytes)`.
    pub fn compare_named(&self, figures: &[(&str, &str, &str, u32)]) -> (String, Vec<String>) {
        let mut out = format!(
            "  {:<8} {:<4} {:<18} {:>9} {:>9} {:>9}   {}\n",
            "profile", "opt", "figure", "measured", "limit", "goal", "to the goal"
        );
        let mut over = Vec::new();
        for &(profile, opt, metric, value) in figures {
            let limit = self.get(profile, opt, metric);
            let goal = self.get(profile, opt, &format!("{metric}_goal"));
            let to_goal = match goal {
                Some(g) if value > g => format!("{} bytes over", value - g),
                Some(g) => format!("met ({} bytes to spare)", g - value),
                None => "no goal".to_string(),
            };
            let show = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
            let verdict = match limit {
                None => {
                    over.push(format!(
                        "{} {} {metric}: no limit in the budget",
                        profile, opt
                    ));
                    "  NO LIMIT"
                }
                Some(l) if value > l => {
                    over.push(format!(
                        "{} opt \"{}\" {metric}: {value} bytes exceeds its limit of {l} by {}",
                        profile,
                        opt,
                        value - l
                    ));
                    "  OVER LIMIT"
                }
                Some(_) => "",
            };
            out += &format!(
                "  {:<8} {:<4} {:<18} {:>9} {:>9} {:>9}   {to_goal}{verdict}\n",
                profile,
                opt,
                metric,
                value,
                show(limit),
                show(goal)
            );
        }
        (out, over)
    }
}

/// `text` with each limit of a measured build lowered to its figure where
/// the figure is lower; comments, goals and layout stay.
pub fn ratchet(text: &str, builds: &[Figures]) -> String {
    ratchet_named(text, &named(builds))
}

/// The builds' figures as `(profile, opt, figure, bytes)`.
fn named(builds: &[Figures]) -> Vec<(&str, &str, &str, u32)> {
    builds
        .iter()
        .flat_map(|b| {
            METRICS
                .iter()
                .zip(b.values)
                .map(|(m, v)| (b.profile, b.opt, *m, v))
        })
        .collect()
}

/// [`ratchet`] for figures named `(profile, opt, figure, bytes)`.
pub fn ratchet_named(text: &str, figures: &[(&str, &str, &str, u32)]) -> String {
    let mut current: Option<(String, String)> = None;
    let mut out = String::with_capacity(text.len());
    for raw in text.lines() {
        let line = uncommented(raw);
        if let Some(section) = header(line) {
            current = Some(section);
        } else if let (Some((profile, opt)), Some((key, old))) = (&current, entry(line)) {
            let measured = figures
                .iter()
                .find(|f| f.0 == profile && f.1 == opt && f.2 == key)
                .map(|f| f.3);
            if let Some(value) = measured.filter(|&v| v < old) {
                let indent = &raw[..raw.len() - raw.trim_start().len()];
                let comment = raw.find('#').map_or("", |i| &raw[i..]);
                let mut new = format!("{indent}{key} = {value}");
                if !comment.is_empty() {
                    new = format!("{new:<24} {comment}");
                }
                out += &new;
                out.push('\n');
                continue;
            }
        }
        out += raw;
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# budget\n[emftp.z]\nrom = 6_000   # limit\nrom_goal = 5120\nstack = 2000\n\n[default.z]\nrom = 1\n";

    fn build(values: [u32; 4]) -> Figures {
        Figures {
            profile: "emftp",
            opt: "z",
            values,
        }
    }

    #[test]
    fn a_figure_over_its_limit_fails() {
        let budget = Budget::parse(TEXT).unwrap();
        let (_, over) = budget.compare(&[build([5000, 0, 0, 1000])]);
        // ram figures have no limit in this budget.
        assert_eq!(over.len(), 2, "{over:?}");
        let (report, over) = budget.compare(&[build([6001, 0, 0, 1000])]);
        assert!(over
            .iter()
            .any(|o| o.contains("exceeds its limit of 6000 by 1")));
        assert!(report.contains("881 bytes over"), "{report}");
    }

    #[test]
    fn ratchet_only_lowers_limits() {
        let text = ratchet(TEXT, &[build([5500, 0, 0, 2500])]);
        let budget = Budget::parse(&text).unwrap();
        assert_eq!(budget.get("emftp", "z", "rom"), Some(5500));
        assert_eq!(budget.get("emftp", "z", "stack"), Some(2000));
        assert_eq!(budget.get("emftp", "z", "rom_goal"), Some(5120));
        assert!(text.contains("# limit"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Budget::parse("[emftp.z]\nrum = 1\n").is_err());
        assert!(Budget::parse("rom = 1\n").is_err());
    }
}
