//! What the clients may expect of the files they wrote: for each path, the
//! contents it may hold (`None`: absent). An acknowledged upload narrows a
//! path to one content; an outcome the client could not see (its
//! connection died) widens it to the old and the new; a failure that the
//! engine promises is harmless (a replacing upload that got an error
//! reply) leaves it as it was.

use std::collections::BTreeMap;

use crate::trace::show;

/// One possible state of a file: its bytes, or `None` when absent.
pub type Content = Option<Vec<u8>>;

/// What a path may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// One of these (never empty).
    OneOf(Vec<Content>),
    /// Anything: the model lost track (e.g. an append that failed half way).
    Unknown,
}

impl Expect {
    /// Exactly `content`.
    pub fn exactly(content: Content) -> Expect {
        Expect::OneOf(vec![content])
    }

    /// Whether the file surely exists (every possibility is some content).
    pub fn surely_exists(&self) -> bool {
        matches!(self, Expect::OneOf(v) if v.iter().all(Option::is_some))
    }

    /// This or also `content`.
    pub fn or(self, content: Content) -> Expect {
        match self {
            Expect::OneOf(mut v) => {
                if !v.contains(&content) {
                    v.push(content);
                }
                // Too many branches to be useful: give up on this path.
                if v.len() > 8 {
                    Expect::Unknown
                } else {
                    Expect::OneOf(v)
                }
            }
            Expect::Unknown => Expect::Unknown,
        }
    }
}

/// The expectations of every path the clients write.
#[derive(Debug, Default)]
pub struct Model {
    files: BTreeMap<String, Expect>,
}

impl Model {
    /// What `path` may hold (`Unknown` for a path never set).
    pub fn get(&self, path: &str) -> Expect {
        self.files.get(path).cloned().unwrap_or(Expect::Unknown)
    }

    /// Sets what `path` may hold. Shared files (`/shared/...`), which
    /// several clients write at once, are not followed.
    pub fn set(&mut self, path: &str, expect: Expect) {
        if !path.starts_with("/shared/") {
            self.files.insert(path.to_string(), expect);
        }
    }

    /// Every path with its expectation.
    pub fn paths(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Checks that `path` holding `actual` (read from offset `from`) is
    /// allowed; narrows the path to it when read whole.
    pub fn check(&mut self, path: &str, actual: &Content, from: usize) -> Result<(), String> {
        self.check_as(path, actual, from, |c| c.to_vec())
    }

    /// Like [`Model::check`], with each possible content seen through
    /// `view` first (e.g. the line-end conversion of a TYPE A download).
    pub fn check_as(
        &mut self,
        path: &str,
        actual: &Content,
        from: usize,
        view: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Result<(), String> {
        let expect = self.get(path);
        let Expect::OneOf(options) = expect else {
            return Ok(());
        };
        let matches = |c: &Content| match (c, actual) {
            (Some(c), Some(a)) => view(c.get(from..).unwrap_or(&[])) == a.as_slice(),
            (None, None) => true,
            _ => false,
        };
        match options.iter().find(|c| matches(c)) {
            Some(c) => {
                if from == 0 {
                    let c = c.clone();
                    self.set(path, Expect::exactly(c));
                }
                Ok(())
            }
            None => Err(format!(
                "{path} (from byte {from}) holds {}, expected one of [{}]",
                describe(actual),
                options.iter().map(describe).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// A content in a few words: absent, or its length and first bytes.
pub fn describe(c: &Content) -> String {
    match c {
        None => "nothing (absent)".into(),
        Some(b) => format!("{} bytes \"{}\"", b.len(), show(b, 16)),
    }
}

/// LF to CR LF, as a TYPE A download sends a file: an LF already after a
/// CR stays as it is.
pub fn to_crlf(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() + src.len() / 8);
    let mut prev = 0u8;
    for &b in src {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// CR LF to LF, as a TYPE A upload stores what it receives: a CR not
/// followed by LF (also one at the very end) is data and stays.
pub fn from_crlf(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut bytes = src.iter().peekable();
    while let Some(&b) = bytes.next() {
        if b == b'\r' && bytes.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_end_conversions() {
        assert_eq!(to_crlf(b"a\nb\r\nc\r"), b"a\r\nb\r\nc\r");
        assert_eq!(from_crlf(b"a\r\nb\r\r\nc\r"), b"a\nb\r\nc\r");
    }
}
