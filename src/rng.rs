//! Counter-based random numbers: Philox4x32-10 and the per-walker, per-step stream built on it.
//!
//! Every random number of a run is a pure function of (seed, walker, step, draw index), so
//! runs are reproducible for any thread count or dispatch split, walkers are independent,
//! and the CPU and GPU engines draw the *same* numbers. `shaders/rng.wgsl` is the WGSL twin
//! of this file; keep the two in step (the stream layout is tested on both engines).

/// Philox4x32-10 (Salmon et al., SC'11; Random123): 4 x u32 counter, 2 x u32 key.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// Block tags in the high bits of the draw-block counter, so that streams for different
/// purposes never overlap: sampling uses blocks 0.., resets of non-finite walkers use these.
pub const RESET_BLOCK: u32 = 1 << 31;

/// Pseudo walker index of the stream that draws the initial RBM parameters.
pub const PARAMS_WALKER: u32 = u32::MAX;

/// Step index of the stream that draws initial walker positions (sampling steps start at 1).
pub const INIT_STEP: u64 = 0;

/// Uniforms have 24 random bits, exactly representable in f32: the GPU (f32) and the CPU
/// (f64) engines see identical values.
const TWO_POW_M24: f64 = 1.0 / 16_777_216.0;

/// The random numbers one walker draws in one Monte Carlo step.
///
/// Counter = (walker, step low, step high, block); each block yields 4 u32. Normals come
/// from Box-Muller with the second value kept for the next call.
#[derive(Clone, Debug)]
pub struct StepStream {
    key: [u32; 2],
    counter: [u32; 4],
    buffer: [u32; 4],
    next: usize,
    spare: Option<f64>,
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
        }
    }

    #[inline]
    fn bits24(&mut self) -> u32 {
        if self.next == 4 {
            self.buffer = philox4x32_10(self.counter, self.key);
            self.counter[3] = self.counter[3].wrapping_add(1);
            self.next = 0;
        }
        let bits = self.buffer[self.next] >> 8;
        self.next += 1;
        bits
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
    fn streams_differ_by_walker_step_and_seed() {
        let draw = |seed, walker, step| StepStream::new(seed, walker, step).uniform();
        let base = draw(1, 2, 3);
        assert_ne!(base, draw(2, 2, 3));
        assert_ne!(base, draw(1, 3, 3));
        assert_ne!(base, draw(1, 2, 4));
        assert_eq!(base, draw(1, 2, 3));
    }
}
