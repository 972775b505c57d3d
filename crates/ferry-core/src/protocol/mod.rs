//! The sans-IO protocol layer: command lines in, reply bytes out, paths and
//! listing lines formatted into caller buffers. Nothing here does I/O, and
//! nothing uses `core::fmt`.
pub mod addr;
pub mod command;
pub mod line;
pub mod listing;
pub mod num;
pub mod path;
pub mod reply;
#[cfg(feature = "mtime")]
pub mod time;

/// Moves `buf[from..end]` to the front of `buf`. In pieces no longer than
/// `from`, so a piece never overlaps its destination: plain copies, and no
/// `memmove` (658 bytes on a Cortex-M3) linked for the two buffers that
/// need this.
pub(crate) fn move_to_front(buf: &mut [u8], from: usize, end: usize) {
    let mut at = 0;
    while from > 0 && at + from < end {
        let stop = (at + 2 * from).min(end);
        let (front, back) = buf.split_at_mut(at + from);
        if let (Some(dst), Some(src)) =
            (front.get_mut(at..stop - from), back.get(..stop - from - at))
        {
            dst.copy_from_slice(src);
        }
        at += from;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn move_to_front_keeps_the_bytes_in_order() {
        for len in 0..20usize {
            for from in 0..=len {
                let mut buf = [0u8; 20];
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = i as u8;
                }
                super::move_to_front(&mut buf, from, len);
                for (i, b) in buf[..len - from].iter().enumerate() {
                    assert_eq!(usize::from(*b), from + i, "from {from} len {len}");
                }
            }
        }
    }
}
