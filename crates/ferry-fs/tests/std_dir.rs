//! `StdDir` against a real temporary directory: every operation, its error
//! kinds, and confinement to the root (`..`, absolute paths, symlinks).
#![cfg(feature = "std")]

use ferry_fs::embedded_io::{Read, Seek, SeekFrom, Write};
use ferry_fs::std_dir::{StdDir, StdDirError, StdFile};
use ferry_fs::{EntryKind, Error as _, ErrorKind, FileSystem, WriteMode};

fn setup() -> (tempfile::TempDir, StdDir) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let fs = StdDir::open(&root).unwrap();
    (tmp, fs)
}

fn kind<T: core::fmt::Debug>(r: Result<T, StdDirError>) -> ErrorKind {
    r.unwrap_err().fs_kind()
}

fn write_file(fs: &mut StdDir, path: &[u8], data: &[u8], mode: WriteMode) {
    let mut f = fs.open_write(path, mode).unwrap();
    f.write_all(data).unwrap();
    fs.close(f).unwrap();
}

fn read_all(f: &mut StdFile) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn read_file(fs: &mut StdDir, path: &[u8]) -> Vec<u8> {
    let mut f = fs.open_read(path).unwrap();
    let data = read_all(&mut f);
    fs.close(f).unwrap();
    data
}

/// All entries of a directory, sorted by name.
fn list(fs: &mut StdDir, path: &[u8]) -> Vec<(Vec<u8>, ferry_fs::Metadata)> {
    let mut dir = fs.open_dir(path).unwrap();
    let mut name = [0u8; 255];
    let mut out = Vec::new();
    while let Some(e) = fs.read_dir(&mut dir, &mut name).unwrap() {
        out.push((name[..e.name_len].to_vec(), e.metadata));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn names(fs: &mut StdDir, path: &[u8]) -> Vec<Vec<u8>> {
    list(fs, path).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn open_requires_existing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    assert_eq!(
        StdDir::open(&missing).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    std::fs::write(tmp.path().join("file"), b"x").unwrap();
    assert!(StdDir::open(tmp.path().join("file")).is_err());

    let nested = missing.join("a").join("b");
    let mut fs = StdDir::open_or_create(&nested).unwrap();
    assert!(nested.is_dir());
    assert_eq!(fs.metadata(b"/").unwrap().kind, EntryKind::Dir);
    // Opening an existing one again is fine.
    StdDir::open_or_create(&nested).unwrap();
}

#[test]
fn write_read_and_metadata() {
    let (tmp, mut fs) = setup();
    write_file(&mut fs, b"/hello.txt", b"hello world", WriteMode::Truncate);
    assert_eq!(
        std::fs::read(tmp.path().join("root/hello.txt")).unwrap(),
        b"hello world"
    );
    assert_eq!(read_file(&mut fs, b"/hello.txt"), b"hello world");

    let meta = fs.metadata(b"/hello.txt").unwrap();
    assert_eq!(meta.kind, EntryKind::File);
    assert_eq!(meta.size, 11);
    assert!(meta.modified.is_some());
    #[cfg(unix)]
    assert!(meta.mode.is_some());

    let root = fs.metadata(b"/").unwrap();
    assert_eq!(root.kind, EntryKind::Dir);
    assert_eq!(root.size, 0);

    // Truncate replaces the contents.
    write_file(&mut fs, b"/hello.txt", b"bye", WriteMode::Truncate);
    assert_eq!(read_file(&mut fs, b"/hello.txt"), b"bye");
}

#[test]
fn seek_in_read_file() {
    let (_tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"0123456789", WriteMode::Truncate);
    let mut f = fs.open_read(b"/f").unwrap();
    assert_eq!(f.seek(SeekFrom::Start(4)).unwrap(), 4);
    assert_eq!(read_all(&mut f), b"456789");
    assert_eq!(f.seek(SeekFrom::End(-3)).unwrap(), 7);
    assert_eq!(f.seek(SeekFrom::Current(1)).unwrap(), 8);
    assert_eq!(read_all(&mut f), b"89");
}

#[test]
fn append_mode_writes_at_end_and_creates() {
    let (_tmp, mut fs) = setup();
    let mut f = fs.open_write(b"/log", WriteMode::Append).unwrap();
    assert_eq!(f.seek(SeekFrom::Current(0)).unwrap(), 0);
    f.write_all(b"one,").unwrap();
    fs.close(f).unwrap();

    let mut f = fs.open_write(b"/log", WriteMode::Append).unwrap();
    // Positioned at the end, and `seek` says so.
    assert_eq!(f.seek(SeekFrom::Current(0)).unwrap(), 4);
    f.write_all(b"two").unwrap();
    fs.close(f).unwrap();
    assert_eq!(read_file(&mut fs, b"/log"), b"one,two");
}

#[test]
fn update_mode_keeps_contents_and_starts_at_zero() {
    let (_tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"0123456789", WriteMode::Truncate);

    let mut f = fs.open_write(b"/f", WriteMode::Update).unwrap();
    assert_eq!(f.seek(SeekFrom::Current(0)).unwrap(), 0);
    f.write_all(b"ab").unwrap();
    // REST 5 + STOR: seek, then write.
    f.seek(SeekFrom::Start(5)).unwrap();
    f.write_all(b"XY").unwrap();
    fs.close(f).unwrap();
    assert_eq!(read_file(&mut fs, b"/f"), b"ab234XY789");

    // Creates a missing file.
    let mut f = fs.open_write(b"/new", WriteMode::Update).unwrap();
    f.seek(SeekFrom::Start(3)).unwrap();
    f.write_all(b"z").unwrap();
    fs.close(f).unwrap();
    assert_eq!(read_file(&mut fs, b"/new"), b"\0\0\0z");
}

#[test]
fn missing_paths_are_not_found() {
    let (_tmp, mut fs) = setup();
    assert_eq!(kind(fs.open_read(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.metadata(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.open_dir(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.remove_file(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.remove_dir(b"/missing")), ErrorKind::NotFound);
    assert_eq!(kind(fs.rename(b"/missing", b"/x")), ErrorKind::NotFound);
    assert_eq!(kind(fs.set_modified(b"/missing", 0)), ErrorKind::NotFound);
    assert_eq!(
        kind(fs.open_write(b"/no/such/dir", WriteMode::Truncate)),
        ErrorKind::NotFound
    );
    assert_eq!(kind(fs.create_dir(b"/no/such")), ErrorKind::NotFound);
}

#[test]
fn directories() {
    let (tmp, mut fs) = setup();
    fs.create_dir(b"/a").unwrap();
    fs.create_dir(b"/a/b").unwrap();
    assert!(tmp.path().join("root/a/b").is_dir());
    assert_eq!(kind(fs.create_dir(b"/a")), ErrorKind::AlreadyExists);
    assert_eq!(fs.metadata(b"/a/b").unwrap().kind, EntryKind::Dir);

    write_file(&mut fs, b"/a/b/f", b"data", WriteMode::Truncate);
    assert_eq!(read_file(&mut fs, b"/a/b/f"), b"data");

    assert_eq!(kind(fs.remove_dir(b"/a")), ErrorKind::DirectoryNotEmpty);
    assert_eq!(kind(fs.remove_dir(b"/a/b/f")), ErrorKind::NotADirectory);
    assert_eq!(kind(fs.open_dir(b"/a/b/f")), ErrorKind::NotADirectory);
    assert_eq!(kind(fs.open_read(b"/a/b")), ErrorKind::IsADirectory);
    assert_eq!(
        kind(fs.open_write(b"/a/b", WriteMode::Truncate)),
        ErrorKind::IsADirectory
    );
    assert_eq!(kind(fs.open_read(b"/a/b/f/x")), ErrorKind::NotADirectory);

    fs.remove_file(b"/a/b/f").unwrap();
    assert_eq!(kind(fs.metadata(b"/a/b/f")), ErrorKind::NotFound);
    fs.remove_dir(b"/a/b").unwrap();
    fs.remove_dir(b"/a").unwrap();
    assert!(!tmp.path().join("root/a").exists());

    // The root itself is never removed or renamed.
    assert_eq!(kind(fs.remove_dir(b"/")), ErrorKind::PermissionDenied);
    assert_eq!(kind(fs.rename(b"/", b"/x")), ErrorKind::PermissionDenied);
    assert!(tmp.path().join("root").is_dir());
}

#[test]
fn listing() {
    let (_tmp, mut fs) = setup();
    fs.create_dir(b"/sub").unwrap();
    write_file(&mut fs, b"/a.txt", b"12345", WriteMode::Truncate);
    write_file(&mut fs, b"/sub/inner", b"", WriteMode::Truncate);

    let entries = list(&mut fs, b"/");
    let names: Vec<&[u8]> = entries.iter().map(|(n, _)| n.as_slice()).collect();
    assert_eq!(names, [&b"a.txt"[..], b"sub"]);
    assert_eq!(entries[0].1.kind, EntryKind::File);
    assert_eq!(entries[0].1.size, 5);
    assert_eq!(entries[1].1.kind, EntryKind::Dir);
    assert_eq!(names_of(&mut fs, b"/sub"), [b"inner".to_vec()]);

    // An empty directory lists nothing (no `.` or `..`).
    fs.create_dir(b"/empty").unwrap();
    assert!(list(&mut fs, b"/empty").is_empty());
}

fn names_of(fs: &mut StdDir, path: &[u8]) -> Vec<Vec<u8>> {
    names(fs, path)
}

#[test]
fn listing_skips_names_longer_than_the_buffer() {
    let (_tmp, mut fs) = setup();
    write_file(&mut fs, b"/short", b"", WriteMode::Truncate);
    write_file(&mut fs, b"/a-much-longer-name", b"", WriteMode::Truncate);
    let mut dir = fs.open_dir(b"/").unwrap();
    let mut name = [0u8; 8];
    let mut seen = Vec::new();
    while let Some(e) = fs.read_dir(&mut dir, &mut name).unwrap() {
        seen.push(name[..e.name_len].to_vec());
    }
    assert_eq!(seen, [b"short".to_vec()]);
}

#[test]
fn rename_files_and_directories() {
    let (tmp, mut fs) = setup();
    write_file(&mut fs, b"/old", b"old", WriteMode::Truncate);
    fs.rename(b"/old", b"/new").unwrap();
    assert_eq!(kind(fs.metadata(b"/old")), ErrorKind::NotFound);
    assert_eq!(read_file(&mut fs, b"/new"), b"old");

    // Over an existing file: replaced.
    write_file(&mut fs, b"/other", b"other", WriteMode::Truncate);
    fs.rename(b"/other", b"/new").unwrap();
    assert_eq!(read_file(&mut fs, b"/new"), b"other");
    assert_eq!(names(&mut fs, b"/"), [b"new".to_vec()]);

    // Directories, with their contents, across directories.
    fs.create_dir(b"/d").unwrap();
    fs.create_dir(b"/e").unwrap();
    fs.rename(b"/new", b"/d/f").unwrap();
    fs.rename(b"/d", b"/e/d2").unwrap();
    assert_eq!(read_file(&mut fs, b"/e/d2/f"), b"other");
    assert!(tmp.path().join("root/e/d2/f").is_file());
}

#[test]
fn set_modified_sets_mtime() {
    let (_tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"x", WriteMode::Truncate);
    fs.set_modified(b"/f", 1_000_000_000).unwrap();
    assert_eq!(fs.metadata(b"/f").unwrap().modified, Some(1_000_000_000));
    let listed = list(&mut fs, b"/");
    assert_eq!(listed[0].1.modified, Some(1_000_000_000));

    fs.create_dir(b"/d").unwrap();
    fs.set_modified(b"/d", 1_234_567_890).unwrap();
    assert_eq!(fs.metadata(b"/d").unwrap().modified, Some(1_234_567_890));
}

#[cfg(unix)]
#[test]
fn set_modified_on_write_only_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let (tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"x", WriteMode::Truncate);
    let path = tmp.path().join("root/f");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o200)).unwrap();
    fs.set_modified(b"/f", 1_000_000_000).unwrap();
    assert_eq!(fs.metadata(b"/f").unwrap().modified, Some(1_000_000_000));
}

#[cfg(unix)]
#[test]
fn set_mode_and_mode_in_metadata() {
    use std::os::unix::fs::PermissionsExt as _;
    let (tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"x", WriteMode::Truncate);
    fs.set_mode(b"/f", 0o640).unwrap();
    assert_eq!(fs.metadata(b"/f").unwrap().mode, Some(0o640));
    let on_disk = std::fs::metadata(tmp.path().join("root/f")).unwrap();
    assert_eq!(on_disk.permissions().mode() & 0o7777, 0o640);

    // setuid and setgid are dropped; the sticky bit is kept.
    fs.set_mode(b"/f", 0o6755).unwrap();
    assert_eq!(fs.metadata(b"/f").unwrap().mode, Some(0o755));
    fs.create_dir(b"/d").unwrap();
    fs.set_mode(b"/d", 0o1777).unwrap();
    assert_eq!(fs.metadata(b"/d").unwrap().mode, Some(0o1777));

    assert_eq!(kind(fs.set_mode(b"/missing", 0o644)), ErrorKind::NotFound);
}

#[cfg(not(unix))]
#[test]
fn set_mode_is_unsupported() {
    let (_tmp, mut fs) = setup();
    write_file(&mut fs, b"/f", b"x", WriteMode::Truncate);
    assert_eq!(kind(fs.set_mode(b"/f", 0o644)), ErrorKind::Unsupported);
    assert_eq!(fs.metadata(b"/f").unwrap().mode, None);
}

#[test]
fn dot_dot_and_absolute_paths_stay_inside() {
    let (tmp, mut fs) = setup();
    std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
    for path in [&b"/../secret"[..], b"/a/../../secret", b"//etc/passwd"] {
        let k = kind(fs.open_read(path));
        assert!(
            matches!(k, ErrorKind::PermissionDenied | ErrorKind::NotFound),
            "{k:?} for {path:?}"
        );
    }
    assert!(fs.open_write(b"/../escaped", WriteMode::Truncate).is_err());
    assert!(fs.open_dir(b"/..").is_err());
    assert!(fs.create_dir(b"/../made").is_err());
    assert!(!tmp.path().join("escaped").exists());
    assert!(!tmp.path().join("made").exists());
}

#[test]
fn invalid_names() {
    let (_tmp, mut fs) = setup();
    assert_eq!(kind(fs.open_read(b"/a\0b")), ErrorKind::InvalidName);
    #[cfg(windows)]
    assert_eq!(kind(fs.open_read(b"/a\\b")), ErrorKind::InvalidName);
    #[cfg(not(unix))]
    assert_eq!(kind(fs.open_read(b"/\xff")), ErrorKind::InvalidName);
}

#[test]
fn name_too_long() {
    let (_tmp, mut fs) = setup();
    let mut path = b"/".to_vec();
    path.extend([b'n'; 300]);
    assert_eq!(
        kind(fs.open_write(&path, WriteMode::Truncate)),
        ErrorKind::NameTooLong
    );
}

#[test]
fn errors_convert() {
    use ferry_fs::embedded_io::Error as _;
    let (_tmp, mut fs) = setup();
    let e = fs.open_read(b"/missing").unwrap_err();
    assert_eq!(e.kind(), ferry_fs::embedded_io::ErrorKind::NotFound);
    assert_eq!(e.io_error().kind(), std::io::ErrorKind::NotFound);
    assert!(!e.to_string().is_empty());
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let e = fs.open_read(b"/a\0").unwrap_err();
    assert_eq!(e.kind(), ferry_fs::embedded_io::ErrorKind::InvalidInput);
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::symlink;

    /// A root with symlinks out of it: `out_dir` to a sibling directory
    /// holding `secret`, `out_file` to that file, `etc` to `/etc`, and
    /// `dangling_out` to a missing file outside.
    fn setup_escapes() -> (tempfile::TempDir, StdDir) {
        let (tmp, fs) = setup();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        let root = tmp.path().join("root");
        symlink(&outside, root.join("out_dir")).unwrap();
        symlink(outside.join("secret"), root.join("out_file")).unwrap();
        symlink("../outside/secret", root.join("out_rel")).unwrap();
        symlink("/etc", root.join("etc")).unwrap();
        symlink(outside.join("missing"), root.join("dangling_out")).unwrap();
        (tmp, fs)
    }

    fn refused(k: ErrorKind) -> bool {
        matches!(k, ErrorKind::PermissionDenied | ErrorKind::NotFound)
    }

    #[test]
    fn escaping_symlinks_cannot_be_read_or_listed_into() {
        let (_tmp, mut fs) = setup_escapes();
        for path in [
            &b"/out_file"[..],
            b"/out_rel",
            b"/out_dir/secret",
            b"/etc/passwd",
            b"/etc/hostname",
        ] {
            let k = kind(fs.open_read(path));
            assert!(refused(k), "open_read {path:?}: {k:?}");
            let k = kind(fs.metadata(path));
            assert!(refused(k), "metadata {path:?}: {k:?}");
        }
        for path in [&b"/out_dir"[..], b"/etc"] {
            let k = kind(fs.open_dir(path));
            assert!(refused(k), "open_dir {path:?}: {k:?}");
        }
    }

    #[test]
    fn escaping_symlinks_cannot_be_written_through() {
        let (tmp, mut fs) = setup_escapes();
        let outside = tmp.path().join("outside");
        for mode in [WriteMode::Truncate, WriteMode::Append, WriteMode::Update] {
            for path in [
                &b"/out_file"[..],
                b"/out_rel",
                b"/out_dir/secret",
                b"/out_dir/new",
                b"/dangling_out",
            ] {
                let k = kind(fs.open_write(path, mode));
                assert!(refused(k), "open_write {path:?} {mode:?}: {k:?}");
            }
        }
        assert!(refused(kind(fs.create_dir(b"/out_dir/newdir"))));
        assert!(refused(kind(fs.remove_file(b"/out_dir/secret"))));
        assert!(refused(kind(fs.set_modified(b"/out_file", 0))));
        assert!(refused(kind(fs.set_mode(b"/out_file", 0o777))));
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
        assert!(!outside.join("new").exists());
        assert!(!outside.join("missing").exists());
        assert!(!outside.join("newdir").exists());
    }

    #[test]
    fn escaping_symlinks_cannot_be_renamed_onto_or_through() {
        let (tmp, mut fs) = setup_escapes();
        let outside = tmp.path().join("outside");
        write_file(&mut fs, b"/f", b"inside", WriteMode::Truncate);
        for to in [&b"/out_dir/secret"[..], b"/out_dir/f", b"/etc/f"] {
            let k = kind(fs.rename(b"/f", to));
            assert!(refused(k), "rename onto {to:?}: {k:?}");
        }
        let k = kind(fs.rename(b"/out_dir/secret", b"/stolen"));
        assert!(refused(k), "rename from outside: {k:?}");
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
        assert!(!outside.join("f").exists());
        assert_eq!(read_file(&mut fs, b"/f"), b"inside");

        // Renaming onto the link itself replaces the link, not its target.
        fs.rename(b"/f", b"/out_file").unwrap();
        assert_eq!(read_file(&mut fs, b"/out_file"), b"inside");
        assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
    }

    #[test]
    fn listing_skips_escaping_and_dangling_symlinks() {
        let (_tmp, mut fs) = setup_escapes();
        write_file(&mut fs, b"/plain", b"x", WriteMode::Truncate);
        symlink("missing", _tmp.path().join("root/dangling_in")).unwrap();
        assert_eq!(names(&mut fs, b"/"), [b"plain".to_vec()]);
    }

    #[test]
    fn symlinks_inside_the_root_are_followed() {
        let (tmp, mut fs) = setup();
        let root = tmp.path().join("root");
        fs.create_dir(b"/a").unwrap();
        fs.create_dir(b"/b").unwrap();
        write_file(&mut fs, b"/b/target", b"hi", WriteMode::Truncate);
        // Relative links that climb to the root and back down stay inside.
        symlink("../b", root.join("a/to_b")).unwrap();
        symlink("../b/target", root.join("a/to_target")).unwrap();

        assert_eq!(read_file(&mut fs, b"/a/to_target"), b"hi");
        assert_eq!(read_file(&mut fs, b"/a/to_b/target"), b"hi");
        assert_eq!(names(&mut fs, b"/a/to_b"), [b"target".to_vec()]);

        let listed = list(&mut fs, b"/a");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].0, b"to_b");
        assert_eq!(listed[0].1.kind, EntryKind::Dir);
        assert_eq!(listed[1].0, b"to_target");
        assert_eq!(listed[1].1.kind, EntryKind::File);
        assert_eq!(listed[1].1.size, 2);

        write_file(&mut fs, b"/a/to_b/new", b"via link", WriteMode::Truncate);
        assert_eq!(std::fs::read(root.join("b/new")).unwrap(), b"via link");
    }

    #[test]
    fn non_utf8_names_are_listed_and_reachable() {
        let (tmp, mut fs) = setup();
        let name: &[u8] = b"caf\xe9.txt"; // Latin-1, not UTF-8
        let on_disk = tmp
            .path()
            .join("root")
            .join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&on_disk, b"latin-1").unwrap();

        assert_eq!(names(&mut fs, b"/"), [name.to_vec()]);
        let mut path = b"/".to_vec();
        path.extend_from_slice(name);
        assert_eq!(read_file(&mut fs, &path), b"latin-1");
        assert_eq!(fs.metadata(&path).unwrap().size, 7);

        // And created through the adapter.
        let mut dir = b"/\xff\xfe".to_vec();
        fs.create_dir(&dir).unwrap();
        dir.extend_from_slice(b"/f");
        write_file(&mut fs, &dir, b"x", WriteMode::Truncate);
        assert!(tmp
            .path()
            .join("root")
            .join(std::ffi::OsStr::from_bytes(b"\xff\xfe/f"))
            .is_file());
    }

    #[test]
    fn special_files_are_not_served() {
        let (tmp, mut fs) = setup();
        let sock = tmp.path().join("root/sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        write_file(&mut fs, b"/plain", b"x", WriteMode::Truncate);
        assert_eq!(names(&mut fs, b"/"), [b"plain".to_vec()]);
        assert_eq!(kind(fs.metadata(b"/sock")), ErrorKind::PermissionDenied);
        assert_eq!(kind(fs.open_read(b"/sock")), ErrorKind::PermissionDenied);
        assert_eq!(
            kind(fs.open_write(b"/sock", WriteMode::Truncate)),
            ErrorKind::PermissionDenied
        );
        // Removing it is still allowed.
        fs.remove_file(b"/sock").unwrap();
        assert!(!sock.exists());
    }

    /// A FIFO is not served, and opening it does not wait for a writer or a
    /// reader (which would stall every session of the loop).
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (tmp, mut fs) = setup();
        let fifo = tmp.path().join("root/fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let read = kind(fs.open_read(b"/fifo"));
            let write = kind(fs.open_write(b"/fifo", WriteMode::Truncate));
            let _ = done.send((read, write));
        });
        let (read, write) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO blocked");
        assert_eq!(read, ErrorKind::PermissionDenied);
        assert_eq!(write, ErrorKind::PermissionDenied);
    }
}
