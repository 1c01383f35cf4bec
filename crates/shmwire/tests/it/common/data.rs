//! Test data: a seeded PRNG whose seed can be replayed, and payload bytes.
//!
//! Shared by the library's and the CLI's integration tests (the CLI's `common/mod.rs`
//! includes this file with `#[path]`), so it uses std only.
#![allow(dead_code)] // each test crate uses a different subset

/// A deterministic byte pattern, different for each `seed`, so misplaced reads show up.
pub(crate) fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(u64::from(seed) * 7 + 1) as u8
        })
        .collect()
}

/// Fills `buf` with bytes derived from `key` (xorshift words: cheap even unoptimized).
pub(crate) fn fill(buf: &mut [u8], key: u64) {
    let mut x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

// ------------------------------------------------------------------------------ randomness

/// The environment variable that replays a run's random choices.
pub(crate) const SEED_VAR: &str = "SHMWIRE_TEST_SEED";

/// The seed of a randomized test: [`SEED_VAR`] if set, else one from the clock and pid.
pub(crate) fn run_seed() -> u64 {
    std::env::var(SEED_VAR)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{SEED_VAR}={s:?} is not a number"))
        })
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()) << 32
        })
}

/// A small deterministic PRNG (xorshift64*) for sizes, delays, victims and kill moments.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The stream of `seed` (mixed first, so that nearby seeds give unrelated streams).
    pub(crate) fn new(seed: u64) -> Rng {
        // The splitmix64 finalizer.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A generator seeded by [`run_seed`], and the seed. Prints the seed (libtest shows it
    /// with the output of a failed test) and how to replay it.
    pub(crate) fn seeded() -> (Rng, u64) {
        let seed = run_seed();
        eprintln!("test seed {seed} (replay with {SEED_VAR}={seed})");
        (Rng::new(seed), seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (0 if `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `of`, uniformly.
    pub(crate) fn pick<T: Copy>(&mut self, of: &[T]) -> T {
        of[self.below(of.len() as u64) as usize]
    }
}
