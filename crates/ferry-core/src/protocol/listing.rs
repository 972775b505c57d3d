//! Directory listing lines: `LIST` in the `ls -l` form that FileZilla, WinSCP,
//! lftp, curl and rclone parse, `NLST` names, and RFC 3659 `MLSD`/`MLST` facts.
//!
//! Each function writes one line ending in CR LF into `out` and returns its
//! length, or `None` if `out` is too small (nothing useful written then).
use ferry_fs::Metadata;

/// Which permissions the `perm` fact reports (RFC 3659 7.5.5), derived from
/// what the logged-in user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermFacts {
    /// May read (files: `r`; dirs: `e` enter, `l` list).
    pub read: bool,
    /// May write (files: `a` append, `w` write; dirs: `c` create file, `p` purge... see RFC).
    pub write: bool,
    /// May delete (`d`).
    pub delete: bool,
    /// May rename (`f`).
    pub rename: bool,
    /// May make directories (`m`).
    pub mkdir: bool,
}

/// One `ls -l` line: `drwxr-xr-x 1 ftp ftp 4096 Nov 24 12:34 name` CR LF.
/// Dates within 180 days of `now` (Unix secs) show `HH:MM`, older or
/// future ones the year; a missing mtime shows `Jan 01  1970`. Mode bits come
/// from `meta.mode`, else `rw-r--r--` for files and `rwxr-xr-x` for dirs.
pub fn list_line(name: &[u8], meta: &Metadata, now: Option<u64>, out: &mut [u8]) -> Option<usize> {
    let _ = (name, meta, now, out);
    todo!()
}

/// One `NLST` line: `name` CR LF.
pub fn nlst_line(name: &[u8], out: &mut [u8]) -> Option<usize> {
    let _ = (name, out);
    todo!()
}

/// One MLSx entry: `type=file;size=N;modify=YYYYMMDDHHMMSS;perm=...; name`
/// CR LF (RFC 3659 7.2). `type` is `cdir` when `cdir` is true (the listed
/// directory itself), else `file`/`dir`. Facts: type, size (files only),
/// modify (if known), perm, and `UNIX.mode=0644` if the mode is known.
/// For `MLST` the caller prefixes the single space itself.
pub fn mlsx_line(
    name: &[u8],
    meta: &Metadata,
    cdir: bool,
    perm: PermFacts,
    out: &mut [u8],
) -> Option<usize> {
    let _ = (name, meta, cdir, perm, out);
    todo!()
}
