//! Simulated storage: [`MemFs`], an in-memory [`FileSystem`] with a
//! capacity (a full volume answers [`ErrorKind::NoSpace`]), and
//! [`FaultFs`], a wrapper over any [`FileSystem`] (`MemFs` or littlefs)
//! that injects errors on any call and counts the files left open.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use ferry_fs::embedded_io::{self, ErrorType, Read, Seek, SeekFrom, Write};
use ferry_fs::{DirEntry, EntryKind, ErrorKind, FileSystem, Metadata, WriteMode};

use crate::rng::Shared;
use crate::trace::{show, SharedTrace};

/// A storage error of the simulation: its kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsError(pub ErrorKind);

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

type Bytes = Rc<RefCell<Vec<u8>>>;

#[derive(Debug)]
enum Node {
    Dir,
    File(Bytes),
}

#[derive(Debug)]
struct Tree {
    nodes: BTreeMap<Vec<u8>, Node>,
    capacity: usize,
}

impl Tree {
    fn used(&self) -> usize {
        self.nodes
            .values()
            .map(|n| match n {
                Node::File(b) => b.borrow().len(),
                Node::Dir => 0,
            })
            .sum()
    }

    fn is_dir(&self, path: &[u8]) -> bool {
        path == b"/" || matches!(self.nodes.get(path), Some(Node::Dir))
    }

    fn parent_is_dir(&self, path: &[u8]) -> bool {
        let cut = path.iter().rposition(|b| *b == b'/').unwrap_or(0);
        match path.get(..cut) {
            Some(b"") | None => true,
            Some(parent) => self.is_dir(parent),
        }
    }

    /// Entries directly below `dir`.
    fn children<'a>(&'a self, dir: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a Node)> + 'a {
        let prefix_len = if dir == b"/" { 1 } else { dir.len() + 1 };
        self.nodes.iter().filter_map(move |(k, v)| {
            let inside = k.len() > prefix_len
                && k.starts_with(dir)
                && (dir == b"/" || k.get(dir.len()) == Some(&b'/'));
            let name = k.get(prefix_len..)?;
            (inside && !name.contains(&b'/')).then_some((name, v))
        })
    }
}

/// An in-memory file system of at most `capacity` bytes of file data.
#[derive(Debug, Clone)]
pub struct MemFs {
    tree: Rc<RefCell<Tree>>,
}

/// An open [`MemFs`] file: its bytes stay reachable after a remove or
/// rename, as on a POSIX system.
#[derive(Debug)]
pub struct MemFile {
    data: Bytes,
    tree: Rc<RefCell<Tree>>,
    pos: usize,
    writable: bool,
}

/// A directory being listed: its path and the entries read so far.
#[derive(Debug)]
pub struct MemDir {
    path: Vec<u8>,
    next: usize,
}

impl MemFs {
    /// An empty file system holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> MemFs {
        MemFs {
            tree: Rc::new(RefCell::new(Tree {
                nodes: BTreeMap::new(),
                capacity,
            })),
        }
    }
}

impl ErrorType for MemFile {
    type Error = FsError;
}

impl Read for MemFile {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FsError> {
        let data = self.data.borrow();
        let src = data.get(self.pos..).unwrap_or(&[]);
        let n = src.len().min(buf.len());
        for (d, s) in buf.iter_mut().zip(src.iter().take(n)) {
            *d = *s;
        }
        self.pos += n;
        Ok(n)
    }
}

impl Write for MemFile {
    fn write(&mut self, buf: &[u8]) -> Result<usize, FsError> {
        if !self.writable {
            return Err(FsError(ErrorKind::PermissionDenied));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let (used, capacity) = {
            let t = self.tree.borrow();
            (t.used(), t.capacity)
        };
        let mut data = self.data.borrow_mut();
        // The file may grow to its length plus the room left (a write past
        // the end fills the gap with zeros).
        let room = capacity.saturating_sub(used);
        let limit = data.len() + room;
        let n = buf.len().min(limit.saturating_sub(self.pos));
        if n == 0 {
            return Err(FsError(ErrorKind::NoSpace));
        }
        if data.len() < self.pos + n {
            data.resize(self.pos + n, 0);
        }
        if let Some(dst) = data.get_mut(self.pos..self.pos + n) {
            dst.copy_from_slice(buf.get(..n).unwrap_or(&[]));
        }
        self.pos += n;
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

impl Seek for MemFile {
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, FsError> {
        let len = self.data.borrow().len() as i64;
        let to = match pos {
            SeekFrom::Start(n) => i64::try_from(n).unwrap_or(i64::MAX),
            SeekFrom::End(d) => len.saturating_add(d),
            SeekFrom::Current(d) => (self.pos as i64).saturating_add(d),
        };
        let to = usize::try_from(to).map_err(|_| FsError(ErrorKind::Other))?;
        self.pos = to;
        Ok(to as u64)
    }
}

fn err<T>(kind: ErrorKind) -> Result<T, FsError> {
    Err(FsError(kind))
}

impl FileSystem for MemFs {
    type Error = FsError;
    type File = MemFile;
    type Dir = MemDir;

    fn open_read(&mut self, path: &[u8]) -> Result<MemFile, FsError> {
        let t = self.tree.borrow();
        match t.nodes.get(path) {
            Some(Node::File(b)) => Ok(MemFile {
                data: b.clone(),
                tree: self.tree.clone(),
                pos: 0,
                writable: false,
            }),
            Some(Node::Dir) => err(ErrorKind::IsADirectory),
            None if path == b"/" => err(ErrorKind::IsADirectory),
            None => err(ErrorKind::NotFound),
        }
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<MemFile, FsError> {
        let mut t = self.tree.borrow_mut();
        if !t.parent_is_dir(path) {
            return err(ErrorKind::NotFound);
        }
        let data = match t.nodes.get(path) {
            Some(Node::Dir) => return err(ErrorKind::IsADirectory),
            None if path == b"/" => return err(ErrorKind::IsADirectory),
            Some(Node::File(b)) => b.clone(),
            None => {
                let b: Bytes = Rc::default();
                t.nodes.insert(path.to_vec(), Node::File(b.clone()));
                b
            }
        };
        let pos = match mode {
            WriteMode::Truncate => {
                data.borrow_mut().clear();
                0
            }
            WriteMode::Append => data.borrow().len(),
            WriteMode::Update => 0,
        };
        Ok(MemFile {
            data,
            tree: self.tree.clone(),
            pos,
            writable: true,
        })
    }

    fn close(&mut self, file: MemFile) -> Result<(), FsError> {
        drop(file);
        Ok(())
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        let t = self.tree.borrow();
        let (kind, size) = match t.nodes.get(path) {
            Some(Node::File(b)) => (EntryKind::File, b.borrow().len() as u64),
            Some(Node::Dir) => (EntryKind::Dir, 0),
            None if path == b"/" => (EntryKind::Dir, 0),
            None => return err(ErrorKind::NotFound),
        };
        Ok(Metadata {
            kind,
            size,
            modified: None,
            mode: None,
        })
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<MemDir, FsError> {
        let t = self.tree.borrow();
        if t.is_dir(path) {
            Ok(MemDir {
                path: path.to_vec(),
                next: 0,
            })
        } else if t.nodes.contains_key(path) {
            err(ErrorKind::NotADirectory)
        } else {
            err(ErrorKind::NotFound)
        }
    }

    fn read_dir(&mut self, dir: &mut MemDir, name: &mut [u8]) -> Result<Option<DirEntry>, FsError> {
        let t = self.tree.borrow();
        loop {
            let Some((n, node)) = t.children(&dir.path).nth(dir.next) else {
                return Ok(None);
            };
            dir.next += 1;
            let Some(dst) = name.get_mut(..n.len()) else {
                continue;
            };
            dst.copy_from_slice(n);
            let (kind, size) = match node {
                Node::File(b) => (EntryKind::File, b.borrow().len() as u64),
                Node::Dir => (EntryKind::Dir, 0),
            };
            return Ok(Some(DirEntry {
                name_len: n.len(),
                metadata: Metadata {
                    kind,
                    size,
                    modified: None,
                    mode: None,
                },
            }));
        }
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        let mut t = self.tree.borrow_mut();
        if path == b"/" || t.nodes.contains_key(path) {
            return err(ErrorKind::AlreadyExists);
        }
        if !t.parent_is_dir(path) {
            return err(ErrorKind::NotFound);
        }
        t.nodes.insert(path.to_vec(), Node::Dir);
        Ok(())
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        let mut t = self.tree.borrow_mut();
        match t.nodes.get(path) {
            Some(Node::Dir) if t.children(path).next().is_some() => {
                err(ErrorKind::DirectoryNotEmpty)
            }
            Some(Node::Dir) => {
                t.nodes.remove(path);
                Ok(())
            }
            Some(Node::File(_)) => err(ErrorKind::NotADirectory),
            None if path == b"/" => err(ErrorKind::PermissionDenied),
            None => err(ErrorKind::NotFound),
        }
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), FsError> {
        let mut t = self.tree.borrow_mut();
        match t.nodes.get(path) {
            Some(Node::File(_)) => {
                t.nodes.remove(path);
                Ok(())
            }
            Some(Node::Dir) => err(ErrorKind::IsADirectory),
            None => err(ErrorKind::NotFound),
        }
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        let mut t = self.tree.borrow_mut();
        if from == b"/" || to == b"/" {
            return err(ErrorKind::PermissionDenied);
        }
        if !t.parent_is_dir(to) {
            return err(ErrorKind::NotFound);
        }
        match (t.nodes.get(from), t.nodes.get(to)) {
            (None, _) => err(ErrorKind::NotFound),
            (Some(_), _) if from == to => Ok(()),
            (Some(Node::File(_)), Some(Node::Dir)) => err(ErrorKind::IsADirectory),
            (Some(Node::Dir), Some(Node::File(_))) => err(ErrorKind::NotADirectory),
            (Some(Node::Dir), Some(Node::Dir)) => err(ErrorKind::AlreadyExists),
            (Some(Node::File(_)), _) => {
                if let Some(node) = t.nodes.remove(from) {
                    t.nodes.insert(to.to_vec(), node);
                }
                Ok(())
            }
            (Some(Node::Dir), None) => {
                if to.starts_with(from) && to.get(from.len()) == Some(&b'/') {
                    return err(ErrorKind::Other);
                }
                let moved: Vec<Vec<u8>> = t
                    .nodes
                    .keys()
                    .filter(|k| {
                        k.as_slice() == from
                            || (k.starts_with(from) && k.get(from.len()) == Some(&b'/'))
                    })
                    .cloned()
                    .collect();
                for k in moved {
                    if let Some(node) = t.nodes.remove(&k) {
                        let mut nk = to.to_vec();
                        nk.extend_from_slice(k.get(from.len()..).unwrap_or(&[]));
                        t.nodes.insert(nk, node);
                    }
                }
                Ok(())
            }
        }
    }

    fn set_modified(&mut self, path: &[u8], _unix_secs: u64) -> Result<(), FsError> {
        self.metadata(path).map(|_| ())
    }

    fn set_mode(&mut self, _path: &[u8], _mode: u16) -> Result<(), FsError> {
        err(ErrorKind::Unsupported)
    }
}

/// What a [`FaultFs`] injects, and the bug it may plant on purpose.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsFaults {
    /// Per mille of calls (open, read, write, close, rename, ...) that fail.
    pub error: u64,
    /// Per mille of writes and reads that move only part of the bytes.
    pub partial: u64,
    /// A planted bug, to show the checks can fail: every file written
    /// loses its last written chunk at close, silently.
    pub drop_last_chunk: bool,
    /// A targeted fault for scripted tests: every call named `.0` (e.g.
    /// "metadata") on the path `.1` fails with `.2`.
    pub fail_on: Option<(&'static str, &'static [u8], ErrorKind)>,
}

/// What the [`FaultFs`] of a run shares with its files.
#[derive(Debug)]
struct Shared_ {
    rng: Shared,
    trace: SharedTrace,
    faults: FsFaults,
    open: Cell<usize>,
    injected: Cell<u64>,
}

impl Shared_ {
    /// An error to inject into `op` on `path`, if this call fails.
    fn inject(&self, op: &str, path: &[u8], kinds: &[ErrorKind]) -> Result<(), FsError> {
        if let Some((o, p, kind)) = self.faults.fail_on {
            if o == op && p == path {
                self.trace.borrow_mut().log(format!(
                    "fs: {op} {} -> {kind:?} (targeted)",
                    show(path, 60)
                ));
                return Err(FsError(kind));
            }
        }
        let mut rng = self.rng.borrow_mut();
        if !rng.chance(self.faults.error) {
            return Ok(());
        }
        let i = usize::try_from(rng.below(kinds.len() as u64)).unwrap_or(0);
        let kind = kinds.get(i).copied().unwrap_or(ErrorKind::Io);
        drop(rng);
        self.injected.set(self.injected.get() + 1);
        self.trace
            .borrow_mut()
            .log(format!("fs: {op} {} -> injected {kind:?}", show(path, 60)));
        Err(FsError(kind))
    }

    fn part(&self, n: usize) -> usize {
        let mut rng = self.rng.borrow_mut();
        if n > 1 && rng.chance(self.faults.partial) {
            rng.range_usize(1, n - 1)
        } else {
            n
        }
    }
}

/// Errors of a device or a full volume. Never `NotFound` for a path that
/// exists: a storage that lies about what exists cannot be served safely.
const OPEN_ERRORS: &[ErrorKind] = &[
    ErrorKind::Io,
    ErrorKind::PermissionDenied,
    ErrorKind::NoSpace,
    ErrorKind::Other,
];
const IO_ERRORS: &[ErrorKind] = &[ErrorKind::Io, ErrorKind::Other];
const WRITE_ERRORS: &[ErrorKind] = &[ErrorKind::Io, ErrorKind::NoSpace];

/// Injects faults into every call of the [`FileSystem`] it wraps, and
/// counts the files open through it.
#[derive(Debug)]
pub struct FaultFs<'a, F> {
    inner: &'a mut F,
    shared: Rc<Shared_>,
}

/// A file opened through a [`FaultFs`].
#[derive(Debug)]
pub struct FaultFile<T> {
    inner: Option<T>,
    shared: Rc<Shared_>,
    /// The chunk held back by [`FsFaults::drop_last_chunk`].
    held: Vec<u8>,
}

impl<T> Drop for FaultFile<T> {
    fn drop(&mut self) {
        self.shared
            .open
            .set(self.shared.open.get().saturating_sub(1));
    }
}

impl<'a, F: FileSystem> FaultFs<'a, F> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut F, rng: Shared, trace: SharedTrace, faults: FsFaults) -> Self {
        FaultFs {
            inner,
            shared: Rc::new(Shared_ {
                rng,
                trace,
                faults,
                open: Cell::new(0),
                injected: Cell::new(0),
            }),
        }
    }

    /// The wrapped file system, without faults (for the checks).
    pub fn inner(&mut self) -> &mut F {
        self.inner
    }

    /// Files opened through this wrapper and not yet closed or dropped.
    pub fn open_files(&self) -> usize {
        self.shared.open.get()
    }

    /// Errors injected so far.
    pub fn injected(&self) -> u64 {
        self.shared.injected.get()
    }

    fn wrap(&self, file: F::File) -> FaultFile<F::File> {
        self.shared.open.set(self.shared.open.get() + 1);
        FaultFile {
            inner: Some(file),
            shared: self.shared.clone(),
            held: Vec::new(),
        }
    }

    fn inject(&self, op: &str, path: &[u8], kinds: &[ErrorKind]) -> Result<(), FsError> {
        self.shared.inject(op, path, kinds)
    }
}

fn conv<T, E: ferry_fs::Error>(r: Result<T, E>) -> Result<T, FsError> {
    r.map_err(|e| FsError(e.fs_kind()))
}

impl<T: ferry_fs::File> ErrorType for FaultFile<T>
where
    T::Error: ferry_fs::Error,
{
    type Error = FsError;
}

impl<T: ferry_fs::File> Read for FaultFile<T>
where
    T::Error: ferry_fs::Error,
{
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, FsError> {
        self.shared.inject("read", b"", IO_ERRORS)?;
        let n = self.shared.part(buf.len());
        let inner = self.inner.as_mut().ok_or(FsError(ErrorKind::Other))?;
        conv(inner.read(buf.get_mut(..n).unwrap_or(&mut [])))
    }
}

impl<T: ferry_fs::File> Write for FaultFile<T>
where
    T::Error: ferry_fs::Error,
{
    fn write(&mut self, buf: &[u8]) -> Result<usize, FsError> {
        self.shared.inject("write", b"", WRITE_ERRORS)?;
        let n = self.shared.part(buf.len());
        let chunk = buf.get(..n).unwrap_or(&[]);
        let inner = self.inner.as_mut().ok_or(FsError(ErrorKind::Other))?;
        if self.shared.faults.drop_last_chunk {
            // The chunk goes to the file only when the next one comes.
            let held = std::mem::replace(&mut self.held, chunk.to_vec());
            conv(inner.write_all(&held))?;
            return Ok(n);
        }
        conv(inner.write(chunk))
    }

    fn flush(&mut self) -> Result<(), FsError> {
        self.shared.inject("flush", b"", IO_ERRORS)?;
        let inner = self.inner.as_mut().ok_or(FsError(ErrorKind::Other))?;
        conv(inner.flush())
    }
}

impl<T: ferry_fs::File> Seek for FaultFile<T>
where
    T::Error: ferry_fs::Error,
{
    fn seek(&mut self, pos: SeekFrom) -> Result<u64, FsError> {
        self.shared.inject("seek", b"", IO_ERRORS)?;
        let inner = self.inner.as_mut().ok_or(FsError(ErrorKind::Other))?;
        conv(inner.seek(pos))
    }
}

impl<F: FileSystem> FileSystem for FaultFs<'_, F> {
    type Error = FsError;
    type File = FaultFile<F::File>;
    type Dir = F::Dir;

    fn open_read(&mut self, path: &[u8]) -> Result<Self::File, FsError> {
        self.inject("open_read", path, OPEN_ERRORS)?;
        let f = conv(self.inner.open_read(path))?;
        Ok(self.wrap(f))
    }

    fn open_write(&mut self, path: &[u8], mode: WriteMode) -> Result<Self::File, FsError> {
        self.inject("open_write", path, OPEN_ERRORS)?;
        let f = conv(self.inner.open_write(path, mode))?;
        Ok(self.wrap(f))
    }

    fn close(&mut self, mut file: Self::File) -> Result<(), FsError> {
        let Some(inner) = file.inner.take() else {
            return err(ErrorKind::Other);
        };
        // The file is closed whatever is injected: an error at close is
        // one the engine cannot retry.
        let closed = conv(self.inner.close(inner));
        self.inject("close", b"", IO_ERRORS)?;
        closed
    }

    fn metadata(&mut self, path: &[u8]) -> Result<Metadata, FsError> {
        self.inject("metadata", path, OPEN_ERRORS)?;
        conv(self.inner.metadata(path))
    }

    fn open_dir(&mut self, path: &[u8]) -> Result<Self::Dir, FsError> {
        self.inject("open_dir", path, OPEN_ERRORS)?;
        conv(self.inner.open_dir(path))
    }

    fn read_dir(
        &mut self,
        dir: &mut Self::Dir,
        name: &mut [u8],
    ) -> Result<Option<DirEntry>, FsError> {
        self.inject("read_dir", b"", IO_ERRORS)?;
        conv(self.inner.read_dir(dir, name))
    }

    fn create_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        self.inject("create_dir", path, OPEN_ERRORS)?;
        conv(self.inner.create_dir(path))
    }

    fn remove_dir(&mut self, path: &[u8]) -> Result<(), FsError> {
        self.inject("remove_dir", path, OPEN_ERRORS)?;
        conv(self.inner.remove_dir(path))
    }

    fn remove_file(&mut self, path: &[u8]) -> Result<(), FsError> {
        self.inject("remove_file", path, OPEN_ERRORS)?;
        conv(self.inner.remove_file(path))
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<(), FsError> {
        self.inject("rename", from, OPEN_ERRORS)?;
        conv(self.inner.rename(from, to))
    }

    fn set_modified(&mut self, path: &[u8], unix_secs: u64) -> Result<(), FsError> {
        self.inject("set_modified", path, IO_ERRORS)?;
        conv(self.inner.set_modified(path, unix_secs))
    }

    fn set_mode(&mut self, path: &[u8], mode: u16) -> Result<(), FsError> {
        self.inject("set_mode", path, IO_ERRORS)?;
        conv(self.inner.set_mode(path, mode))
    }
}

/// Reads a whole file straight from `fs`: `Ok(None)` if it does not exist.
pub fn read_file<F: FileSystem>(fs: &mut F, path: &[u8]) -> Result<Option<Vec<u8>>, ErrorKind> {
    let mut f = match fs.open_read(path) {
        Ok(f) => f,
        Err(e) if ferry_fs::Error::fs_kind(&e) == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ferry_fs::Error::fs_kind(&e)),
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) => {
                let _ = fs.close(f);
                return Err(ferry_fs::Error::fs_kind(&e));
            }
        }
    }
    fs.close(f).map_err(|e| ferry_fs::Error::fs_kind(&e))?;
    Ok(Some(out))
}

/// Writes a whole file straight to `fs` (setting up a run).
pub fn write_file<F: FileSystem>(fs: &mut F, path: &[u8], data: &[u8]) -> Result<(), ErrorKind> {
    let mut f = fs
        .open_write(path, WriteMode::Truncate)
        .map_err(|e| ferry_fs::Error::fs_kind(&e))?;
    f.write_all(data)
        .map_err(|e| ferry_fs::Error::fs_kind(&e))?;
    fs.close(f).map_err(|e| ferry_fs::Error::fs_kind(&e))
}
