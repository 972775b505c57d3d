//! The whole-engine simulation (crates/ferry-sim) with its choices read
//! from the fuzzer's bytes instead of a seed: the scenario, every client's
//! action and every injected fault. Once the bytes run out the run goes on
//! as the seed they hash to. A broken invariant (a panic in the engine, a
//! reply the model does not allow, an upload that does not read back, a
//! leaked session or socket, a hang) is a crash.
#![no_main]

use ferry_sim::rng::Source;
use ferry_sim::{run, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = Options {
        max_steps: 20_000,
        ..Options::default()
    };
    let out = run(Source::bytes(data), &options);
    if let Some(why) = out.failure {
        let tail = out.trace.len().saturating_sub(200);
        for line in out.trace.iter().skip(tail) {
            eprintln!("{line}");
        }
        panic!("simulation failure: {why}");
    }
});
