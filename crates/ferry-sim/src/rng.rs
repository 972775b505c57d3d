//! The simulation's one source of choices: a seeded generator, or the
//! bytes a fuzzer gives.
//!
//! Every random decision of a run (what a client does, which fault is
//! injected, how far the clock moves) is drawn from one [`Source`], in a
//! fixed order, so a seed replays exactly.

/// Where choices come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// SplitMix64 from a seed: small, fast, and good enough to spread choices.
    Seeded(u64),
    /// A fuzzer's bytes, eight per draw; once they run out, the seed they
    /// hash to.
    Bytes {
        /// The input.
        data: Vec<u8>,
        /// Bytes used so far.
        pos: usize,
    },
}

impl Source {
    /// A generator from `seed`.
    pub fn seeded(seed: u64) -> Source {
        Source::Seeded(seed)
    }

    /// Choices read from `data` (for the fuzz target).
    pub fn bytes(data: &[u8]) -> Source {
        Source::Bytes {
            data: data.to_vec(),
            pos: 0,
        }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        match self {
            Source::Seeded(state) => {
                *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            }
            Source::Bytes { data, pos } => {
                if *pos >= data.len() {
                    // Used up: go on as the seed the bytes hash to, so the
                    // rest of the run is as varied as any seed's.
                    let hash = data.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
                        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
                    });
                    *self = Source::Seeded(hash);
                    return self.next_u64();
                }
                let mut v = [0u8; 8];
                for b in v.iter_mut() {
                    *b = data.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                }
                u64::from_le_bytes(v)
            }
        }
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        match n {
            0 => 0,
            n => self.next_u64() % n,
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// A `usize` in `lo..=hi`.
    pub fn range_usize(&mut self, lo: usize, hi: usize) -> usize {
        usize::try_from(self.range(lo as u64, hi as u64)).unwrap_or(lo)
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        per_mille > 0 && self.below(1000) < per_mille
    }

    /// An index drawn by weight: `weights[i] / sum`.
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        0
    }

    /// `n` bytes.
    pub fn fill(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let v = self.next_u64().to_le_bytes();
            out.extend(v.iter().take(n - out.len()));
        }
        out
    }
}

/// A [`Source`] shared by the parts of a run (network, storage, clients).
pub type Shared = std::rc::Rc<std::cell::RefCell<Source>>;
