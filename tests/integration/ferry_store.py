"""What ferryd serves in a test, and how the test reaches it: a host
directory, a littlefs image, a FAT image or a FAT image served through
embedded-sdmmc (`FERRY_BACKENDS`).

Tests never open the served files themselves; they go through a `Store`:

    store.write_bytes("d/f.bin", data, mtime=None)   # parents are created
    store.mkdir("d/e")                              # with parents, may exist
    store.read_bytes("d/f.bin")
    store.exists(rel), store.is_dir(rel), store.is_file(rel)
    store.listdir(rel="")                           # sorted names
    store.stat_mtime(rel)                           # seconds since 1970, UTC
    store.set_mtime(rel, secs)
    store.snapshot(rel)                             # {path: bytes, or None for a dir}
    store.symlink(...), store.root                  # the host directory only

How each backend is reached, so that the checks never trust Ferry's own code:
- `dir`: the host file system (`pathlib`).
- `fat`: `mtools` (`mcopy`, `mdir`, `mmd`, `mformat`).
- `sdfat`: the same, on the image's first MBR partition (`-i IMAGE@@1M`);
  a new image gets its MBR from this file and its FAT16 from `mformat`.
- `littlefs`: the `littlefs-python` package (littlefs's C code, built by
  someone else), over a fresh copy of the image bytes. Names are looked up in
  the stored form ferry-fs uses (`%XX` for `%` and bytes from 0x80 on), and
  the modification time is ferry-fs's attribute `t` (8 bytes, little endian).

Writes: while no ferryd serves the image, they go straight into it with the
same foreign tools (e.g. before a `--read-only` server starts). While one
serves it, they go through FTP as user test/secret, one connection per call
(or per `with store.batch():`), so the image file is never written by two
programs at once. Reads while a ferryd serves the image are safe once the
transfer's 226 has arrived: ferry-fs commits on close. Reads use a copy of the
image as it is then (littlefs) or read-only mtools calls (FAT).
"""
from __future__ import annotations

import calendar
import contextlib
import ftplib
import io
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "test"
PASSWORD = "secret"
TIMEOUT = 10


@dataclass(frozen=True)
class Caps:
    """What a backend can do, as the tests see it. A test that is about one
    of these declares it with `@pytest.mark.needs("name")` and runs only on
    the backends that have it; a test whose expectation merely differs reads
    the field instead."""

    # A real host directory: symlinks, sparse files, names that are not
    # UTF-8 made by the host, `ulimit`.
    host_dir: bool
    # SITE CHMOD changes permission bits (others answer 504).
    unix_modes: bool
    # Files over 4 GiB (FAT: 4 GiB - 1; littlefs: 2 GiB - 1).
    large_files: bool
    # Names of 255 bytes in any directory, and paths of 1000+ bytes
    # (littlefs stores at most 255 bytes per whole path).
    long_paths: bool
    # Names may hold `"` and `*` (FAT forbids `"*:<>?\\|`).
    any_name_chars: bool
    # Names differ by case alone.
    case_sensitive: bool
    # MFMT on a directory (FAT keeps no settable directory time).
    dir_mtime: bool
    # Resolution of the times the test can read back, in seconds (FAT stores
    # 2 s steps, and mdir shows minutes).
    mtime_resolution: int
    # Size of the file that abort tests download: far more than the socket
    # buffers hold. Sparse on a host; an image has to store it.
    big_download: int
    # Entries in the "big directory" listing test: littlefs lists in
    # n²/2 entry reads (and ferry-fs's FileDisk makes two syscalls per
    # read), so it lists fewer.
    many_entries: int
    # An image file (a disk-full test is possible).
    image: bool
    # Long names: names beyond 8.3 (sdfat, FAT through embedded-sdmmc,
    # stores 8.3 names only, and lists mixed-case names in upper case).
    long_names: bool = True


CAPS = {
    "dir": Caps(host_dir=True, unix_modes=True, large_files=True, long_paths=True,
                any_name_chars=True, case_sensitive=True, dir_mtime=True, mtime_resolution=1,
                big_download=256 << 20, many_entries=3000, image=False),
    "littlefs": Caps(host_dir=False, unix_modes=False, large_files=False, long_paths=False,
                     any_name_chars=True, case_sensitive=True, dir_mtime=True,
                     mtime_resolution=1, big_download=24 << 20, many_entries=200, image=True),
    "fat": Caps(host_dir=False, unix_modes=False, large_files=False, long_paths=True,
                any_name_chars=False, case_sensitive=False, dir_mtime=False,
                mtime_resolution=60, big_download=24 << 20, many_entries=500, image=True),
    # FAT through embedded-sdmmc (the no_std path of SD cards on boards).
    "sdfat": Caps(host_dir=False, unix_modes=False, large_files=False, long_paths=False,
                  any_name_chars=False, case_sensitive=False, dir_mtime=True,
                  mtime_resolution=60, big_download=24 << 20, many_entries=200, image=True,
                  long_names=False),
}

ALL_BACKENDS = tuple(CAPS)

# Image size for the tests: room for the largest test's data (24 MiB
# downloads, 50 x 256 KiB uploads) several times over.
IMAGE_SIZE = 64 << 20

# ferry-fs's littlefs geometry (crates/ferry-fs/src/image.rs) and littlefs2's
# on-disk version (2.0: littlefs2 0.8 refuses to mount 2.1 volumes).
LFS_BLOCK_SIZE = 4096
LFS_DISK_VERSION = 0x0002_0000
LFS_MTIME_ATTR = "t"


def selected_backends():
    """The backends of `FERRY_BACKENDS` (comma-separated), default all."""
    env = os.environ.get("FERRY_BACKENDS", "").strip()
    if not env:
        return list(ALL_BACKENDS)
    names = [b.strip() for b in env.split(",") if b.strip()]
    unknown = [b for b in names if b not in CAPS]
    if unknown:
        raise ValueError(f"FERRY_BACKENDS: unknown backend(s) {unknown}; known: {ALL_BACKENDS}")
    return names


def _parts(rel) -> list:
    rel = str(rel).replace("\\", "/")
    return [p for p in rel.split("/") if p not in ("", ".")]


def _join(parts) -> str:
    return "/".join(parts)


class Store:
    """Base: the shared parts. See the module docs."""

    backend = "?"

    def __init__(self, caps: Caps):
        self.caps = caps
        self.server = None  # the Ferryd serving this store now, if any

    # -- what ferryd is told
    def server_args(self) -> list:
        raise NotImplementedError

    def config_toml(self) -> str:
        """The config-file lines that select this storage."""
        raise NotImplementedError

    # -- the server's life
    def attach(self, server):
        """`server` serves this store from now on."""
        if self.served() and self.server is not server:
            raise AssertionError("two ferryd on one image at once: stop the first")
        self.server = server

    def detach(self, server):
        if self.server is server:
            self.server = None

    def served(self) -> bool:
        """Whether a running ferryd serves this store."""
        return self.server is not None and self.server.alive()

    # -- derived helpers
    def is_file(self, rel) -> bool:
        return self.exists(rel) and not self.is_dir(rel)

    def size(self, rel) -> int:
        return len(self.read_bytes(rel))

    def write_text(self, rel, text: str):
        self.write_bytes(rel, text.encode())

    @contextlib.contextmanager
    def batch(self):
        """Several writes on one FTP connection (images while served)."""
        yield

    def mtime_matches(self, rel, mdtm: str) -> bool:
        """Whether the time stored for `rel` is the MDTM/MLSx time `mdtm`
        (YYYYMMDDHHMMSS...), at the resolution this backend can be read."""
        stored = self.stat_mtime(rel)
        if stored is None:
            return False
        want = calendar.timegm(time.strptime(mdtm[:14], "%Y%m%d%H%M%S"))
        r = self.caps.mtime_resolution
        return stored // r == want // r

    def __repr__(self):
        return f"<{type(self).__name__} {self.backend}>"


# --------------------------------------------------------------------------
# Host directory


class DirStore(Store):
    backend = "dir"

    def __init__(self, root: Path):
        super().__init__(CAPS["dir"])
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, rel="") -> Path:
        return self.root.joinpath(*_parts(rel))

    def server_args(self):
        return ["--root", str(self.root)]

    def config_toml(self):
        return f"root = {_toml_str(self.root)}"

    def write_bytes(self, rel, data: bytes, mtime=None):
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))

    def mkdir(self, rel):
        self.path(rel).mkdir(parents=True, exist_ok=True)

    def read_bytes(self, rel) -> bytes:
        return self.path(rel).read_bytes()

    def exists(self, rel) -> bool:
        return self.path(rel).exists()

    def is_dir(self, rel) -> bool:
        return self.path(rel).is_dir()

    def listdir(self, rel="") -> list:
        return sorted(os.listdir(self.path(rel)))

    def stat_mtime(self, rel):
        return int(os.stat(self.path(rel)).st_mtime)

    def set_mtime(self, rel, secs):
        os.utime(self.path(rel), (secs, secs))

    def make_large(self, rel, size: int, tail: bytes = b""):
        """A file of `size` bytes: zeros, then `tail` (sparse here)."""
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as fh:
            fh.truncate(size - len(tail))
            fh.seek(size - len(tail))
            fh.write(tail)

    def size(self, rel):
        return os.path.getsize(self.path(rel))

    def snapshot(self, rel=""):
        return snapshot_dir(self.path(rel))

    def symlink(self, target, rel):
        os.symlink(target, self.path(rel))


# --------------------------------------------------------------------------
# Images


class ImageStore(Store):
    """An image file; subclasses read and write it with a foreign tool."""

    kind = "?"

    def __init__(self, backend: str, image: Path, size: int = IMAGE_SIZE):
        super().__init__(CAPS[backend])
        self.backend = backend
        self.image = image
        self.image_size = size
        self._ftp = None  # the connection of a batch

    def resize(self, size: int):
        """Another image size; only before the image exists."""
        assert not self.image.exists(), "the image exists already"
        self.image_size = size

    def server_args(self):
        return ["--fs", f"{self.kind}:{self.image}", "--fs-size", str(self.image_size)]

    def config_toml(self):
        return (f"fs = {_toml_str(f'{self.kind}:{self.image}')}\n"
                f"fs_size = {_toml_str(str(self.image_size))}")

    # -- writes: through FTP while served, else straight into the image
    def write_bytes(self, rel, data: bytes, mtime=None):
        parts = _parts(rel)
        if not self.served():
            self._offline_write(parts, data, mtime)
            return
        with self._connection() as f:
            self._ftp_mkdirs(f, parts[:-1])
            f.storbinary(f"STOR {_join(parts)}", io.BytesIO(data))
            if mtime is not None:
                self._ftp_mfmt(f, parts, mtime)

    def mkdir(self, rel):
        parts = _parts(rel)
        if not self.served():
            self._offline_mkdir(parts)
            return
        with self._connection() as f:
            self._ftp_mkdirs(f, parts)

    def set_mtime(self, rel, secs):
        parts = _parts(rel)
        if not self.served():
            self._offline_set_mtime(parts, secs)
            return
        with self._connection() as f:
            self._ftp_mfmt(f, parts, secs)

    def make_large(self, rel, size: int, tail: bytes = b""):
        """A file of `size` bytes: zeros, then `tail` (written in full)."""
        self.write_bytes(rel, bytes(size - len(tail)) + tail)

    @contextlib.contextmanager
    def batch(self):
        if not self.served() or self._ftp is not None:
            yield
            return
        self._ftp = self._login()
        try:
            yield
        finally:
            f, self._ftp = self._ftp, None
            _quit(f)

    @contextlib.contextmanager
    def _connection(self):
        if self._ftp is not None:
            yield self._ftp
            return
        f = self._login()
        try:
            yield f
        finally:
            _quit(f)

    def _login(self):
        s = self.server
        f = ftplib.FTP(timeout=TIMEOUT, encoding="utf-8")
        try:
            f.connect("127.0.0.1", s.port)
        except OSError:
            if not s.port6:
                raise
            f.connect("::1", s.port6)
        f.login(USER, PASSWORD)
        f.voidcmd("TYPE I")
        return f

    @staticmethod
    def _ftp_mkdirs(f, parts):
        for i in range(1, len(parts) + 1):
            try:
                f.mkd(_join(parts[:i]))
            except ftplib.error_perm as e:
                if not str(e).startswith(("550", "521")):
                    raise

    @staticmethod
    def _ftp_mfmt(f, parts, secs):
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(int(secs)))
        resp = f.sendcmd(f"MFMT {stamp} {_join(parts)}")
        assert resp.startswith("213"), resp

    def check(self):
        """Whether the image, as left, is a volume another implementation
        reads whole: every directory listed, every file read."""
        if self.image.exists():
            self.snapshot()

    def snapshot(self, rel=""):
        with tempfile.TemporaryDirectory(prefix="ferry-snap-") as tmp:
            out = Path(tmp) / "tree"
            self.extract(rel, out)
            return snapshot_dir(out)


def _quit(f):
    try:
        f.quit()
    except Exception:
        f.close()


# -- FAT, through mtools


def _mtools_env():
    e = dict(os.environ)
    # The image has no partition table or floppy geometry to check, times
    # are UTC (as ferry-fs writes them), names are UTF-8.
    e.update({"MTOOLS_SKIP_CHECK": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
              "MTOOLSRC": "/dev/null"})
    return e


def mtools(*argv, check=True) -> subprocess.CompletedProcess:
    exe = shutil.which(argv[0])
    if exe is None:
        raise RuntimeError(f"`{argv[0]}` is not installed: run `cargo xtask setup` "
                           "(Debian package mtools)")
    p = subprocess.run([exe, *argv[1:]], capture_output=True, env=_mtools_env(),
                       stdin=subprocess.DEVNULL, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')[-2000:]}")
    return p


# One entry of `mdir`: short name and extension, size or <DIR>, date, time,
# then the long name (absent when the short name is the whole name).
MDIR_LINE = re.compile(
    r"^(?P<short>.{8}) (?P<ext>.{3})\s+(?P<size><DIR>|\d+)\s+"
    r"(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)\s+(?P<h>\d{1,2}):(?P<mi>\d\d)\s*(?P<long>.*)$")


class FatStore(ImageStore):
    kind = "fat"

    def __init__(self, image: Path, size: int = IMAGE_SIZE):
        super().__init__("fat", image, size)
        self._staged = None  # {parent parts: {name: (data, mtime)}} of an offline batch

    @contextlib.contextmanager
    def batch(self):
        """Offline: files are staged and copied with one mcopy per directory."""
        if self.served() or self._staged is not None:
            with super().batch():
                yield
            return
        self._staged = {}
        try:
            yield
            staged = self._staged
        finally:
            self._staged = None
        for parent, files in staged.items():
            self._offline_mkdir(list(parent))
            with tempfile.TemporaryDirectory(prefix="ferry-fat-") as tmp:
                srcs = []
                for name, (data, mtime) in files.items():
                    src = Path(tmp) / name
                    src.write_bytes(data)
                    stamp = time.time() if mtime is None else mtime
                    os.utime(src, (stamp, stamp))
                    srcs.append(str(src))
                mtools("mcopy", "-o", "-m", *self._img(), *srcs, self._dos(list(parent)) + "/")

    def _img(self):
        return ["-i", str(self.image)]

    @staticmethod
    def _dos(parts) -> str:
        return "::/" + _join(parts)

    def _entries(self, parts) -> dict:
        """{name: is_dir} of a directory, from `mdir -b -a`."""
        p = mtools("mdir", "-b", "-a", *self._img(), self._dos(parts), check=False)
        if p.returncode != 0:
            raise FileNotFoundError(self._dos(parts))
        prefix = self._dos(parts).rstrip("/") + "/"
        out = {}
        for line in p.stdout.decode("utf-8", errors="surrogateescape").split("\n"):
            if not line.startswith(prefix):
                continue
            name = line[len(prefix):]
            is_dir = name.endswith("/")
            name = name.rstrip("/")
            if name and name not in (".", ".."):
                out[name] = is_dir
        return out

    def _lookup(self, parts):
        """True (dir), False (file) or None (missing); FAT ignores case."""
        if not parts:
            return True
        try:
            entries = self._entries(parts[:-1])
        except FileNotFoundError:
            return None
        want = parts[-1].upper()
        for name, is_dir in entries.items():
            if name.upper() == want:
                return is_dir
        return None

    def exists(self, rel):
        return self._lookup(_parts(rel)) is not None

    def is_dir(self, rel):
        return self._lookup(_parts(rel)) is True

    def listdir(self, rel=""):
        return sorted(self._entries(_parts(rel)))

    def read_bytes(self, rel):
        parts = _parts(rel)
        if self._lookup(parts) is not False:
            raise FileNotFoundError(rel)
        return mtools("mcopy", "-n", *self._img(), self._dos(parts), "-").stdout

    def stat_mtime(self, rel):
        """From `mdir` of the parent: minutes (mdir shows no seconds)."""
        parts = _parts(rel)
        assert parts, "the root has no time"
        p = mtools("mdir", "-a", *self._img(), self._dos(parts[:-1]))
        want = parts[-1].upper()
        for line in p.stdout.decode("utf-8", errors="surrogateescape").split("\n"):
            m = MDIR_LINE.match(line)
            if not m:
                continue
            name = m.group("long").strip() or (
                m.group("short").strip() + ("." + m.group("ext").strip()
                                            if m.group("ext").strip() else ""))
            if name.upper() == want:
                return calendar.timegm((int(m.group("y")), int(m.group("mo")), int(m.group("d")),
                                        int(m.group("h")), int(m.group("mi")), 0, 0, 0, 0))
        raise FileNotFoundError(rel)

    def extract(self, rel, out: Path):
        """Copies the tree at `rel` to the host directory `out`."""
        out.mkdir(parents=True)
        names = self.listdir(rel)
        if names:
            srcs = [self._dos(_parts(rel) + [n]) for n in names]
            mtools("mcopy", "-s", "-n", "-m", *self._img(), *srcs, str(out) + "/")

    # -- offline writes
    def _create(self):
        if self.image.exists():
            return
        with open(self.image, "wb") as fh:
            fh.truncate(self.image_size)
        mtools("mformat", *self._img(), "::")

    def _offline_mkdir(self, parts):
        self._create()
        for i in range(1, len(parts) + 1):
            kind = self._lookup(parts[:i])
            if kind is None:
                mtools("mmd", *self._img(), self._dos(parts[:i]))
            elif kind is False:
                raise FileExistsError(_join(parts[:i]))

    def _offline_write(self, parts, data, mtime):
        if self._staged is not None:
            self._staged.setdefault(tuple(parts[:-1]), {})[parts[-1]] = (data, mtime)
            return
        self._offline_mkdir(parts[:-1])
        with tempfile.TemporaryDirectory(prefix="ferry-fat-") as tmp:
            src = Path(tmp) / "f"
            src.write_bytes(data)
            stamp = time.time() if mtime is None else mtime
            os.utime(src, (stamp, stamp))
            mtools("mcopy", "-o", "-m", *self._img(), str(src), self._dos(parts))

    def _offline_set_mtime(self, parts, secs):
        self._offline_write(parts, self.read_bytes(_join(parts)), secs)


class SdFatStore(FatStore):
    """FAT served through embedded-sdmmc (`--fs sdfat:IMAGE`): an
    MBR-partitioned image whose first partition starts at 1 MiB, as
    ferry-fs's `sdmmc::format` makes it; read and written with mtools."""

    kind = "sdfat"
    PART_START = 1 << 20

    def __init__(self, image: Path, size: int = IMAGE_SIZE):
        ImageStore.__init__(self, "sdfat", image, size)
        self._staged = None

    def _img(self):
        return ["-i", f"{self.image}@@{self.PART_START}"]

    # The engine's upload temporaries, `.<slot>.ferry-part`, are stored as
    # `~FP<slot>.TMP` (crates/ferry-fs/src/sdmmc/name.rs): look them up and
    # plant them in that form, as LittleFsStore does with its escaping.
    TEMP = re.compile(r"\.(\d{1,5})\.ferry-part")
    STORED_TEMP = re.compile(r"~FP(\d{1,5})\.TMP", re.IGNORECASE)

    @classmethod
    def _stored(cls, name: str) -> str:
        m = cls.TEMP.fullmatch(name)
        return f"~FP{m.group(1)}.TMP" if m else name

    @classmethod
    def _shown(cls, name: str) -> str:
        m = cls.STORED_TEMP.fullmatch(name)
        return f".{m.group(1)}.ferry-part" if m else name

    @classmethod
    def _dos(cls, parts) -> str:
        return "::/" + _join([cls._stored(p) for p in parts])

    def write_bytes(self, rel, data: bytes, mtime=None):
        if not self.served():
            rel = _join([self._stored(p) for p in _parts(rel)])
        super().write_bytes(rel, data, mtime)

    def _entries(self, parts) -> dict:
        return {self._shown(n): d for n, d in super()._entries(parts).items()}

    def extract(self, rel, out: Path):
        super().extract(rel, out)
        for top, dirs, files in os.walk(out, topdown=False):
            for n in dirs + files:
                if self._shown(n) != n:
                    os.rename(os.path.join(top, n), os.path.join(top, self._shown(n)))

    def _create(self):
        if self.image.exists():
            return
        sectors = (self.image_size - self.PART_START) // 512
        with open(self.image, "wb") as fh:
            fh.truncate(self.image_size)
            # One partition, FAT16 (LBA), from 1 MiB to the end.
            entry = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x0E, b"\xfe\xff\xff",
                                self.PART_START // 512, sectors)
            fh.seek(446)
            fh.write(entry)
            fh.seek(510)
            fh.write(b"\x55\xaa")
        # embedded-sdmmc reads FAT16 and FAT32, not FAT12: 512-byte clusters
        # make a small partition FAT16.
        small = ["-c", "1"] if sectors < 32768 else []
        mtools("mformat", *self._img(), "-T", str(sectors), "-h", "255", "-s", "63",
               "-H", str(self.PART_START // 512), *small, "::")


# -- littlefs, through littlefs-python


def lfs_encode(rel_parts) -> str:
    """A Ferry path as ferry-fs stores it under littlefs (`name.rs`)."""
    out = []
    for b in _join(rel_parts).encode("utf-8", errors="surrogateescape"):
        if b >= 0x80 or b == 0x25:
            out.append(f"%{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


def lfs_decode(stored: str) -> str:
    """A stored littlefs name as Ferry shows it."""
    raw = bytearray()
    i = 0
    while i < len(stored):
        c = stored[i]
        m = re.match(r"%([0-9A-F]{2})", stored[i:i + 3])
        if c == "%" and m and (int(m.group(1), 16) >= 0x80 or m.group(1) == "25"):
            raw.append(int(m.group(1), 16))
            i += 3
        else:
            raw += c.encode()
            i += 1
    return raw.decode("utf-8", errors="surrogateescape")


def _littlefs():
    try:
        import littlefs  # noqa: F401
    except ImportError as e:
        raise RuntimeError("the Python package littlefs-python is missing: run "
                           "`cargo xtask setup` (tests/integration/requirements.txt)") from e
    return littlefs


def _context(buffer: bytearray):
    """littlefs-python's block device over `buffer`, without its per-call
    debug formatting (which costs more than the copying)."""
    lfs = _littlefs()

    class Context(lfs.UserContext):
        def read(self, cfg, block, off, size):
            start = block * LFS_BLOCK_SIZE + off
            return self.buffer[start:start + size]

        def prog(self, cfg, block, off, data):
            start = block * LFS_BLOCK_SIZE + off
            self.buffer[start:start + len(data)] = data
            return 0

        def erase(self, cfg, block):
            start = block * LFS_BLOCK_SIZE
            self.buffer[start:start + LFS_BLOCK_SIZE] = ERASED_BLOCK
            return 0

    return Context(buffer=buffer)


ERASED_BLOCK = b"\xff" * LFS_BLOCK_SIZE


class LittleFsStore(ImageStore):
    kind = "littlefs"

    def __init__(self, image: Path, size: int = IMAGE_SIZE):
        super().__init__("littlefs", image, size)
        self._cache = None  # (stat key, LittleFS) of the last read
        self._open = None  # the volume of an offline batch

    def _mount(self, fresh=False):
        """littlefs-python mounted on a copy of the image's bytes (cached
        while the file is unchanged)."""
        lfs = _littlefs()
        st = os.stat(self.image)
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if not fresh and self._cache and self._cache[0] == key:
            return self._cache[1]
        # The kernel stamps mtime from a coarse clock: a write in the same
        # tick as the last one would not change it. So only a file left
        # alone for a while is cached.
        settled = time.time_ns() - st.st_mtime_ns > 200_000_000
        data = bytearray(st.st_size)
        with open(self.image, "rb") as fh:
            fh.readinto(data)
        fs = lfs.LittleFS(context=_context(data), block_size=LFS_BLOCK_SIZE,
                          block_count=len(data) // LFS_BLOCK_SIZE,
                          disk_version=LFS_DISK_VERSION, mount=False)
        fs.mount()
        # Kept either way: littlefs-python's files do not keep their volume
        # alive, and freeing it under an open file crashes the interpreter.
        self._cache = (key if settled else None, fs)
        return fs

    def _stat(self, parts):
        if not parts:
            return "dir"
        lfs = _littlefs()
        try:
            st = self._mount().stat(lfs_encode(parts))
        except lfs.errors.LittleFSError:
            return None
        return "dir" if st.type == 2 else "file"

    def exists(self, rel):
        return self._stat(_parts(rel)) is not None

    def is_dir(self, rel):
        return self._stat(_parts(rel)) == "dir"

    def listdir(self, rel=""):
        parts = _parts(rel)
        return sorted(lfs_decode(n) for n in self._mount().listdir(lfs_encode(parts) or "/"))

    def read_bytes(self, rel):
        parts = _parts(rel)
        if self._stat(parts) != "file":
            raise FileNotFoundError(rel)
        fs = self._mount()
        with fs.open(lfs_encode(parts), "rb") as fh:
            return fh.read()

    def stat_mtime(self, rel):
        lfs = _littlefs()
        try:
            raw = self._mount().getattr(lfs_encode(_parts(rel)), LFS_MTIME_ATTR)
        except lfs.errors.LittleFSError:
            return None
        return struct.unpack("<Q", bytes(raw))[0] if len(raw) == 8 else None

    def extract(self, rel, out: Path):
        fs = self._mount()
        out.mkdir(parents=True)
        base = _parts(rel)

        def walk(parts, dst: Path):
            for stored in fs.listdir(lfs_encode(parts) or "/"):
                name = lfs_decode(stored)
                child = parts + [name]
                if fs.stat(lfs_encode(child)).type == 2:
                    (dst / name).mkdir()
                    walk(child, dst / name)
                else:
                    with fs.open(lfs_encode(child), "rb") as fh:
                        (dst / name).write_bytes(fh.read())

        walk(base, out)

    # -- offline writes: mount, change, write the changed blocks back
    @contextlib.contextmanager
    def batch(self):
        if self.served() or self._open is not None:
            with super().batch():
                yield
            return
        with self._offline() as fs:
            self._open = fs
            try:
                yield
            finally:
                self._open = None

    @contextlib.contextmanager
    def _offline(self):
        if self._open is not None:
            yield self._open
            return
        lfs = _littlefs()
        if self.image.exists():
            fs = self._mount(fresh=True)
            before = bytes(fs.context.buffer)
        else:
            with open(self.image, "wb") as fh:
                fh.truncate(self.image_size)  # sparse, like ferry-fs's images
            erased = bytearray(b"\xff") * self.image_size
            fs = lfs.LittleFS(context=_context(erased), block_size=LFS_BLOCK_SIZE,
                              block_count=self.image_size // LFS_BLOCK_SIZE,
                              disk_version=LFS_DISK_VERSION, mount=False)
            # Blocks the format leaves alone stay holes in the file.
            before = bytes(erased)
            fs.format()
            fs.mount()
        yield fs
        fs.unmount()
        after = fs.context.buffer
        with open(self.image, "r+b") as fh:
            for off in range(0, len(after), LFS_BLOCK_SIZE):
                block = after[off:off + LFS_BLOCK_SIZE]
                if block != before[off:off + LFS_BLOCK_SIZE]:
                    fh.seek(off)
                    fh.write(block)
        self._cache = None

    @staticmethod
    def _stamp(fs, parts, secs):
        fs.setattr(lfs_encode(parts), LFS_MTIME_ATTR, struct.pack("<Q", int(secs)))

    def _mkdirs(self, fs, parts):
        for i in range(1, len(parts) + 1):
            try:
                fs.mkdir(lfs_encode(parts[:i]))
            except FileExistsError:
                continue
            # As ferry-fs does with a clock: a new directory gets the time.
            self._stamp(fs, parts[:i], time.time())

    def _offline_mkdir(self, parts):
        with self._offline() as fs:
            self._mkdirs(fs, parts)

    def _offline_write(self, parts, data, mtime):
        with self._offline() as fs:
            self._mkdirs(fs, parts[:-1])
            with fs.open(lfs_encode(parts), "wb") as fh:
                fh.write(data)
            self._stamp(fs, parts, time.time() if mtime is None else mtime)

    def _offline_set_mtime(self, parts, secs):
        with self._offline() as fs:
            self._stamp(fs, parts, secs)


def make_store(backend: str, tmp_path: Path) -> Store:
    if backend == "dir":
        return DirStore(tmp_path / "root")
    if backend == "fat":
        return FatStore(tmp_path / "fat.img")
    if backend == "sdfat":
        return SdFatStore(tmp_path / "sdfat.img")
    if backend == "littlefs":
        return LittleFsStore(tmp_path / "littlefs.img")
    raise ValueError(backend)


# --------------------------------------------------------------------------


def _toml_str(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def snapshot_dir(top: Path) -> dict:
    """{relative path: bytes, or None for a directory}, without the top."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        rel = Path(dirpath).relative_to(top)
        for d in dirnames:
            out[str(rel / d)] = None
        for f in filenames:
            out[str(rel / f)] = (Path(dirpath) / f).read_bytes()
    return out
