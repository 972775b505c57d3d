//! Virtual paths: resolving a client's path argument against the working
//! directory into a canonical absolute path that can never leave `/`.
//!
//! Canonical means: starts with `/`, no empty, `.` or `..` components, no
//! trailing `/` (except the root itself). `..` at the root stays at the root.
//! Arguments holding `\`, NUL, CR or LF are refused.

/// Why a path argument cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The argument holds `\`, NUL, CR or LF (reply 553 or 501).
    InvalidCharacter,
    /// The result does not fit the output buffer (reply 553).
    TooLong,
}

/// Resolves `arg` (absolute or relative to `cwd`, which must be canonical)
/// into `out`; returns the length of the canonical path written there.
/// An empty `arg` resolves to `cwd`.
pub fn resolve(cwd: &[u8], arg: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    let _ = (cwd, arg, out);
    todo!()
}

/// Joins a canonical `home` and a canonical virtual `path` into the path the
/// file system sees (`/home` + `/a` -> `/home/a`; `/` + `/a` -> `/a`;
/// `/home` + `/` -> `/home`); returns its length in `out`.
pub fn join_home(home: &[u8], path: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    let _ = (home, path, out);
    todo!()
}

/// The last component of a canonical path (`/a/b` -> `b`, `/` -> empty).
pub fn file_name(path: &[u8]) -> &[u8] {
    let _ = path;
    todo!()
}

/// The parent of a canonical path (`/a/b` -> `/a`, `/a` -> `/`, `/` -> `/`).
pub fn parent(path: &[u8]) -> &[u8] {
    let _ = path;
    todo!()
}
