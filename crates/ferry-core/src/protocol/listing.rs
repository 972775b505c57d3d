//! Directory listing lines: `LIST` in the `ls -l` form that FileZilla, WinSCP,
//! lftp, curl and rclone parse, `NLST` names, and RFC 3659 `MLSD`/`MLST` facts.
//!
//! Each function writes one line ending in CR LF into `out` and returns its
//! length, or `None` if `out` is too small (nothing useful written then).
use ferry_fs::{EntryKind, Metadata};

use super::num::write_u64_padded;
#[cfg(feature = "mtime")]
use super::time::{format_timeval, DateTime, MAX_TIMEVAL_SECS};

/// How far back (in seconds) an `ls -l` date shows the time of day instead
/// of the year: about six months, as `ls` does.
#[cfg(feature = "mtime")]
const RECENT_SECS: u64 = 180 * 86_400;
/// Mode shown for files whose backend keeps no mode bits.
const DEFAULT_FILE_MODE: u16 = 0o644;
/// Mode shown for directories whose backend keeps no mode bits.
const DEFAULT_DIR_MODE: u16 = 0o755;
#[cfg(feature = "mtime")]
/// English month abbreviations, as `ls` prints them in the C locale, three
/// bytes each (one string: no table of pointers).
const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";

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

#[cfg(test)]
impl PermFacts {
    /// Every permission.
    pub(crate) const ALL: PermFacts = PermFacts {
        read: true,
        write: true,
        delete: true,
        rename: true,
        mkdir: true,
    };
}

/// One `ls -l` line: `drwxr-xr-x 1 ftp ftp 4096 Nov 24 12:34 name` CR LF.
/// Dates within 180 days of `now` (Unix secs) show `HH:MM`, older or
/// future ones the year; a missing mtime shows the epoch (`Jan  1  1970`). Mode bits come
/// from `meta.mode`, else `rw-r--r--` for files and `rwxr-xr-x` for dirs.
///
/// The exact layout is `{perm} 1 ftp ftp {size:>13} {Mon} {day:>2} {HH:MM
/// or " YYYY"} {name}`, e.g.
/// `-rw-r--r-- 1 ftp ftp          1234 Nov 24 12:34 notes.txt`.
pub fn list_line(name: &[u8], meta: &Metadata, now: Option<u64>, out: &mut [u8]) -> Option<usize> {
    let is_dir = meta.kind == EntryKind::Dir;
    let default_mode = if is_dir {
        DEFAULT_DIR_MODE
    } else {
        DEFAULT_FILE_MODE
    };
    let mode = meta.mode.unwrap_or(default_mode);
    let mut perm = [b'-'; 10];
    let (kind, bits) = perm.split_first_mut()?;
    if is_dir {
        *kind = b'd';
    }
    // Owner, group, other: read, write, execute from the high bit down.
    for ((slot, letter), bit) in bits
        .iter_mut()
        .zip(b"rwxrwxrwx".iter())
        .zip((0..9u16).rev())
    {
        if mode & (1 << bit) != 0 {
            *slot = *letter;
        }
    }

    let mut w = Writer::new(out);
    w.push(&perm);
    w.push(b" 1 ftp ftp ");
    w.number(meta.size, 13, b' ');
    w.push(b" ");
    #[cfg(feature = "mtime")]
    {
        let mtime = meta.modified.unwrap_or(0).min(MAX_TIMEVAL_SECS);
        let t = DateTime::from_unix(mtime);
        let recent = now.is_some_and(|now| mtime <= now && now - mtime <= RECENT_SECS);
        let month = usize::from(t.month).checked_sub(1).map(|m| m * 3);
        w.push(month.and_then(|m| MONTHS.get(m..m + 3)).unwrap_or(b"???"));
        w.push(b" ");
        w.number(u64::from(t.day), 2, b' ');
        w.push(b" ");
        if recent {
            w.number(u64::from(t.hour), 2, b'0');
            w.push(b":");
            w.number(u64::from(t.minute), 2, b'0');
        } else {
            w.number(u64::from(t.year), 5, b' ');
        }
    }
    // Without the `mtime` feature every entry shows the epoch.
    #[cfg(not(feature = "mtime"))]
    {
        let _ = now;
        w.push(b"Jan  1  1970");
    }
    w.push(b" ");
    w.push(name);
    w.push(b"\r\n");
    w.finish()
}

/// One `NLST` line: `name` CR LF.
pub fn nlst_line(name: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut w = Writer::new(out);
    w.push(name);
    w.push(b"\r\n");
    w.finish()
}

/// One MLSx entry: `type=file;size=N;modify=YYYYMMDDHHMMSS;perm=...; name`
/// CR LF (RFC 3659 7.2). `type` is `cdir` when `cdir` is true (the listed
/// directory itself), else `file`/`dir`. Facts: type, size (files only),
/// modify (if known), perm, and `UNIX.mode=0644` if the mode is known.
/// For `MLST` the caller prefixes the single space itself.
///
/// `perm` letters, in this order: files `r` (read), `a` `w` (write), `d`
/// (delete), `f` (rename); directories `e` `l` (read), `c` (write), `m`
/// (mkdir), `p` `d` (delete), `f` (rename).
pub fn mlsx_line(
    name: &[u8],
    meta: &Metadata,
    cdir: bool,
    perm: PermFacts,
    out: &mut [u8],
) -> Option<usize> {
    let is_dir = meta.kind == EntryKind::Dir;
    let mut w = Writer::new(out);
    w.push(match (cdir, is_dir) {
        (true, _) => b"type=cdir;",
        (false, true) => b"type=dir;",
        (false, false) => b"type=file;",
    });
    if !is_dir {
        w.push(b"size=");
        w.number(meta.size, 0, b'0');
        w.push(b";");
    }
    #[cfg(feature = "mtime")]
    if let Some(modified) = meta.modified {
        w.push(b"modify=");
        w.push(&format_timeval(modified));
        w.push(b";");
    }
    w.push(b"perm=");
    // One letter per byte, each with the permission that grants it: a
    // byte-by-byte table is smaller code than an array of slices.
    let (letters, grants): (&[u8], [bool; 7]) = if is_dir {
        (
            b"elcmpdf",
            [
                perm.read,
                perm.read,
                perm.write,
                perm.mkdir,
                perm.delete,
                perm.delete,
                perm.rename,
            ],
        )
    } else {
        (
            b"rawdf",
            [
                perm.read,
                perm.write,
                perm.write,
                perm.delete,
                perm.rename,
                false,
                false,
            ],
        )
    };
    for (letter, granted) in letters.iter().zip(grants) {
        if granted {
            w.push(core::slice::from_ref(letter));
        }
    }
    w.push(b";");
    if let Some(mode) = meta.mode {
        w.push(b"UNIX.mode=");
        let mode = mode & 0o7777;
        // Four octal digits, most significant first.
        for shift in [9u16, 6, 3, 0] {
            // A masked octal digit is below 8, so the cast is lossless.
            w.push(&[b'0' + ((mode >> shift) & 0o7) as u8]);
        }
        w.push(b";");
    }
    w.push(b" ");
    w.push(name);
    w.push(b"\r\n");
    w.finish()
}

/// Appends pieces to a line buffer, remembering if one did not fit.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
    fits: bool,
}

impl<'a> Writer<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self {
            out,
            len: 0,
            fits: true,
        }
    }

    fn spare(&mut self) -> &mut [u8] {
        self.out.get_mut(self.len..).unwrap_or(&mut [])
    }

    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn push(&mut self, bytes: &[u8]) {
        match self.spare().get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.fits = false,
        }
    }

    /// Appends `n` padded on the left with `pad` to at least `width` bytes.
    // Size: many callers, and opt-level "s" would inline a copy into each.
    #[inline(never)]
    fn number(&mut self, n: u64, width: usize, pad: u8) {
        match write_u64_padded(n, width, pad, self.spare()) {
            Some(written) => self.len += written,
            None => self.fits = false,
        }
    }

    fn finish(self) -> Option<usize> {
        self.fits.then_some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24 12:34:56 UTC.
    const T: u64 = 1_795_523_696;
    const DAY: u64 = 86_400;

    fn file(size: u64, modified: Option<u64>, mode: Option<u16>) -> Metadata {
        Metadata {
            kind: EntryKind::File,
            size,
            modified,
            mode,
        }
    }

    fn dir(modified: Option<u64>, mode: Option<u16>) -> Metadata {
        Metadata {
            kind: EntryKind::Dir,
            size: 4096,
            modified,
            mode,
        }
    }

    #[track_caller]
    fn list(name: &str, meta: &Metadata, now: Option<u64>) -> ([u8; 160], usize) {
        let mut out = [0u8; 160];
        let len = list_line(name.as_bytes(), meta, now, &mut out).unwrap();
        (out, len)
    }

    #[track_caller]
    fn check_list(name: &str, meta: &Metadata, now: Option<u64>, want: &str) {
        let (out, len) = list(name, meta, now);
        let got = core::str::from_utf8(&out[..len]).unwrap();
        if cfg!(feature = "mtime") {
            assert_eq!(got, want);
        } else {
            // Without dates every entry shows the epoch in the 12-byte field.
            let date = want.len() - name.len() - 3 - 12;
            assert_eq!(&got[..date], &want[..date]);
            assert_eq!(&got[date..date + 12], "Jan  1  1970");
            assert_eq!(&got[date + 12..], &want[date + 12..]);
        }
    }

    #[track_caller]
    fn check_mlsx(name: &str, meta: &Metadata, cdir: bool, perm: PermFacts, want: &str) {
        let mut out = [0u8; 160];
        let len = mlsx_line(name.as_bytes(), meta, cdir, perm, &mut out).unwrap();
        let got = core::str::from_utf8(&out[..len]).unwrap();
        match want.find("modify=") {
            // Without dates there is no modify fact.
            Some(at) if !cfg!(feature = "mtime") => {
                let end = at + "modify=YYYYMMDDHHMMSS;".len();
                assert_eq!(&got[..at], &want[..at]);
                assert_eq!(&got[at..], &want[end..]);
            }
            _ => assert_eq!(got, want),
        }
    }

    #[test]
    fn list_recent_file() {
        check_list(
            "notes.txt",
            &file(1234, Some(T), None),
            Some(T + 7 * DAY),
            "-rw-r--r-- 1 ftp ftp          1234 Nov 24 12:34 notes.txt\r\n",
        );
        // Right now counts as recent.
        check_list(
            "a",
            &file(0, Some(T), Some(0o600)),
            Some(T),
            "-rw------- 1 ftp ftp             0 Nov 24 12:34 a\r\n",
        );
    }

    #[test]
    fn list_directory() {
        check_list(
            "src",
            &dir(Some(T), None),
            Some(T + 60),
            "drwxr-xr-x 1 ftp ftp          4096 Nov 24 12:34 src\r\n",
        );
        check_list(
            "locked",
            &dir(Some(T), Some(0o700)),
            Some(T + 60),
            "drwx------ 1 ftp ftp          4096 Nov 24 12:34 locked\r\n",
        );
    }

    #[test]
    fn list_old_and_future_show_the_year() {
        // 2026-03-05 08:09: more than 180 days before `T + 7d`.
        let old = 1_772_698_140;
        check_list(
            "old",
            &file(7, Some(old), None),
            Some(T + 7 * DAY),
            "-rw-r--r-- 1 ftp ftp             7 Mar  5  2026 old\r\n",
        );
        check_list(
            "edge",
            &file(7, Some(T), None),
            Some(T + 180 * DAY),
            "-rw-r--r-- 1 ftp ftp             7 Nov 24 12:34 edge\r\n",
        );
        check_list(
            "edge",
            &file(7, Some(T), None),
            Some(T + 180 * DAY + 1),
            "-rw-r--r-- 1 ftp ftp             7 Nov 24  2026 edge\r\n",
        );
        check_list(
            "future",
            &file(7, Some(T + 1), None),
            Some(T),
            "-rw-r--r-- 1 ftp ftp             7 Nov 24  2026 future\r\n",
        );
        check_list(
            "unknown now",
            &file(7, Some(T), None),
            None,
            "-rw-r--r-- 1 ftp ftp             7 Nov 24  2026 unknown now\r\n",
        );
    }

    #[test]
    fn list_missing_mtime_is_the_epoch() {
        check_list(
            "x",
            &file(1, None, None),
            Some(T),
            "-rw-r--r-- 1 ftp ftp             1 Jan  1  1970 x\r\n",
        );
    }

    #[test]
    fn list_extremes() {
        check_list(
            "big",
            &file(u64::MAX, Some(u64::MAX), Some(0o7777)),
            Some(T),
            "-rwxrwxrwx 1 ftp ftp 18446744073709551615 Dec 31  9999 big\r\n",
        );
        check_list(
            "ünï cødé",
            &file(1_000_000_000_000, Some(0), Some(0o751)),
            Some(0),
            "-rwxr-x--x 1 ftp ftp 1000000000000 Jan  1 00:00 ünï cødé\r\n",
        );
        check_list(
            "y2k38",
            &file(5, Some(2_147_483_648), Some(0o444)),
            Some(2_147_483_648 + 3600),
            "-r--r--r-- 1 ftp ftp             5 Jan 19 03:14 y2k38\r\n",
        );
    }

    #[test]
    fn list_refuses_small_buffers() {
        let meta = file(1, Some(T), None);
        let (_, len) = list("name", &meta, Some(T));
        let mut out = [0u8; 160];
        assert_eq!(
            list_line(b"name", &meta, Some(T), &mut out[..len]),
            Some(len)
        );
        for short in 0..len {
            assert_eq!(list_line(b"name", &meta, Some(T), &mut out[..short]), None);
        }
    }

    #[test]
    fn nlst() {
        let mut out = [0u8; 8];
        assert_eq!(nlst_line(b"a.txt", &mut out), Some(7));
        assert_eq!(&out[..7], b"a.txt\r\n");
        assert_eq!(nlst_line(b"", &mut out), Some(2));
        assert_eq!(&out[..2], b"\r\n");
        assert_eq!(nlst_line(b"abcdefg", &mut out), None);
    }

    #[test]
    fn mlsx_file() {
        let all = PermFacts::ALL;
        check_mlsx(
            "notes.txt",
            &file(1234, Some(T), Some(0o644)),
            false,
            all,
            "type=file;size=1234;modify=20261124123456;perm=rawdf;UNIX.mode=0644; notes.txt\r\n",
        );
        check_mlsx(
            "ro",
            &file(0, None, None),
            false,
            PermFacts {
                read: true,
                ..PermFacts::default()
            },
            "type=file;size=0;perm=r; ro\r\n",
        );
        check_mlsx(
            "none",
            &file(9, None, Some(0o4755)),
            false,
            PermFacts::default(),
            "type=file;size=9;perm=;UNIX.mode=4755; none\r\n",
        );
    }

    #[test]
    fn mlsx_dirs() {
        let all = PermFacts::ALL;
        check_mlsx(
            "src",
            &dir(Some(0), Some(0o755)),
            false,
            all,
            "type=dir;modify=19700101000000;perm=elcmpdf;UNIX.mode=0755; src\r\n",
        );
        check_mlsx(
            "/pub",
            &dir(None, None),
            true,
            PermFacts {
                read: true,
                ..PermFacts::default()
            },
            "type=cdir;perm=el; /pub\r\n",
        );
        check_mlsx(
            "up",
            &dir(None, None),
            false,
            PermFacts {
                write: true,
                mkdir: true,
                ..PermFacts::default()
            },
            "type=dir;perm=cm; up\r\n",
        );
    }

    #[test]
    fn mlsx_cdir_of_a_file_keeps_size() {
        // `cdir` names the listed object; a file listed as such still has a size.
        check_mlsx(
            "f",
            &file(3, None, None),
            true,
            PermFacts::default(),
            "type=cdir;size=3;perm=; f\r\n",
        );
    }

    #[test]
    fn mlsx_refuses_small_buffers() {
        let meta = file(1234, Some(T), Some(0o644));
        let mut out = [0u8; 160];
        let len = mlsx_line(b"n", &meta, false, PermFacts::default(), &mut out).unwrap();
        for short in 0..len {
            assert_eq!(
                mlsx_line(b"n", &meta, false, PermFacts::default(), &mut out[..short]),
                None
            );
        }
    }
}
