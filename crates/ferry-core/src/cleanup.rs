//! Removing the upload temporaries an earlier run left behind.
//!
//! An upload that replaces a file writes `dir/.<slot>.ferry-part` and
//! renames it over the target when it completes (see `transfer.rs`). A
//! crash or a power cut in between leaves the temporary: the old file is
//! intact, and the temporary, hidden from every client, would stay forever.
//! [`Server::remove_upload_leftovers`] walks the tree once at start and
//! removes them.
use crate::server::{Server, Slot};
use crate::session::{PATH_LEN, UPLOAD_SUFFIX};
use ferry_fs::{EntryKind, FileSystem};
use ferry_net::SecureStack;

/// Whether `name` is a temporary of the engine's own naming: `.`, the
/// decimal number of a session slot, [`UPLOAD_SUFFIX`].
pub fn is_upload_leftover(name: &[u8]) -> bool {
    name.strip_prefix(b".")
        .and_then(|n| n.strip_suffix(UPLOAD_SUFFIX))
        .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
}

/// Appends `/name` (or `name` after the root's `/`) to `path[..len]`; the
/// new length, or `None` if it does not fit.
fn push(path: &mut [u8; PATH_LEN], len: usize, name: &[u8]) -> Option<usize> {
    let at = if len == 1 { 1 } else { len + 1 };
    path.get_mut(at..at + name.len())?.copy_from_slice(name);
    if len != 1 {
        *path.get_mut(len)? = b'/';
    }
    Some(at + name.len())
}

/// Where the walk resumes in a directory.
enum Resume {
    /// At its start: first remove its leftovers, then look for directories.
    Start,
    /// After the entry called `path[from..to]` (the directory just walked).
    After(usize, usize),
}

impl<S: SecureStack, F: FileSystem, const N: usize, const B: usize, T, P> Server<S, F, N, B, T, P>
where
    T: AsRef<[Slot<S::TcpSocket, F>]> + AsMut<[Slot<S::TcpSocket, F>]>,
{
    /// Removes every upload temporary an earlier run left in `fs` (see
    /// [`is_upload_leftover`]), reporting each removed path to `report`;
    /// how many were removed. Call it once at start, before serving: a
    /// running upload's temporary looks the same.
    ///
    /// The walk holds one directory open at a time and keeps no state per
    /// level: on its way back up it reopens the parent and reads on after
    /// the directory it left (entry order must not change meanwhile, which
    /// holds for the backends Ferry has). It uses the server's path and
    /// transfer buffers (a name longer than the transfer buffer is skipped,
    /// as are directories whose path would be too long). A directory that
    /// cannot be read is skipped.
    pub fn remove_upload_leftovers<O: FnMut(&[u8])>(&mut self, fs: &mut F, mut report: O) -> usize {
        let path = &mut self.path;
        let name = &mut self.scratch[..];
        let mut removed = 0;
        path[0] = b'/';
        let mut len = 1;
        let mut resume = Resume::Start;
        loop {
            if let Resume::Start = resume {
                // Leftovers first, one per pass: the directory is closed
                // before each removal.
                while let Some(n) = find(fs, path.get(..len).unwrap_or(b"/"), name, |e, n| {
                    e.metadata.kind == EntryKind::File && is_upload_leftover(n)
                }) {
                    let Some(end) = name.get(..n).and_then(|n| push(path, len, n)) else {
                        break;
                    };
                    let victim = path.get(..end).unwrap_or(b"/");
                    if fs.remove_file(victim).is_err() {
                        break;
                    }
                    report(victim);
                    removed += 1;
                }
            }
            // The next directory after the resume point.
            let here = path.get(..len).unwrap_or(b"/");
            let mut passed = matches!(resume, Resume::Start);
            let (from, to) = match resume {
                Resume::After(from, to) => (from, to),
                Resume::Start => (0, 0),
            };
            let next = find(fs, here, name, |e, n| {
                if !passed {
                    passed = path.get(from..to) == Some(n);
                    return false;
                }
                e.metadata.kind == EntryKind::Dir
            });
            match next.and_then(|n| push(path, len, name.get(..n)?)) {
                Some(end) => {
                    len = end;
                    resume = Resume::Start;
                }
                None => {
                    // This directory is done: back up to its parent.
                    if len == 1 {
                        return removed;
                    }
                    let parent =
                        crate::protocol::path::parent(path.get(..len).unwrap_or(b"/")).len();
                    let from = if parent == 1 { 1 } else { parent + 1 };
                    resume = Resume::After(from, len);
                    len = parent;
                }
            }
        }
    }
}

/// Opens `dir` and reads until `want` takes an entry; the length of its
/// name, in `name`. `None` at the end or on an error. The directory is
/// closed when this returns.
fn find<F: FileSystem>(
    fs: &mut F,
    dir: &[u8],
    name: &mut [u8],
    mut want: impl FnMut(&ferry_fs::DirEntry, &[u8]) -> bool,
) -> Option<usize> {
    let mut d = fs.open_dir(dir).ok()?;
    while let Ok(Some(e)) = fs.read_dir(&mut d, name) {
        if want(&e, name.get(..e.name_len)?) {
            return Some(e.name_len);
        }
    }
    None
}
