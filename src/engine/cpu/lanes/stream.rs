//! `crate::rng::StepStream` for `L` walkers at once: lane l draws exactly the numbers walker
//! l's own stream would. Every lane draws the same sequence of words (an all-coordinate move
//! and its test), so the block counter and the pool's fill are shared and only the words
//! differ.

use super::simd::{L, U, V, philox, sin_cos};
use crate::rng::TWO_POW_M24;

pub struct LaneStream {
    key: [u32; 2],
    counter: [U; 4],
    buffer: [U; 4],
    next: usize,
    /// Low bytes of each lane's words, the latest in the lowest byte.
    pool: U,
    pooled: u32,
}

impl LaneStream {
    #[inline(always)]
    pub fn new(seed: u64, walkers: U, step: u64) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            counter: [
                walkers,
                U([step as u32; L]),
                U([(step >> 32) as u32; L]),
                U([0; L]),
            ],
            buffer: [U([0; L]); 4],
            next: 4,
            pool: U([0; L]),
            pooled: 0,
        }
    }

    /// The high 24 bits of each lane's next word.
    #[inline(always)]
    fn bits24(&mut self) -> U {
        if self.next == 4 {
            self.buffer = philox(self.counter, self.key);
            for c in &mut self.counter[3].0 {
                *c = c.wrapping_add(1);
            }
            self.next = 0;
        }
        let word = self.buffer[self.next];
        self.next += 1;
        let mut high = word;
        for l in 0..L {
            self.pool.0[l] = (self.pool.0[l] << 8) | (word.0[l] & 0xff);
            high.0[l] = word.0[l] >> 8;
        }
        self.pooled = (self.pooled + 1).min(3);
        high
    }

    /// 24-bit integers to f64 through i32, which converts in one SIMD instruction.
    #[inline(always)]
    fn scaled(bits: U, offset: u32) -> V {
        V(bits.0.map(|b| (b + offset) as i32 as f64 * TWO_POW_M24))
    }

    #[inline(always)]
    pub fn uniform(&mut self) -> V {
        Self::scaled(self.bits24(), 0)
    }

    #[inline(always)]
    fn uniform_open(&mut self) -> V {
        Self::scaled(self.bits24(), 1)
    }

    #[inline(always)]
    pub fn acceptance_uniform(&mut self) -> V {
        if self.pooled == 3 {
            self.pooled = 0;
            return Self::scaled(U(self.pool.0.map(|p| p & 0x00ff_ffff)), 0);
        }
        self.uniform()
    }

    /// A Box-Muller pair, in the order `StepStream::normal` returns them.
    #[inline(always)]
    pub fn normal_pair(&mut self) -> (V, V) {
        let radius = (-2.0 * super::simd::ln(self.uniform_open())).sqrt();
        let angle = std::f64::consts::TAU * self.uniform() - std::f64::consts::PI;
        let (sin, cos) = sin_cos(angle);
        (radius * cos, radius * sin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StepStream;

    #[test]
    fn lanes_draw_what_each_walkers_stream_draws() {
        let walkers = U(std::array::from_fn(|l| 1000 + 3 * l as u32));
        let step = (7u64 << 32) + 11;
        let mut lanes = LaneStream::new(0x1234_5678_9abc, walkers, step);
        let mut scalars: Vec<StepStream> = (0..L)
            .map(|l| StepStream::new(0x1234_5678_9abc, walkers.0[l], step))
            .collect();
        // A five-coordinate importance move and its test, then a Metropolis-like sequence.
        let mut normals = Vec::new();
        for _ in 0..3 {
            let (a, b) = lanes.normal_pair();
            normals.extend([a, b]);
        }
        for (i, z) in normals.iter().take(5).enumerate() {
            for (l, s) in scalars.iter_mut().enumerate() {
                let want = s.normal();
                assert!(
                    (z.0[l] - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0),
                    "{i}"
                );
            }
        }
        // The scalar streams drew the sixth normal with the fifth; the lanes drew it too.
        let u = lanes.acceptance_uniform();
        let v = lanes.uniform();
        let w = lanes.acceptance_uniform();
        for (l, s) in scalars.iter_mut().enumerate() {
            assert_eq!(u.0[l], s.acceptance_uniform());
            assert_eq!(v.0[l], s.uniform());
            assert_eq!(w.0[l], s.acceptance_uniform());
        }
    }
}
