//! `Command::parse` on arbitrary bytes: it must never panic, and it only
//! accepts lines free of NUL, CR and LF.
#![no_main]

use ferry_core::protocol::command::Command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = Command::parse(data) {
        assert!(
            !data.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')),
            "accepted a control byte: {command:?}"
        );
    }
});
