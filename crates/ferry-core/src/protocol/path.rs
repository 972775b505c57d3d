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
///
/// `cwd` is normalised the same way as `arg`, so even a non-canonical `cwd`
/// gives a canonical result. A `..` that removes a component written just
/// before may still make an intermediate result too long for `out`
/// ([`PathError::TooLong`]).
pub fn resolve(cwd: &[u8], arg: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    if !valid_chars(arg) || !valid_chars(cwd) {
        return Err(PathError::InvalidCharacter);
    }
    // `out[..len]` is the path so far without its root `/`: empty for the
    // root, else `/a/b` with no trailing `/`.
    let mut len = 0;
    if arg.first() != Some(&b'/') {
        len = apply_all(out, len, cwd)?;
    }
    len = apply_all(out, len, arg)?;
    if len == 0 {
        *out.first_mut().ok_or(PathError::TooLong)? = b'/';
        len = 1;
    }
    Ok(len)
}

/// True if `path` holds none of `\`, NUL, CR, LF.
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
fn valid_chars(path: &[u8]) -> bool {
    !path.iter().any(|&b| matches!(b, b'\\' | 0 | b'\r' | b'\n'))
}

/// Applies each `/`-separated component of `path` (as `split` yields
/// them) to the path `out[..len]`; returns the new length. One loop for
/// both callers instead of two inlined split iterators.
fn apply_all(out: &mut [u8], mut len: usize, path: &[u8]) -> Result<usize, PathError> {
    let mut rest = path;
    loop {
        let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        len = apply(out, len, rest.get(..end).unwrap_or(&[]))?;
        match rest.get(end + 1..) {
            Some(after) => rest = after,
            None => return Ok(len),
        }
    }
}

/// Applies one component to the path `out[..len]`; returns the new length.
fn apply(out: &mut [u8], len: usize, part: &[u8]) -> Result<usize, PathError> {
    match part {
        b"" | b"." => Ok(len),
        b".." => Ok(out
            .get(..len)
            .and_then(|path| path.iter().rposition(|&b| b == b'/'))
            .unwrap_or(0)),
        _ => {
            let end = len
                .checked_add(1)
                .and_then(|n| n.checked_add(part.len()))
                .ok_or(PathError::TooLong)?;
            let (slash, name) = out
                .get_mut(len..end)
                .and_then(|dst| dst.split_first_mut())
                .ok_or(PathError::TooLong)?;
            *slash = b'/';
            name.copy_from_slice(part);
            Ok(end)
        }
    }
}

/// Joins a canonical `home` and a canonical virtual `path` into the path the
/// file system sees (`/home` + `/a` -> `/home/a`; `/` + `/a` -> `/a`;
/// `/home` + `/` -> `/home`); returns its length in `out`.
pub fn join_home(home: &[u8], path: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    let home = home.strip_suffix(b"/").unwrap_or(home);
    let path = if path == b"/" { &[][..] } else { path };
    if home.is_empty() && path.is_empty() {
        *out.first_mut().ok_or(PathError::TooLong)? = b'/';
        return Ok(1);
    }
    let total = home
        .len()
        .checked_add(path.len())
        .ok_or(PathError::TooLong)?;
    let dst = out.get_mut(..total).ok_or(PathError::TooLong)?;
    let (head, tail) = dst.split_at_mut(home.len());
    head.copy_from_slice(home);
    tail.copy_from_slice(path);
    Ok(total)
}

/// The last component of a canonical path (`/a/b` -> `b`, `/` -> empty).
// Size: many callers, and opt-level "s" would inline a copy into each.
#[inline(never)]
pub fn file_name(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(&[])
}

/// The parent of a canonical path (`/a/b` -> `/a`, `/a` -> `/`, `/` -> `/`).
pub fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(slash) => path.get(..slash).unwrap_or(b"/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cwd: &str, arg: &[u8]) -> Result<([u8; 64], usize), PathError> {
        let mut out = [0u8; 64];
        let len = resolve(cwd.as_bytes(), arg, &mut out)?;
        Ok((out, len))
    }

    #[track_caller]
    fn check(cwd: &str, arg: &str, want: &str) {
        let (out, len) = res(cwd, arg.as_bytes()).unwrap();
        assert_eq!(
            core::str::from_utf8(&out[..len]).unwrap(),
            want,
            "cwd {cwd:?} arg {arg:?}"
        );
    }

    #[test]
    fn absolute_and_relative() {
        check("/", "", "/");
        check("/a/b", "", "/a/b");
        check("/", "a", "/a");
        check("/a", "b/c", "/a/b/c");
        check("/a", "/x", "/x");
        check("/a", "/", "/");
        check("/a/b", "c/", "/a/b/c");
        check("/", "file.txt", "/file.txt");
    }

    #[test]
    fn dots_and_slashes() {
        check("/a/b", ".", "/a/b");
        check("/a/b", "./c/./d/.", "/a/b/c/d");
        check("/a/b", "..", "/a");
        check("/a/b", "../..", "/");
        check("/a/b", "../c", "/a/c");
        check("/a", "b/../../c", "/c");
        check("/", "//a///b//", "/a/b");
        check("/a", "//", "/");
        check("/a", "...", "/a/...");
        check("/a", "..b", "/a/..b");
        check("/a", ".b.", "/a/.b.");
    }

    #[test]
    fn never_above_root() {
        check("/", "..", "/");
        check("/", "../../..", "/");
        check("/a", "/../..", "/");
        check("/a", "/../../etc/passwd", "/etc/passwd");
        check("/a/b", "../../../../../x", "/x");
        check("/", "a/../../../b/..", "/");
    }

    #[test]
    fn non_canonical_cwd_is_normalised() {
        check("", "a", "/a");
        check("a//b/", "c", "/a/b/c");
        check("/a/./../..", "b", "/b");
    }

    #[test]
    fn utf8_and_odd_bytes_pass_through() {
        check("/", "ünïcødé/日本", "/ünïcødé/日本");
        check("/", "a b/ c ", "/a b/ c ");
        let (out, len) = res("/", b"\xff\xfe").unwrap();
        assert_eq!(&out[..len], b"/\xff\xfe");
    }

    #[test]
    fn refuses_bad_characters() {
        for arg in [&b"a\\b"[..], b"..\\..\\x", b"a\0b", b"a\rb", b"a\n", b"\\"] {
            assert_eq!(res("/", arg).unwrap_err(), PathError::InvalidCharacter);
        }
        let mut out = [0u8; 16];
        assert_eq!(
            resolve(b"/a\\b", b"c", &mut out),
            Err(PathError::InvalidCharacter)
        );
    }

    #[test]
    fn too_long() {
        let mut out = [0u8; 4];
        assert_eq!(resolve(b"/", b"abc", &mut out), Ok(4));
        assert_eq!(&out, b"/abc");
        assert_eq!(resolve(b"/", b"abcd", &mut out), Err(PathError::TooLong));
        assert_eq!(resolve(b"/ab", b"c", &mut out), Err(PathError::TooLong));
        assert_eq!(resolve(b"/ab", b"/c/d", &mut out), Ok(4));
        assert_eq!(&out, b"/c/d");
        assert_eq!(resolve(b"/", b"", &mut []), Err(PathError::TooLong));
        assert_eq!(resolve(b"/", b"", &mut out[..1]), Ok(1));
        assert_eq!(out[0], b'/');
    }

    #[test]
    fn joins_home() {
        let cases = [
            ("/home", "/a", "/home/a"),
            ("/", "/a", "/a"),
            ("/home", "/", "/home"),
            ("/", "/", "/"),
            ("/h/u", "/a/b", "/h/u/a/b"),
        ];
        for (home, path, want) in cases {
            let mut out = [0u8; 16];
            let len = join_home(home.as_bytes(), path.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..len], want.as_bytes(), "{home} + {path}");
        }
        let mut small = [0u8; 6];
        assert_eq!(
            join_home(b"/home", b"/a", &mut small),
            Err(PathError::TooLong)
        );
        assert_eq!(join_home(b"/", b"/", &mut []), Err(PathError::TooLong));
    }

    #[test]
    fn names_and_parents() {
        assert_eq!(file_name(b"/a/b"), b"b");
        assert_eq!(file_name(b"/a"), b"a");
        assert_eq!(file_name(b"/"), b"");
        assert_eq!(file_name(b""), b"");
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a/b/c"), b"/a/b");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(parent(b"/"), b"/");
        assert_eq!(parent(b""), b"/");
    }
}
