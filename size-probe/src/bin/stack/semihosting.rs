//! The two ARM semihosting calls the stack probe needs: print a line on
//! QEMU's standard output and stop QEMU with an exit status.
//!
//! A semihosting call is a `bkpt 0xab` with the operation in r0 and its
//! argument in r1; QEMU (`-semihosting-config enable=on,target=native`)
//! serves it while the emulated core waits.
use core::arch::asm;

/// `SYS_WRITE0`: writes a NUL-terminated string to the debug console.
const SYS_WRITE0: u32 = 0x04;
/// `SYS_EXIT`: stops the program; r1 holds the reason.
const SYS_EXIT: u32 = 0x18;
/// `ADP_Stopped_ApplicationExit`: QEMU exits with status 0.
const APPLICATION_EXIT: usize = 0x2_0026;
/// `ADP_Stopped_RunTimeErrorUnknown`: QEMU exits with status 1.
const RUN_TIME_ERROR: usize = 0x2_0023;

/// One semihosting call.
fn call(op: u32, arg: usize) {
    // SAFETY: `bkpt 0xab` traps to QEMU's semihosting handler, which reads
    // r0 (the operation) and r1 (its argument, here an integer or the
    // address of a NUL-terminated string that outlives the call) and writes
    // its result into r0, which is declared clobbered.
    unsafe {
        asm!("bkpt 0xab", inout("r0") op => _, in("r1") arg, options(nostack, preserves_flags));
    }
}

/// Writes `parts` one after the other, then a newline, to QEMU's output.
pub fn print(parts: &[&[u8]]) {
    // Small pieces, each copied into a NUL-terminated chunk: the text
    // itself needs no terminator.
    let mut chunk = [0u8; 33];
    for part in parts.iter().copied().chain([&b"\n"[..]]) {
        for piece in part.chunks(chunk.len() - 1) {
            let (text, rest) = chunk.split_at_mut(piece.len());
            text.copy_from_slice(piece);
            if let Some(nul) = rest.first_mut() {
                *nul = 0;
            }
            call(SYS_WRITE0, chunk.as_ptr() as usize);
        }
    }
}

/// `n` in decimal, in `buf`.
pub fn decimal(n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || at == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Stops QEMU: exit status 0 when `ok`, 1 otherwise.
pub fn exit(ok: bool) -> ! {
    call(SYS_EXIT, if ok { APPLICATION_EXIT } else { RUN_TIME_ERROR });
    // Without semihosting the call returns: stop here.
    loop {
        core::hint::spin_loop();
    }
}
