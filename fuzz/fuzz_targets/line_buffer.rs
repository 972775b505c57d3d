//! `LineBuffer` fed arbitrary bytes in arbitrary chunks, every line parsed as
//! a command, the way a session drives them.
//!
//! Input: the first byte seeds the chunk sizes, the rest is the stream.
#![no_main]

use ferry_core::protocol::command::Command;
use ferry_core::protocol::line::{LineBuffer, LineEvent};
use libfuzzer_sys::fuzz_target;

/// Small, so over-long lines are common.
const LINE_LEN: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, mut stream)) = data.split_first() else {
        return;
    };
    let mut buf = LineBuffer::<LINE_LEN>::new();
    let mut chunk_seed = seed;
    loop {
        while let Some(event) = buf.poll_line() {
            match event {
                LineEvent::Line => {
                    let line = buf.line();
                    assert!(line.len() < LINE_LEN);
                    assert!(!line.contains(&b'\n'));
                    let _ = Command::parse(line);
                    buf.consume_line();
                    assert!(buf.line().is_empty());
                }
                LineEvent::TooLong => assert!(buf.line().is_empty()),
            }
        }
        if stream.is_empty() {
            break;
        }
        let spare = buf.spare();
        // Chunk sizes from 1 to 16 bytes, varying with the seed.
        chunk_seed = chunk_seed.rotate_left(3) ^ 0x5a;
        let n = spare
            .len()
            .min(stream.len())
            .min(usize::from(chunk_seed % 16) + 1);
        assert!(n > 0, "the buffer must make room after poll_line");
        let (chunk, rest) = stream.split_at(n);
        spare[..n].copy_from_slice(chunk);
        buf.filled(n);
        stream = rest;
    }
    buf.clear();
    assert_eq!(buf.poll_line(), None);
});
