//! One conformance suite for every `FileSystem` backend.
//!
//! Each case is a generic function taking a fresh, empty file system and the
//! backend's [`Caps`]; `tests/backends.rs` runs every case against every
//! backend. Where backends legitimately differ, the difference is a field of
//! [`Caps`] and the case checks the declared behaviour (e.g. `Unsupported`),
//! never skips.
#![allow(dead_code)]

use ferry_fs::embedded_io::{Read, Seek, SeekFrom, Write};
use ferry_fs::{EntryKind, Error as _, ErrorKind, FileSystem, Metadata, WriteMode};

/// What a backend can do, declared once per backend.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// `set_modified` works on files (`Unsupported` otherwise).
    pub set_modified_files: bool,
    /// `set_modified` works on directories (`Unsupported` otherwise).
    pub set_modified_dirs: bool,
    /// A written file carries a modification time near "now".
    pub mtime_on_write: bool,
    /// Stored times are multiples of this many seconds (rounded down).
    pub mtime_step: u64,
    /// `set_mode` works (`Unsupported` otherwise) and metadata has a mode.
    pub set_mode: bool,
    /// `/a` and `/A` are different names.
    pub case_sensitive: bool,
    /// The longest name, in bytes, that the backend stores.
    pub max_name_bytes: usize,
    /// Characters the backend refuses in names with `InvalidName`
    /// (e.g. FAT's `"*:<>?|`); names with any other character must work.
    pub refused_chars: &'static str,
    /// Only 8.3 names (FAT without long names): a name that is not
    /// [`is_8_3`] is refused (`InvalidName`, or `NameTooLong` for a part
    /// that is too long), and a name mixing cases is stored and listed in
    /// upper case.
    pub short_names: bool,
}

/// Whether `name` has the shape of an 8.3 name: a base of 1 to 8 and an
/// optional extension of 1 to 3 characters after one dot. (Which characters
/// are allowed is [`Caps::refused_chars`].)
pub fn is_8_3(name: &str) -> bool {
    let (base, ext) = name.split_once('.').unwrap_or((name, ""));
    (1..=8).contains(&base.len())
        && ext.len() <= 3
        && !ext.contains('.')
        && !(ext.is_empty() && name.ends_with('.'))
        && name.is_ascii()
}

/// Seconds since 1970 on the host.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn kind<T, E: ferry_fs::Error>(r: Result<T, E>) -> ErrorKind {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.fs_kind(),
    }
}

pub fn write_file<F: FileSystem>(fs: &mut F, path: &[u8], data: &[u8], mode: WriteMode) {
    let mut f = fs.open_write(path, mode).unwrap();
    // 1 KiB chunks, as the FTP engine writes.
    for chunk in data.chunks(1024) {
        f.write_all(chunk).unwrap();
    }
    fs.close(f).unwrap();
}

pub fn read_all<F: FileSystem>(f: &mut F::File) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 700];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn read_file<F: FileSystem>(fs: &mut F, path: &[u8]) -> Vec<u8> {
    let mut f = fs.open_read(path).unwrap();
    let data = read_all::<F>(&mut f);
    fs.close(f).unwrap();
    data
}

/// All entries of a directory, in listing order, read with a name buffer of
/// `buf_len` bytes.
pub fn list_with<F: FileSystem>(
    fs: &mut F,
    path: &[u8],
    buf_len: usize,
) -> Vec<(Vec<u8>, Metadata)> {
    let mut dir = fs.open_dir(path).unwrap();
    let mut name = vec![0u8; buf_len];
    let mut out = Vec::new();
    while let Some(e) = fs.read_dir(&mut dir, &mut name).unwrap() {
        out.push((name[..e.name_len].to_vec(), e.metadata));
    }
    out
}

pub fn list<F: FileSystem>(fs: &mut F, path: &[u8]) -> Vec<(Vec<u8>, Metadata)> {
    list_with(fs, path, 255)
}

pub fn names<F: FileSystem>(fs: &mut F, path: &[u8]) -> Vec<Vec<u8>> {
    let mut n: Vec<_> = list(fs, path).into_iter().map(|(n, _)| n).collect();
    n.sort();
    n
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn path(parts: &[&[u8]]) -> Vec<u8> {
    let mut p = Vec::new();
    for part in parts {
        p.push(b'/');
        p.extend_from_slice(part);
    }
    p
}

// ---------------------------------------------------------------- cases

/// A new file holds what was written, in several chunks.
pub fn create_and_read<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    let data = pattern(5000);
    write_file(fs, b"/new.bin", &data, WriteMode::Truncate);
    assert_eq!(read_file(fs, b"/new.bin"), data);
    assert_eq!(fs.metadata(b"/new.bin").unwrap().size, 5000);
    // An empty file exists and reads as empty.
    write_file(fs, b"/empty", b"", WriteMode::Truncate);
    assert_eq!(read_file(fs, b"/empty"), b"");
    assert_eq!(fs.metadata(b"/empty").unwrap().size, 0);
}

/// Opening what is not there, or is not a file, fails with the right kind.
pub fn open_errors<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    assert_eq!(kind(fs.open_read(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.metadata(b"/missing")), ErrorKind::NotFound);
    assert_eq!(
        kind(fs.open_write(b"/no/such/dir", WriteMode::Truncate)),
        ErrorKind::NotFound
    );
    fs.create_dir(b"/d").unwrap();
    assert_eq!(kind(fs.open_read(b"/d")), ErrorKind::IsADirectory);
    assert_eq!(kind(fs.open_read(b"/")), ErrorKind::IsADirectory);
    for mode in [WriteMode::Truncate, WriteMode::Append, WriteMode::Update] {
        assert_eq!(kind(fs.open_write(b"/d", mode)), ErrorKind::IsADirectory);
    }
    write_file(fs, b"/f", b"x", WriteMode::Truncate);
    assert_eq!(kind(fs.open_dir(b"/f")), ErrorKind::NotADirectory);
    assert_eq!(kind(fs.open_dir(b"/missing")), ErrorKind::NotFound);
    let below_file = fs.open_write(b"/f/x", WriteMode::Truncate);
    assert!(matches!(
        kind(below_file),
        ErrorKind::NotADirectory | ErrorKind::NotFound
    ));
    // Nothing was created by the failed opens.
    assert_eq!(names(fs, b"/"), vec![b"d".to_vec(), b"f".to_vec()]);
}

/// Append mode writes at the end and reports that position.
pub fn append<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/log", b"abc", WriteMode::Truncate);
    let mut f = fs.open_write(b"/log", WriteMode::Append).unwrap();
    assert_eq!(f.stream_position().unwrap(), 3);
    f.write_all(b"def").unwrap();
    fs.close(f).unwrap();
    write_file(fs, b"/log", &pattern(2000), WriteMode::Append);
    let mut want = b"abcdef".to_vec();
    want.extend_from_slice(&pattern(2000));
    assert_eq!(read_file(fs, b"/log"), want);
    // Append creates a missing file.
    write_file(fs, b"/new", b"x", WriteMode::Append);
    assert_eq!(read_file(fs, b"/new"), b"x");
}

/// Seeking from the start, the current position and the end.
pub fn seek<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    let data = pattern(3000);
    write_file(fs, b"/s", &data, WriteMode::Truncate);
    let mut f = fs.open_read(b"/s").unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(f.seek(SeekFrom::Start(2000)).unwrap(), 2000);
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[2000..2010]);
    assert_eq!(f.seek(SeekFrom::Current(-20)).unwrap(), 1990);
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[1990..2000]);
    assert_eq!(f.seek(SeekFrom::End(-10)).unwrap(), 2990);
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &data[2990..]);
    assert_eq!(f.read(&mut buf).unwrap(), 0, "end of file");
    // Before the start is refused and leaves the position alone.
    assert!(f.seek(SeekFrom::Current(-5000)).is_err());
    assert_eq!(f.stream_position().unwrap(), 3000);
    assert_eq!(f.seek(SeekFrom::Start(0)).unwrap(), 0);
    assert_eq!(read_all::<F>(&mut f), data);
    fs.close(f).unwrap();
}

/// Truncate mode empties an existing file.
pub fn truncate_on_overwrite<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/t", &pattern(4000), WriteMode::Truncate);
    write_file(fs, b"/t", b"xy", WriteMode::Truncate);
    assert_eq!(read_file(fs, b"/t"), b"xy");
    assert_eq!(fs.metadata(b"/t").unwrap().size, 2);
}

/// Update mode keeps the contents and writes where the caller seeks
/// (`REST` + `STOR`).
pub fn update_mode<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/u", b"hello world", WriteMode::Truncate);
    let mut f = fs.open_write(b"/u", WriteMode::Update).unwrap();
    assert_eq!(f.stream_position().unwrap(), 0);
    f.seek(SeekFrom::Start(6)).unwrap();
    f.write_all(b"WORLD, again").unwrap();
    fs.close(f).unwrap();
    assert_eq!(read_file(fs, b"/u"), b"hello WORLD, again");
    // Resuming an upload across a chunk boundary.
    let data = pattern(3000);
    write_file(fs, b"/r", &data[..1500], WriteMode::Truncate);
    let mut f = fs.open_write(b"/r", WriteMode::Update).unwrap();
    f.seek(SeekFrom::Start(1500)).unwrap();
    f.write_all(&data[1500..]).unwrap();
    fs.close(f).unwrap();
    assert_eq!(read_file(fs, b"/r"), data);
    // Update creates a missing file.
    write_file(fs, b"/u2", b"new", WriteMode::Update);
    assert_eq!(read_file(fs, b"/u2"), b"new");
}

/// Kind, size and times, and the setters each backend declares.
pub fn metadata<F: FileSystem>(fs: &mut F, caps: &Caps) {
    let root = fs.metadata(b"/").unwrap();
    assert_eq!(root.kind, EntryKind::Dir);
    write_file(fs, b"/m", &pattern(1234), WriteMode::Truncate);
    fs.create_dir(b"/dir").unwrap();
    let m = fs.metadata(b"/m").unwrap();
    assert_eq!((m.kind, m.size), (EntryKind::File, 1234));
    let d = fs.metadata(b"/dir").unwrap();
    assert_eq!((d.kind, d.size), (EntryKind::Dir, 0));
    if caps.mtime_on_write {
        let t = m.modified.expect("a written file has a time");
        assert!(t.abs_diff(now()) < 300, "{t} is not now");
    }

    let when = 1_000_000_001; // 2001-09-09, odd on purpose
    let stored = when - when % caps.mtime_step;
    let r = fs.set_modified(b"/m", when);
    if caps.set_modified_files {
        r.unwrap();
        assert_eq!(fs.metadata(b"/m").unwrap().modified, Some(stored));
        // A listing shows the same time.
        let listed = list(fs, b"/");
        let (_, lm) = listed.iter().find(|(n, _)| n == b"m").unwrap();
        assert_eq!(lm.modified, Some(stored));
    } else {
        assert_eq!(kind(r), ErrorKind::Unsupported);
    }
    let r = fs.set_modified(b"/dir", when);
    if caps.set_modified_dirs {
        r.unwrap();
        assert_eq!(fs.metadata(b"/dir").unwrap().modified, Some(stored));
    } else {
        assert_eq!(kind(r), ErrorKind::Unsupported);
    }
    assert_eq!(
        kind(fs.set_modified(b"/missing", when)),
        ErrorKind::NotFound
    );

    let r = fs.set_mode(b"/m", 0o640);
    if caps.set_mode {
        r.unwrap();
        assert_eq!(fs.metadata(b"/m").unwrap().mode, Some(0o640));
    } else {
        assert_eq!(kind(r), ErrorKind::Unsupported);
        assert_eq!(fs.metadata(b"/m").unwrap().mode, None);
    }
}

/// An empty directory lists nothing (no `.` or `..`).
pub fn list_empty<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    assert!(list(fs, b"/").is_empty(), "a new volume is empty");
    fs.create_dir(b"/empty").unwrap();
    assert!(list(fs, b"/empty").is_empty());
    let root = list(fs, b"/");
    assert_eq!(root.len(), 1);
    assert_eq!(root[0].0, b"empty");
    assert_eq!(root[0].1.kind, EntryKind::Dir);
}

/// A 500-entry directory lists every name exactly once.
pub fn list_many<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    fs.create_dir(b"/many").unwrap();
    for i in 0..500usize {
        let p = format!("/many/entry{i:03}");
        if i.is_multiple_of(50) {
            fs.create_dir(p.as_bytes()).unwrap();
        } else {
            write_file(fs, p.as_bytes(), &[b'x'; 3], WriteMode::Truncate);
        }
    }
    let listed = list(fs, b"/many");
    assert_eq!(listed.len(), 500);
    let mut seen = std::collections::BTreeSet::new();
    for (name, meta) in &listed {
        assert!(name != b"." && name != b"..");
        let name = String::from_utf8(name.clone()).unwrap();
        let i: usize = name.strip_prefix("entry").unwrap().parse().unwrap();
        assert!(seen.insert(i), "{name} listed twice");
        if i.is_multiple_of(50) {
            assert_eq!(meta.kind, EntryKind::Dir);
        } else {
            assert_eq!((meta.kind, meta.size), (EntryKind::File, 3));
        }
    }
    assert_eq!(seen.len(), 500);
}

/// A name longer than the caller's buffer is skipped, the others listed.
pub fn list_small_buffer<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    fs.create_dir(b"/sb").unwrap();
    for name in ["a", "bb", "longname", "ccc"] {
        write_file(
            fs,
            format!("/sb/{name}").as_bytes(),
            b"",
            WriteMode::Truncate,
        );
    }
    let mut got: Vec<_> = list_with(fs, b"/sb", 3)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    got.sort();
    assert_eq!(got, vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]);
}

/// Directories are created and removed; a non-empty one is refused.
pub fn mkdir_rmdir<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    fs.create_dir(b"/d").unwrap();
    assert_eq!(kind(fs.create_dir(b"/d")), ErrorKind::AlreadyExists);
    assert_eq!(kind(fs.create_dir(b"/missing/x")), ErrorKind::NotFound);
    fs.create_dir(b"/d/sub").unwrap();
    write_file(fs, b"/d/sub/f", b"data", WriteMode::Truncate);
    assert_eq!(kind(fs.remove_dir(b"/d")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(kind(fs.remove_dir(b"/d/sub")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(read_file(fs, b"/d/sub/f"), b"data", "refusal kept the file");
    assert_eq!(kind(fs.remove_dir(b"/d/sub/f")), ErrorKind::NotADirectory);
    assert_eq!(kind(fs.create_dir(b"/d/sub/f")), ErrorKind::AlreadyExists);
    fs.remove_file(b"/d/sub/f").unwrap();
    fs.remove_dir(b"/d/sub").unwrap();
    fs.remove_dir(b"/d").unwrap();
    assert_eq!(kind(fs.metadata(b"/d")), ErrorKind::NotFound);
    assert_eq!(kind(fs.remove_dir(b"/d")), ErrorKind::NotFound);
    assert!(fs.remove_dir(b"/").is_err(), "the root stays");
    assert_eq!(fs.metadata(b"/").unwrap().kind, EntryKind::Dir);
}

/// Files are removed; directories are not removed as files.
pub fn remove<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/gone", b"bye", WriteMode::Truncate);
    write_file(fs, b"/stays", b"hi", WriteMode::Truncate);
    fs.remove_file(b"/gone").unwrap();
    assert_eq!(kind(fs.open_read(b"/gone")), ErrorKind::NotFound);
    assert_eq!(kind(fs.remove_file(b"/gone")), ErrorKind::NotFound);
    fs.create_dir(b"/dir").unwrap();
    assert_eq!(kind(fs.remove_file(b"/dir")), ErrorKind::IsADirectory);
    assert_eq!(names(fs, b"/"), vec![b"dir".to_vec(), b"stays".to_vec()]);
    assert_eq!(read_file(fs, b"/stays"), b"hi");
}

/// Renaming files and directories, within and across directories.
pub fn rename<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/a", b"content", WriteMode::Truncate);
    fs.rename(b"/a", b"/b").unwrap();
    assert_eq!(kind(fs.metadata(b"/a")), ErrorKind::NotFound);
    assert_eq!(read_file(fs, b"/b"), b"content");
    fs.create_dir(b"/dir").unwrap();
    fs.rename(b"/b", b"/dir/c").unwrap();
    assert_eq!(read_file(fs, b"/dir/c"), b"content");
    fs.rename(b"/dir", b"/moved").unwrap();
    assert_eq!(read_file(fs, b"/moved/c"), b"content");
    assert_eq!(kind(fs.metadata(b"/dir")), ErrorKind::NotFound);
    assert_eq!(kind(fs.rename(b"/missing", b"/x")), ErrorKind::NotFound);
    assert_eq!(
        kind(fs.rename(b"/moved/c", b"/nodir/c")),
        ErrorKind::NotFound
    );
    // A directory cannot move below itself; nothing changes.
    fs.create_dir(b"/moved/sub").unwrap();
    assert!(fs.rename(b"/moved", b"/moved/sub/x").is_err());
    assert_eq!(read_file(fs, b"/moved/c"), b"content");
    // Renaming to the same name changes nothing.
    fs.rename(b"/moved/c", b"/moved/c").unwrap();
    assert_eq!(read_file(fs, b"/moved/c"), b"content");
}

/// Renaming over an existing file replaces it, as an upload to a temporary
/// name does on success.
pub fn rename_over_existing<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    write_file(fs, b"/target", &pattern(3000), WriteMode::Truncate);
    write_file(fs, b"/target.tmp", b"new version", WriteMode::Truncate);
    fs.rename(b"/target.tmp", b"/target").unwrap();
    assert_eq!(read_file(fs, b"/target"), b"new version");
    assert_eq!(kind(fs.metadata(b"/target.tmp")), ErrorKind::NotFound);
    assert_eq!(names(fs, b"/"), vec![b"target".to_vec()]);
    // A file over a directory, or a directory over a file, is refused.
    fs.create_dir(b"/dir").unwrap();
    assert!(fs.rename(b"/target", b"/dir").is_err());
    assert!(fs.rename(b"/dir", b"/target").is_err());
    assert_eq!(read_file(fs, b"/target"), b"new version");
    assert_eq!(fs.metadata(b"/dir").unwrap().kind, EntryKind::Dir);
}

/// The longest name the backend declares works everywhere; a longer one is
/// refused with `NameTooLong` or `InvalidName`, never a panic.
pub fn long_names<F: FileSystem>(fs: &mut F, caps: &Caps) {
    let longest = vec![b'n'; caps.max_name_bytes];
    let p = path(&[&longest]);
    write_file(fs, &p, b"long", WriteMode::Truncate);
    assert_eq!(read_file(fs, &p), b"long");
    assert_eq!(names(fs, b"/"), vec![longest.clone()]);
    fs.remove_file(&p).unwrap();
    fs.create_dir(&p).unwrap();
    assert_eq!(fs.metadata(&p).unwrap().kind, EntryKind::Dir);
    fs.remove_dir(&p).unwrap();

    for len in [caps.max_name_bytes + 1, 300, 1000, 5000] {
        let p = path(&[&vec![b'n'; len]]);
        let refused = |k: ErrorKind| matches!(k, ErrorKind::NameTooLong | ErrorKind::InvalidName);
        assert!(refused(kind(fs.open_write(&p, WriteMode::Truncate))));
        assert!(refused(kind(fs.create_dir(&p))));
        write_file(fs, b"/short", b"", WriteMode::Truncate);
        assert!(refused(kind(fs.rename(b"/short", &p))));
        fs.remove_file(b"/short").unwrap();
        assert!(fs.open_read(&p).is_err());
    }
    assert!(list(fs, b"/").is_empty(), "refusals created nothing");
}

/// UTF-8 names are stored, listed and found byte for byte.
pub fn utf8_names<F: FileSystem>(fs: &mut F, caps: &Caps) {
    let dir = "Verzeichnis Ä";
    let files = ["Grüße.txt", "日本語のファイル", "ñandú — ¡qué!", "Ελληνικά"];
    if caps.short_names {
        // 8.3 names are ASCII: every one is refused, and nothing is created.
        for name in ["Grüße", "ü.txt", "日本語"].iter().chain(&files) {
            let p = format!("/{name}");
            let k = kind(fs.open_write(p.as_bytes(), WriteMode::Truncate));
            assert_eq!(k, ErrorKind::InvalidName, "{name:?}");
            let k = kind(fs.create_dir(p.as_bytes()));
            assert_eq!(k, ErrorKind::InvalidName, "{name:?}");
        }
        assert!(list(fs, b"/").is_empty());
        return;
    }
    fs.create_dir(format!("/{dir}").as_bytes()).unwrap();
    for f in files {
        let p = format!("/{dir}/{f}");
        write_file(fs, p.as_bytes(), f.as_bytes(), WriteMode::Truncate);
    }
    for f in files {
        let p = format!("/{dir}/{f}");
        assert_eq!(read_file(fs, p.as_bytes()), f.as_bytes());
    }
    let mut want: Vec<Vec<u8>> = files.iter().map(|f| f.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(names(fs, format!("/{dir}").as_bytes()), want);
    assert_eq!(names(fs, b"/"), vec![dir.as_bytes().to_vec()]);
    let renamed = format!("/{dir}/Straße");
    fs.rename(format!("/{dir}/Grüße.txt").as_bytes(), renamed.as_bytes())
        .unwrap();
    assert_eq!(read_file(fs, renamed.as_bytes()), "Grüße.txt".as_bytes());
}

/// Odd but legal names either work exactly or are refused as invalid.
pub fn odd_names<F: FileSystem>(fs: &mut F, caps: &Caps) {
    let odd = [
        "a:b",
        "star*",
        "q?",
        "<tag>",
        "pipe|",
        "quote\"",
        "sp ace",
        " lead",
        "trail ",
        "dot.",
        "%41",
        "100%",
        "...",
        "-dash",
        "tab\tname",
    ];
    for name in odd {
        let p = format!("/{name}");
        let refused = name.contains(|c: char| caps.refused_chars.contains(c))
            || (caps.short_names && !is_8_3(name));
        match fs.open_write(p.as_bytes(), WriteMode::Truncate) {
            Ok(mut f) => {
                assert!(!refused, "{name:?} should be refused");
                f.write_all(name.as_bytes()).unwrap();
                fs.close(f).unwrap();
                assert_eq!(read_file(fs, p.as_bytes()), name.as_bytes());
                assert!(
                    names(fs, b"/").contains(&name.as_bytes().to_vec()),
                    "{name:?} listed as is"
                );
                fs.remove_file(p.as_bytes()).unwrap();
            }
            Err(e) => {
                assert!(refused, "{name:?} refused: {e:?}");
                assert_eq!(e.fs_kind(), ErrorKind::InvalidName, "{name:?}");
            }
        }
    }
    assert!(list(fs, b"/").is_empty());
}

/// Names differing only in case are two names, or one, as declared.
pub fn case<F: FileSystem>(fs: &mut F, caps: &Caps) {
    write_file(fs, b"/Case", b"upper", WriteMode::Truncate);
    write_file(fs, b"/case", b"lower", WriteMode::Truncate);
    if caps.case_sensitive {
        assert_eq!(read_file(fs, b"/Case"), b"upper");
        assert_eq!(read_file(fs, b"/case"), b"lower");
        assert_eq!(names(fs, b"/"), vec![b"Case".to_vec(), b"case".to_vec()]);
    } else {
        assert_eq!(read_file(fs, b"/Case"), b"lower");
        // 8.3 keeps one case per part: a mixed-case name is upper case.
        let first: &[u8] = if caps.short_names { b"CASE" } else { b"Case" };
        assert_eq!(names(fs, b"/"), vec![first.to_vec()], "first spelling kept");
        // A rename that only changes the case takes the new spelling.
        fs.rename(b"/Case", b"/CASE").unwrap();
        assert_eq!(names(fs, b"/"), vec![b"CASE".to_vec()]);
        assert_eq!(read_file(fs, b"/case"), b"lower");
    }
}

/// A full medium reports `NoSpace`, and other files stay intact; freeing
/// space makes it usable again. `fs` is a small volume.
pub fn disk_full<F: FileSystem>(fs: &mut F, _caps: &Caps) {
    let keep = pattern(3000);
    write_file(fs, b"/keep", &keep, WriteMode::Truncate);
    let mut f = fs.open_write(b"/big", WriteMode::Truncate).unwrap();
    let chunk = pattern(1024);
    let mut written = 0u64;
    let err = loop {
        match f.write_all(&chunk) {
            Ok(()) => written += 1024,
            Err(e) => break e,
        }
        assert!(written < 64 << 20, "the small volume never filled up");
    };
    assert_eq!(err.fs_kind(), ErrorKind::NoSpace, "{err:?}");
    assert!(written > 0, "something fit");
    match fs.close(f) {
        Ok(()) => {}
        Err(e) => assert_eq!(e.fs_kind(), ErrorKind::NoSpace),
    }
    assert_eq!(read_file(fs, b"/keep"), keep, "other file intact");
    fs.remove_file(b"/big").unwrap();
    write_file(fs, b"/after", &pattern(2000), WriteMode::Truncate);
    assert_eq!(read_file(fs, b"/after"), pattern(2000));
    assert_eq!(read_file(fs, b"/keep"), keep);
}
