//! Helpers shared by the power-cut tests (`power_loss.rs`,
//! `littlefs_files.rs`), which read what a cut left behind.
use ferry_fs::embedded_io::Read;
use ferry_fs::FileSystem;

/// The whole file, or `None` if it cannot be opened, read or closed.
pub fn try_read<F: FileSystem>(fs: &mut F, path: &[u8]) -> Option<Vec<u8>> {
    let mut f = fs.open_read(path).ok()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
    fs.close(f).ok()?;
    Some(out)
}
