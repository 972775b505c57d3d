//! What the firmware asks of the machine running QEMU, over ARM
//! semihosting: log lines on QEMU's standard output, the boot arguments
//! (`-semihosting-config ...,arg=...`), the wall clock, and an exit code.
//!
//! Each log line is formatted into a fixed buffer first and written with
//! one semihosting call (a call stops the emulated core while QEMU
//! serves it).
use core::fmt::{self, Write};

use cortex_m_semihosting::{debug, hprint, nr, syscall};

/// The longest log line; longer lines are cut.
const LINE: usize = 200;

/// A line being formatted.
struct LineBuf {
    buf: [u8; LINE],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = LINE.saturating_sub(1).saturating_sub(self.len);
        // Cut on a character boundary so the line stays UTF-8.
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
        }
        self.len += take;
        Ok(())
    }
}

/// Writes one line (a newline is added) to QEMU's standard output.
pub fn log(args: fmt::Arguments<'_>) {
    let mut line = LineBuf {
        buf: [0; LINE],
        len: 0,
    };
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    if let Some(last) = line.buf.get_mut(LINE - 1) {
        if line.len == LINE - 1 {
            *last = b'\n';
            line.len = LINE;
        }
    }
    if let Ok(text) = core::str::from_utf8(line.buf.get(..line.len).unwrap_or(&[])) {
        hprint!("{}", text);
    }
}

/// `log!("...", args)`: one line on QEMU's standard output.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::semihosting::log(format_args!($($arg)*))
    };
}

/// The boot arguments (`SYS_GET_CMDLINE`): the `arg=` values of QEMU's
/// `-semihosting-config`, separated by spaces, in `buf`. Empty if the host
/// gives none.
pub fn command_line(buf: &mut [u8]) -> &str {
    buf.fill(0);
    let block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE takes a two-word block (buffer address, its
    // length) and writes at most that many bytes, NUL included, into the
    // buffer, which `buf` lends us mutably for the call.
    let failed = unsafe { syscall(nr::GET_CMDLINE, &block) } != 0;
    if failed {
        return "";
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    core::str::from_utf8(buf.get(..end).unwrap_or(&[])).unwrap_or("")
}

/// Seconds since 1970 on the host (`SYS_TIME`).
pub fn unix_time() -> Option<u32> {
    // SAFETY: SYS_TIME takes no argument block (r1 must be 0).
    let secs = unsafe { syscall!(TIME) };
    u32::try_from(secs).ok().filter(|&s| s > 0)
}

/// Stops QEMU with exit code 1 (after a panic or a fault).
pub fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    // Without semihosting, `exit` returns: stop here.
    loop {
        cortex_m::asm::wfi();
    }
}
