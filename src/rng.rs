//! Counter-based random numbers: Philox4x32-10 and the per-walker, per-step stream built on it.
//!
//! Every random number of a run is a pure function of (seed, walker, step, draw index), so
//! runs are reproducible for any thread count or dispatch split, walkers are independent,
//! and the CPU and GPU engines draw the *same* numbers. `shaders/rng.wgsl` is the WGSL twin
//! of this file; keep the two in step (the stream layout is tested on both engines).

/// Philox4x32-10 (Salmon et al., SC'11; Random123): 4 x u32 counter, 2 x u32 key.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = philox_bump_key(k);
        }
        c = philox_round(c, k);
    }
    c
}

/// Philox4x32's round multipliers.
pub(crate) const PHILOX_M: [u64; 2] = [0xD251_1F53, 0xCD9E_8D57];

/// One Philox4x32 round.
#[inline(always)]
fn philox_round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
    let p0 = PHILOX_M[0] * c[0] as u64;
    let p1 = PHILOX_M[1] * c[2] as u64;
    [
        (p1 >> 32) as u32 ^ c[1] ^ k[0],
        p1 as u32,
        (p0 >> 32) as u32 ^ c[3] ^ k[1],
        p0 as u32,
    ]
}

/// The key schedule between Philox rounds.
#[inline(always)]
pub(crate) fn philox_bump_key(k: [u32; 2]) -> [u32; 2] {
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    [k[0].wrapping_add(W0), k[1].wrapping_add(W1)]
}

/// Block tags in the high bits of the draw-block counter, so that streams for different
/// purposes never overlap: sampling uses blocks 0.., resets of non-finite walkers use these.
pub const RESET_BLOCK: u32 = 1 << 31;

/// Diffusion Monte Carlo: a walker slot's moves in a generation (step = the generation), and
/// the comb's one draw per generation (walker 0).
pub const DMC_BLOCK: u32 = 1 << 30;
pub const DMC_COMB_BLOCK: u32 = 3 << 29;

/// Pseudo walker index of the stream that draws the initial RBM parameters.
pub const PARAMS_WALKER: u32 = u32::MAX;

/// Step index of the stream that draws initial walker positions (sampling steps start at 1).
pub const INIT_STEP: u64 = 0;

/// Uniforms have 24 random bits, exactly representable in f32: the GPU (f32) and the CPU
/// (f64) engines see identical values.
pub(crate) const TWO_POW_M24: f64 = 1.0 / 16_777_216.0;

/// The random numbers one walker draws in one Monte Carlo step.
///
/// Counter = (walker, step low, step high, block); each block yields 4 u32 words. A uniform
/// or half a Box-Muller pair takes the high 24 bits of the next word (normals come in pairs,
/// the second kept for the next call). The low bytes of the words are pooled: the acceptance
/// uniform of a Metropolis test is the last three low bytes when three have been pooled since
/// the previous one, and a fresh word only otherwise. A move of up to four coordinates and its
/// test thus cost one Philox block, which in a GPU warp means no lane computes a second one.
#[derive(Clone, Debug)]
pub struct StepStream {
    key: [u32; 2],
    counter: [u32; 4],
    buffer: [u32; 4],
    next: usize,
    spare: Option<f64>,
    /// Low bytes of the words drawn, the latest in the lowest byte.
    pool: u32,
    /// Low bytes pooled since the last acceptance uniform took them (at most 3 counted).
    pooled: u32,
}

impl StepStream {
    pub fn new(seed: u64, walker: u32, step: u64) -> Self {
        Self::at_block(seed, walker, step, 0)
    }

    pub fn at_block(seed: u64, walker: u32, step: u64, block: u32) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            counter: [walker, step as u32, (step >> 32) as u32, block],
            buffer: [0; 4],
            next: 4,
            spare: None,
            pool: 0,
            pooled: 0,
        }
    }

    #[inline]
    fn bits24(&mut self) -> u32 {
        if self.next == 4 {
            self.buffer = philox4x32_10(self.counter, self.key);
            self.counter[3] = self.counter[3].wrapping_add(1);
            self.next = 0;
        }
        let word = self.buffer[self.next];
        self.next += 1;
        self.pool = (self.pool << 8) | (word & 0xff);
        self.pooled = (self.pooled + 1).min(3);
        word >> 8
    }

    /// Uniform on [0, 1) for an accept/reject test: from the pooled low bytes when there
    /// are three, else a fresh word.
    #[inline]
    pub fn acceptance_uniform(&mut self) -> f64 {
        if self.pooled == 3 {
            self.pooled = 0;
            return (self.pool & 0x00ff_ffff) as f64 * TWO_POW_M24;
        }
        self.uniform()
    }

    /// Uniform on [0, 1) with 24-bit resolution.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        self.bits24() as f64 * TWO_POW_M24
    }

    /// Uniform on (0, 1]: safe for a logarithm.
    pub fn uniform_open(&mut self) -> f64 {
        (self.bits24() + 1) as f64 * TWO_POW_M24
    }

    /// Standard normal by Box-Muller (angle in [-pi, pi) where GPU sin/cos are accurate).
    /// The tails are cut at |z| = sqrt(48 ln 2) = 5.77, a probability of 8e-9.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let radius = (-2.0 * self.uniform_open().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.uniform() - std::f64::consts::PI;
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniforms_and_normals_have_the_right_moments() {
        let n = 200_000;
        let (mut su, mut su2, mut sz, mut sz2, mut sz4) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..n {
            let mut s = StepStream::new(7, i as u32, 3);
            let u = s.uniform();
            assert!((0.0..1.0).contains(&u));
            let v = s.uniform_open();
            assert!(v > 0.0 && v <= 1.0);
            su += u;
            su2 += u * u;
            let z = s.normal();
            sz += z;
            sz2 += z * z;
            sz4 += z * z * z * z;
        }
        let n = n as f64;
        // 5-sigma bounds from the known variances of the estimators.
        assert!((su / n - 0.5).abs() < 5.0 * (1.0f64 / 12.0 / n).sqrt());
        assert!((su2 / n - 1.0 / 3.0).abs() < 5.0 * (4.0f64 / 45.0 / n).sqrt());
        assert!((sz / n).abs() < 5.0 / n.sqrt());
        assert!((sz2 / n - 1.0).abs() < 5.0 * (2.0 / n).sqrt());
        assert!((sz4 / n - 3.0).abs() < 5.0 * (96.0 / n).sqrt());
    }

    #[test]
    fn a_four_coordinate_move_and_its_test_take_one_block() {
        let mut s = StepStream::new(3, 5, 9);
        let words = philox4x32_10([5, 9, 0, 0], [3, 0]);
        for w in words {
            assert_eq!(s.uniform(), (w >> 8) as f64 * TWO_POW_M24);
        }
        let low = ((words[1] & 0xff) << 16) | ((words[2] & 0xff) << 8) | (words[3] & 0xff);
        assert_eq!(s.acceptance_uniform(), low as f64 * TWO_POW_M24);
        // The pool is spent: the next test opens block 1.
        let next = philox4x32_10([5, 9, 0, 1], [3, 0]);
        assert_eq!(s.acceptance_uniform(), (next[0] >> 8) as f64 * TWO_POW_M24);
    }

    #[test]
    fn pooled_acceptance_uniforms_are_uniform() {
        // Two-coordinate moves (D = 2 single-particle moves) alternate a pooled and a fresh
        // acceptance uniform; both must be uniform and independent of the proposal's draws.
        let n = 100_000;
        let (mut su, mut su2, mut suv) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let mut s = StepStream::new(11, i as u32, 1);
            for _ in 0..2 {
                let v = s.uniform() + s.uniform();
                let u = s.acceptance_uniform();
                assert!((0.0..1.0).contains(&u));
                su += u;
                su2 += u * u;
                suv += (u - 0.5) * (v - 1.0);
            }
        }
        let n = 2.0 * n as f64;
        assert!((su / n - 0.5).abs() < 5.0 * (1.0f64 / 12.0 / n).sqrt());
        assert!((su2 / n - 1.0 / 3.0).abs() < 5.0 * (4.0f64 / 45.0 / n).sqrt());
        // Var(u) Var(v) = 1/12 * 1/6.
        assert!((suv / n).abs() < 5.0 * (1.0f64 / 72.0 / n).sqrt());
    }

    #[test]
    fn streams_differ_by_walker_step_and_seed() {
        let draw = |seed, walker, step| StepStream::new(seed, walker, step).uniform();
        let base = draw(1, 2, 3);
        assert_ne!(base, draw(2, 2, 3));
        assert_ne!(base, draw(1, 3, 3));
        assert_ne!(base, draw(1, 2, 4));
        assert_eq!(base, draw(1, 2, 3));
    }
}
