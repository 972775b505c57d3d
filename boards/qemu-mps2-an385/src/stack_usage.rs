//! How deep the call stack has been: the part of RAM below the stack is
//! painted with a pattern at boot, and the first word that no longer holds
//! it marks the deepest the stack has grown. The figure goes to the log
//! (at each disconnect) and to docs/BENCHMARKS.md.
use core::ptr::{addr_of, read_volatile, write_volatile};

/// What an untouched stack word holds.
const PAINT: u32 = 0xC0FF_EE55;
/// How much of the stack is painted (and so the most that is measured).
pub const WINDOW: usize = 64 * 1024;

extern "C" {
    /// The top of the stack (cortex-m-rt's link.x).
    static _stack_start: u32;
    /// The lowest address the stack may reach (the end of .bss and
    /// .uninit; cortex-m-rt's link.x).
    static _stack_end: u32;
}

/// The painted window: `(lowest address, top of stack)`.
fn window() -> (usize, usize) {
    // Only the addresses of the linker's symbols are taken, never their
    // contents: no `unsafe` needed.
    let (top, end) = (
        addr_of!(_stack_start) as usize,
        addr_of!(_stack_end) as usize,
    );
    (top.saturating_sub(WINDOW).max(end), top)
}

/// Paints the window below the current stack pointer. Call once, early.
pub fn paint() {
    let (low, _) = window();
    // Leave the words near the stack pointer alone: this function's frame.
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = low;
    while at + 64 < sp {
        // SAFETY: `at` lies between the end of .bss/.uninit and below the
        // current stack pointer minus this frame: RAM that nothing uses yet.
        unsafe { write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The deepest the stack has been, in bytes (at most [`WINDOW`]).
pub fn high_water() -> usize {
    let (low, top) = window();
    let mut at = low;
    while at < top {
        // SAFETY: `at` is a word of RAM inside the stack's region.
        if unsafe { read_volatile(at as *const u32) } != PAINT {
            break;
        }
        at += 4;
    }
    top - at
}
