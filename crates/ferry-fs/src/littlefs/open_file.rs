//! Open littlefs files that outlive a call: the [`FileSlots`] their state
//! lives in, and the only `unsafe` code in this crate.
//!
//! littlefs links each open file into the mounted volume's list of open
//! files, by the address of the file's state (littlefs2's `FileAllocation`),
//! and walks that list in later operations on the volume. So littlefs2 opens
//! a file beyond a closure only through `unsafe` calls whose contract is:
//! the state must not move or be reused while the file is open, and every
//! opened file must be closed, once, before its state is reused or dropped.
//!
//! [`OpenFile`] keeps that contract by these invariants:
//! 1. **One file per slot.** A slot's `in_use` flag is set before a file is
//!    opened in it, and cleared only once littlefs has unlinked the file
//!    again: after `lfs_file_close` (which unlinks even when its final sync
//!    fails), or after a failed open (which unlinks before returning). While
//!    the flag is set nothing but that one [`OpenFile`] touches the slot,
//!    and it never makes a Rust reference to the state: littlefs2's `File`
//!    holds a raw pointer, and the only `&mut` is the one handed to the open.
//! 2. **The state stays put while linked.** [`OpenFile::open`] takes the
//!    slots as `&'a FileSlots` and the volume as `&'a Filesystem<'a, S>`, so
//!    the slots can neither move nor be dropped during `'a`; and the volume,
//!    whose type names `'a` (invariantly), cannot be used after `'a`. So
//!    whenever littlefs may follow the link, the state is there.
//! 3. **Closed once.** [`OpenFile::close`] consumes the file, and `Drop`
//!    closes one that was not closed: both go through `shut`, which runs at
//!    most once per file. A leaked file (`mem::forget`) is never closed, and
//!    its slot stays in use for good, so its state is never reused
//!    (invariant 1) and stays valid for as long as the volume can be used
//!    (invariant 2).
//!
//! `FileSlots` and `OpenFile` are neither `Send` nor `Sync` (`Cell`,
//! `UnsafeCell`, littlefs2's `RefCell`), so all of this happens on one
//! thread, and nothing here calls back into user code while a flag or a
//! link is half set.
#![allow(unsafe_code)]

use core::cell::{Cell, UnsafeCell};
use core::mem::ManuallyDrop;

use littlefs2::driver::Storage;
use littlefs2::fs::{File, FileAllocation, Filesystem, OpenOptions};
use littlefs2::io;
use littlefs2::path::Path;

/// State for up to `N` littlefs files open at once, lent to
/// [`LittleFs::new`](super::LittleFs::new).
///
/// Each slot holds littlefs's state of one open file, its 256-byte cache
/// and bookkeeping: about 360 bytes on a 32-bit MCU. Give a server one slot
/// per session (a session has at most one file open): opening a file with
/// every slot in use fails with
/// [`LfsError::NO_FREE_SLOT`](super::LfsError::NO_FREE_SLOT).
///
/// The slots must outlive the `LittleFs` that uses them: keep them on the
/// stack next to the mounted `Filesystem` (as
/// [`mount_and_then`](super::mount_and_then) does), in a `static` on
/// firmware (`StaticCell::init_with(FileSlots::new)`: building them is not
/// `const`), or leaked on a host.
pub struct FileSlots<S: Storage, const N: usize> {
    slots: [Slot<S>; N],
}

struct Slot<S: Storage> {
    state: UnsafeCell<FileAllocation<S>>,
    in_use: Cell<bool>,
}

impl<S: Storage, const N: usize> FileSlots<S, N> {
    /// `N` free slots.
    pub fn new() -> FileSlots<S, N> {
        FileSlots {
            slots: core::array::from_fn(|_| Slot {
                state: UnsafeCell::new(FileAllocation::new()),
                in_use: Cell::new(false),
            }),
        }
    }

    /// How many slots hold an open file.
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.in_use.get()).count()
    }
}

impl<S: Storage, const N: usize> Default for FileSlots<S, N> {
    fn default() -> FileSlots<S, N> {
        FileSlots::new()
    }
}

impl<S: Storage, const N: usize> core::fmt::Debug for FileSlots<S, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileSlots")
            .field("slots", &N)
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// Why [`OpenFile::open`] failed.
pub(super) enum OpenError {
    /// Every slot holds an open file.
    NoFreeSlot,
    /// littlefs refused.
    Lfs(io::Error),
}

/// A littlefs file, open in a slot of a [`FileSlots`] until it is closed or
/// dropped.
pub(super) struct OpenFile<'a, S: Storage> {
    file: ManuallyDrop<File<'a, 'a, S>>,
    in_use: &'a Cell<bool>,
}

impl<'a, S: Storage> OpenFile<'a, S> {
    /// Opens `path` on `fs` as `options` say, in a free slot of `slots`.
    pub(super) fn open<const N: usize>(
        fs: &'a Filesystem<'a, S>,
        slots: &'a FileSlots<S, N>,
        options: &OpenOptions,
        path: &Path,
    ) -> Result<OpenFile<'a, S>, OpenError> {
        let slot = slots
            .slots
            .iter()
            .find(|s| !s.in_use.get())
            .ok_or(OpenError::NoFreeSlot)?;
        slot.in_use.set(true);
        // SAFETY: the slot was free, so no open file uses its state and no
        // reference to it exists (invariant 1); setting `in_use` gives it to
        // this file alone until littlefs unlinks it. The state lives in
        // `slots`, borrowed for `'a` like `fs`, so it stays put for as long
        // as littlefs can reach it (invariant 2). The `&mut` ends with this
        // call: afterwards only littlefs2's raw pointer refers to the state.
        let opened = unsafe { options.open(fs, &mut *slot.state.get(), path) };
        match opened {
            Ok(file) => Ok(OpenFile {
                file: ManuallyDrop::new(file),
                in_use: &slot.in_use,
            }),
            Err(e) => {
                // A failed `lfs_file_opencfg` has unlinked the file already
                // (or never linked it): the slot is free again.
                slot.in_use.set(false);
                Err(OpenError::Lfs(e))
            }
        }
    }

    /// The open file, for I/O.
    pub(super) fn file(&self) -> &File<'a, 'a, S> {
        &self.file
    }

    /// Closes the file: littlefs commits what is not yet committed (the
    /// error says if that failed), and the slot is free again either way.
    pub(super) fn close(self) -> Result<(), io::Error> {
        // `shut` here, and not again in `Drop`.
        ManuallyDrop::new(self).shut()
    }

    /// Closes the file and frees its slot. Runs at most once per file: from
    /// `close`, which keeps `Drop` from running, or from `Drop`.
    fn shut(&mut self) -> Result<(), io::Error> {
        // SAFETY: `shut` runs at most once per `OpenFile` (see above), so
        // `file` is taken once and never touched again.
        let file = unsafe { ManuallyDrop::take(&mut self.file) };
        // SAFETY: `file` was opened by `open` and is closed here, the only
        // time (invariant 3); its state is still in its slot (invariant 2).
        let closed = unsafe { file.close() };
        // `lfs_file_close` unlinks the file even when its sync fails.
        self.in_use.set(false);
        closed
    }
}

impl<S: Storage> Drop for OpenFile<'_, S> {
    /// Closes a file that was not closed, so that littlefs never keeps a
    /// link to a slot that is reused; errors are lost.
    fn drop(&mut self) {
        let _ = self.shut();
    }
}
