//! `path::resolve` with an arbitrary working directory and argument: the
//! result is always canonical, so no client path can leave the root.
//!
//! Input: the first byte says how many of the following bytes make the cwd
//! (resolved against `/` first, as a session's `CWD` would); the rest is the
//! argument.
#![no_main]

use ferry_core::protocol::path::{self, PathError};
use libfuzzer_sys::fuzz_target;

fn assert_canonical(p: &[u8]) {
    assert_eq!(p.first(), Some(&b'/'), "{p:?}");
    if p != b"/" {
        assert!(!p.ends_with(b"/"), "{p:?}");
    }
    assert!(!p.windows(2).any(|w| w == b"//"), "{p:?}");
    assert!(!p.windows(3).any(|w| w == b"/./"), "{p:?}");
    assert!(!p.windows(4).any(|w| w == b"/../"), "{p:?}");
    assert!(!p.ends_with(b"/.") && !p.ends_with(b"/.."), "{p:?}");
    assert!(
        !p.iter().any(|&b| matches!(b, b'\\' | 0 | b'\r' | b'\n')),
        "{p:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (cwd_arg, arg) = rest.split_at(usize::from(split).min(rest.len()));

    let mut cwd = [0u8; 96];
    let cwd = match path::resolve(b"/", cwd_arg, &mut cwd) {
        Ok(len) => &cwd[..len],
        Err(_) => b"/",
    };
    assert_canonical(cwd);

    let mut out = [0u8; 128];
    match path::resolve(cwd, arg, &mut out) {
        Ok(len) => {
            let resolved = &out[..len];
            assert_canonical(resolved);
            assert_canonical(path::parent(resolved));
            assert!(!path::file_name(resolved).contains(&b'/'));
            // Canonical paths are fixed points.
            let mut again = [0u8; 128];
            let n = path::resolve(b"/", resolved, &mut again).expect("canonical path resolves");
            assert_eq!(&again[..n], resolved);
            // Joined under a home, the path stays under it.
            let mut joined = [0u8; 160];
            let n = path::join_home(b"/home/ftp", resolved, &mut joined).expect("fits");
            assert_canonical(&joined[..n]);
            assert!(joined[..n].starts_with(b"/home/ftp"));
        }
        Err(PathError::InvalidCharacter) => {
            assert!(arg.iter().any(|&b| matches!(b, b'\\' | 0 | b'\r' | b'\n')));
        }
        Err(PathError::TooLong) => {}
    }
});
