//! The simulation itself: a seed passes, a seed replays exactly, and a
//! planted storage bug is caught.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferry_sim::{run_seed, Backend, Options};

#[test]
fn fixed_seeds_pass() {
    for seed in 0..20 {
        let out = run_seed(seed, &Options::default());
        assert!(
            out.failure.is_none(),
            "seed {seed}: {:?}\n{}",
            out.failure,
            out.trace.join("\n")
        );
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [7, 1234] {
        let a = run_seed(seed, &Options::default());
        let b = run_seed(seed, &Options::default());
        assert!(a.trace.len() > 20, "a trace worth comparing");
        assert_eq!(a.trace, b.trace, "seed {seed} ran differently twice");
    }
}

/// A storage that silently loses the last chunk written before a close:
/// the simulation must report a failure (an acknowledged upload that does
/// not read back), on some of a few seeds, for either backend.
#[test]
fn a_planted_storage_bug_is_caught() {
    for backend in [Backend::Memory, Backend::Littlefs] {
        let options = Options {
            plant_bug: true,
            backend: Some(backend),
            ..Options::default()
        };
        let caught = (0..30).find_map(|seed| run_seed(seed, &options).failure);
        let why = caught.unwrap_or_else(|| panic!("{backend:?}: the planted bug went unnoticed"));
        assert!(
            why.contains("holds") || why.contains("RETR"),
            "{backend:?}: caught for another reason: {why}"
        );
    }
}
