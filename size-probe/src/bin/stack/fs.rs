//! An in-memory file system for the stack probe: a few files and
//! directories in a fixed table (no allocation), shared by the file system
//! and its open files through a `RefCell` the probe owns for the whole run.
use core::cell::RefCell;

use ferry_fs::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

/// Entries the table holds.
const ENTRIES: usize = 10;
/// The longest path.
const PATH: usize = 40;
/// The largest file.
pub const FILE: usize = 1024;

/// One file or directory.
pub struct Entry {
    used: bool,
    dir: bool,
    path: [u8; PATH],
    path_len: usize,
    data: [u8; FILE],
    len: usize,
    modified: u64,
}

impl Entry {
    const EMPTY: Entry = Entry {
        used: false,
        dir: false,
        path: [0; PATH],
        path_len: 0,
        data: [0; FILE],
        len: 0,
        modified: 0,
    };

    fn path(&self) -> &[u8] {
        self.path.get(..self.path_len).unwrap_or(&[])
    }

    fn metadata(&self) -> Metadata {
        Metadata {
            kind: if self.dir {
                EntryKind::Dir
            } else {
                EntryKind::File
            },
            size: self.len as u64,
            modified: Some(self.modified),
            mode: Some(if self.dir { 0o755 } else { 0o644 }),
        }
    }
}

/// The table.
pub struct Store {
    entries: [Entry; ENTRIES],
}

impl Store {
    /// Only the root, which is implicit.
    pub const fn new() -> Store {
        Store {
            entries: [const { Entry::EMPTY }; ENTRIES],
        }
    }

    fn find(&self, path: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e.used && e.path() == path)
    }

    /// Whether `path` names a directory (the root included).
    fn is_dir(&self, path: &[u8]) -> bool {
        path == b"/"
            || self
                .find(path)
                .and_then(|i| self.entries.get(i))
                .is_some_and(|e| e.dir)
    }

    /// Adds an entry whose parent must be a directory.
    fn add(&mut self, path: &[u8], dir: bool, data: &[u8]) -> Result<usize, FsError> {
        if self.find(path).is_some() || path == b"/" {
            return Err(FsError(ErrorKind::AlreadyExists));
        }
        if !self.is_dir(parent(path)) {
            return Err(FsError(ErrorKind::NotFound));
        }
        if path.len() > PATH || data.len() > FILE {
            return Err(FsError(ErrorKind::NameTooLong));
        }
        let i = self
            .entries
            .iter()
            .position(|e| !e.used)
            .ok_or(FsError(ErrorKind::NoSpace))?;
        let e = self.entries.get_mut(i).ok_or(FsError(ErrorKind::Other))?;
        *e = Entry::EMPTY;
        e.used = true;
        e.dir = dir;
        e.path_len = path.len();
        e.path
            .get_mut(..path.len())
            .map(|p| p.copy_from_slice(path));
        e.len = data.len();
        e.data
            .get_mut(..data.len())
            .map(|d| d.copy_from_slice(data));
        e.modified = 1_700_000_000;
        Ok(i)
    }

    /// Puts a file or directory in place before the run.
    pub fn seed(&mut self, path: &[u8], dir: bool, data: &[u8]) -> bool {
        self.add(path, dir, data).is_ok()
    }
}

/// `path`'s parent directory.
fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => path.get(..i).unwrap_or(b"/"),
    }
}

/// What went wrong.
#[derive(Debug, Clone, Copy)]
pub struct FsError(ErrorKind);

impl embedded_io::Error for FsError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl ferry_fs::Error for FsError {
    fn fs_kind(&self) -> ErrorKind {
        self.0
    }
}

/// The file system the engine serves.
pub struct MemFs {
    store: &'static RefCell<Store>,
}

impl MemFs {
    /// Serves `store`.
    pub fn new(store: &'static RefCell<Store>) -> MemFs {
        MemFs { store }
    }
}

/// An open file: the entry and a position.
pub struct MemFile {
    store: &'static RefCell<Store>,
    entry: usize,
    pos: usize,
}

impl embedded_io::ErrorType for MemFile {
    type Error = FsError;
}

impl embedded_io::Read for MemFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FsError> {
        let store = self.store.borrow();
        let e = store
            .entries
            .get(self.entry)
            .ok_or(FsError(ErrorKind::Io))?;
        let data = e.data.get(self.pos.min(e.len)..e.len).unwrap_or(&[]);
        let n = data.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io::Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, FsError> {
        let mut store = self.store.borrow_mut();
        let e = store
            .entries
            .get_mut(self.entry)
            .ok_or(FsError(ErrorKind::Io))?;
        let n = buf.len().min(FILE.saturating_sub(self.pos));
        if n == 0 && !buf.is_empty() {
            return Err(FsError(ErrorKind::NoSpace));
        }
        if let (Some(dst), Some(src)) = (e.data.get_mut(self.pos..self.pos + n), buf.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        e.len = e.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

impl embedded_io::Seek for MemFile {
    fn seek(&mut self, pos: embedded_io::SeekFrom) -> Result<u64, FsError> {
        let len = self
            .store
            .borrow()
            .entries
            .get(self.entry)
            .map_or(0, |e| e.len as i64);
        let to = match pos {
            embedded_io::SeekFrom::Start(n) => n as i64,
            embedded_io::SeekFrom::End(d) => len + d,
            embedded_io::SeekFrom::Current(d) => self.pos as i64 + d,
        };
        if !(0..=FILE as i64).contains(&to) {
            return Err(FsError(ErrorKind::Other));
        }
        self.pos = to as usize;
        Ok(to as u64)
    }
}

/// A directory being read: its path's entry (`None`: the root) and how far.
pub struct MemDir {
    entry: Option<usize>,
    next: usize,
}

impl MemFs {
    /// The file at `path`, or why not.
    fn file(&self, path: &[u8]) -> Result<usize, FsError> {
        let store = self.store.borrow();
        let i = store.find(path).ok_or(FsError(ErrorKind::NotFound))?;
        match store.entries.get(i) {
            Some(e) if e.dir => Err(FsError(ErrorKind::IsADirectory)),
            Some(_) => Ok(i),
            None => Err(FsError(ErrorKind::NotFound)),
        }
    }

    fn open(&self, entry: usize, pos: usize) -> MemFile {
        MemFile {
            store: self.store,
            entry,
            pos,
        }
    }
}

impl FileSystem for MemFs {
    type Error = FsError;
    type File = MemFile;
    type Dir = MemDir;

    fn open_read(&mut self, path: &[u8]) -> Result<MemFile, FsError> {
        let i = self.file(path)?;
        Ok(self.open(i, 0))
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<MemFile, FsError> {
        let i = match self.file(path) {
            Ok(i) => i,
            Err(FsError(ErrorKind::NotFound)) => self.store.borrow_mut().add(path, false, &[])?,
            Err(e) => return Err(e),
        };
        let mut store = self.store.borrow_mut();
        let e = store.entries.get_mut(i).ok_or(FsError(ErrorKind::Io))?;
        e.modified = e.modified.wrapping_add(1);
        let pos = match mode {
            WriteMode::Truncate => {
                e.len = 0;
                0
            }
            WriteMode::Append => e.len,
            WriteMode::Update => 0,
        };
        drop(store);
        Ok(self.open(i, pos))
    }

    fn close(&mut self, file: MemFile) -> Result<(), FsError> {
        drop(file);
        Ok(())
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        if path == b"/" {
            return Ok(Entry::EMPTY_DIR_METADATA);
        }
        let store = self.store.borrow();
        let i = store.find(path).ok_or(FsError(ErrorKind::NotFound))?;
        store
            .entries
            .get(i)
            .map(Entry::metadata)
            .ok_or(FsError(ErrorKind::NotFound))
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<MemDir, FsError> {
        let store = self.store.borrow();
        if path == b"/" {
            return Ok(MemDir {
                entry: None,
                next: 0,
            });
        }
        match store.find(path) {
            Some(i) if store.is_dir(path) => Ok(MemDir {
                entry: Some(i),
                next: 0,
            }),
            Some(_) => Err(FsError(ErrorKind::NotADirectory)),
            None => Err(FsError(ErrorKind::NotFound)),
        }
    }

    fn read_dir(&mut self, dir: &mut MemDir, name: &mut [u8]) -> Result<Option<DirEntry>, FsError> {
        let store = self.store.borrow();
        let dir_path: &[u8] = match dir.entry {
            None => b"/",
            Some(i) => store.entries.get(i).map_or(&b"/"[..], Entry::path),
        };
        while let Some(e) = store.entries.get(dir.next) {
            dir.next += 1;
            if !e.used || parent(e.path()) != dir_path {
                continue;
            }
            let base = e
                .path()
                .get(
                    e.path()
                        .iter()
                        .rposition(|&b| b == b'/')
                        .map_or(0, |i| i + 1)..,
                )
                .unwrap_or(&[]);
            let Some(dst) = name.get_mut(..base.len()) else {
                continue;
            };
            dst.copy_from_slice(base);
            return Ok(Some(DirEntry {
                name_len: base.len(),
                metadata: e.metadata(),
            }));
        }
        Ok(None)
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        self.store.borrow_mut().add(path, true, &[]).map(|_| ())
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        let mut store = self.store.borrow_mut();
        let i = store.find(path).ok_or(FsError(ErrorKind::NotFound))?;
        if !store.is_dir(path) {
            return Err(FsError(ErrorKind::NotADirectory));
        }
        if store
            .entries
            .iter()
            .any(|e| e.used && parent(e.path()) == path)
        {
            return Err(FsError(ErrorKind::DirectoryNotEmpty));
        }
        if let Some(e) = store.entries.get_mut(i) {
            e.used = false;
        }
        Ok(())
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), FsError> {
        let i = self.file(path)?;
        if let Some(e) = self.store.borrow_mut().entries.get_mut(i) {
            e.used = false;
        }
        Ok(())
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        let mut store = self.store.borrow_mut();
        let i = store.find(from).ok_or(FsError(ErrorKind::NotFound))?;
        if !store.is_dir(parent(to)) {
            return Err(FsError(ErrorKind::NotFound));
        }
        if to.len() > PATH {
            return Err(FsError(ErrorKind::NameTooLong));
        }
        if let Some(old) = store.find(to) {
            if store.entries.get(old).is_some_and(|e| e.dir) {
                return Err(FsError(ErrorKind::AlreadyExists));
            }
            if let Some(e) = store.entries.get_mut(old) {
                e.used = false;
            }
        }
        let e = store.entries.get_mut(i).ok_or(FsError(ErrorKind::Io))?;
        e.path_len = to.len();
        e.path.get_mut(..to.len()).map(|p| p.copy_from_slice(to));
        Ok(())
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), FsError> {
        let mut store = self.store.borrow_mut();
        let i = store.find(path).ok_or(FsError(ErrorKind::NotFound))?;
        if let Some(e) = store.entries.get_mut(i) {
            e.modified = unix_secs;
        }
        Ok(())
    }

    fn set_mode(&mut self, path: &[u8], _mode: u16) -> Result<(), FsError> {
        match self.store.borrow().find(path) {
            Some(_) => Ok(()),
            None => Err(FsError(ErrorKind::NotFound)),
        }
    }
}

impl Entry {
    /// The root's metadata.
    const EMPTY_DIR_METADATA: Metadata = Metadata {
        kind: EntryKind::Dir,
        size: 0,
        modified: Some(1_700_000_000),
        mode: Some(0o755),
    };
}
