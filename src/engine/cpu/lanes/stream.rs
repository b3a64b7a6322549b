//! `crate::rng::StepStream` for `L` walkers at once: lane l draws exactly the numbers walker
//! l's own stream would. The lanes draw the same sequence of normals and uniforms, but an
//! acceptance uniform is drawn only by the lanes whose test needs one (single-particle moves
//! make several tests a step), so each lane keeps its own place in its block and pool.

use super::simd::{L, Mask, U, V, philox, sin_cos};
use crate::rng::TWO_POW_M24;

pub struct LaneStream {
    key: [u32; 2],
    counter: [U; 4],
    buffer: [U; 4],
    /// Per lane, the next word of `buffer` (4: the block is used up).
    next: U,
    /// Low bytes of each lane's words, the latest in the lowest byte.
    pool: U,
    /// Per lane, the low bytes pooled since the last acceptance uniform (at most 3 counted).
    pooled: U,
    /// The second normal of the last Box-Muller pair (`StepStream::normal`'s spare).
    spare: Option<V>,
}

/// All ones where `on`, lane by lane, for u32 lanes.
#[inline(always)]
fn ones(on: bool) -> u32 {
    0u32.wrapping_sub(on as u32)
}

impl LaneStream {
    #[inline(always)]
    pub fn new(seed: u64, walkers: U, step: u64) -> Self {
        Self::at_block(seed, walkers, step, 0)
    }

    /// `StepStream::at_block` for each lane's walker.
    #[inline(always)]
    pub fn at_block(seed: u64, walkers: U, step: u64, block: u32) -> Self {
        Self {
            key: [seed as u32, (seed >> 32) as u32],
            counter: [
                walkers,
                U([step as u32; L]),
                U([(step >> 32) as u32; L]),
                U([block; L]),
            ],
            buffer: [U([0; L]); 4],
            next: U([4; L]),
            pool: U([0; L]),
            pooled: U([0; L]),
            spare: None,
        }
    }

    /// The high 24 bits of the next word of each lane in `draw` (the others stay put and
    /// get garbage).
    #[inline(always)]
    fn bits24(&mut self, draw: Mask) -> U {
        let mut due = 0;
        for l in 0..L {
            due |= draw.0[l] as u32 & ones(self.next.0[l] == 4);
        }
        if due != 0 {
            let fresh = philox(self.counter, self.key);
            for l in 0..L {
                let refill = draw.0[l] as u32 & ones(self.next.0[l] == 4);
                for (b, f) in self.buffer.iter_mut().zip(&fresh) {
                    b.0[l] = (f.0[l] & refill) | (b.0[l] & !refill);
                }
                self.counter[3].0[l] = self.counter[3].0[l].wrapping_add(refill & 1);
                self.next.0[l] &= !refill;
            }
        }
        let mut high = U([0; L]);
        for l in 0..L {
            let on = draw.0[l] as u32;
            let next = self.next.0[l];
            let mut word = self.buffer[0].0[l];
            for (j, b) in self.buffer.iter().enumerate().skip(1) {
                let here = ones(next == j as u32);
                word = (b.0[l] & here) | (word & !here);
            }
            self.next.0[l] = next + (on & 1);
            let pooled = (self.pool.0[l] << 8) | (word & 0xff);
            self.pool.0[l] = (pooled & on) | (self.pool.0[l] & !on);
            let count = (self.pooled.0[l] + 1).min(3);
            self.pooled.0[l] = (count & on) | (self.pooled.0[l] & !on);
            high.0[l] = word >> 8;
        }
        high
    }

    /// 24-bit integers to f64 through i32, which converts in one SIMD instruction.
    #[inline(always)]
    fn scaled(bits: U, offset: u32) -> V {
        V(bits.0.map(|b| (b + offset) as i32 as f64 * TWO_POW_M24))
    }

    #[inline(always)]
    pub fn uniform(&mut self) -> V {
        Self::scaled(self.bits24(Mask::ALL), 0)
    }

    #[inline(always)]
    fn uniform_open(&mut self) -> V {
        Self::scaled(self.bits24(Mask::ALL), 1)
    }

    /// `StepStream::acceptance_uniform` for the lanes in `draw`; the others draw nothing.
    #[inline(always)]
    pub fn acceptance_uniform(&mut self, draw: Mask) -> V {
        // Lanes with three low bytes pooled take them; the other drawing lanes a fresh word.
        let take = Mask::from_fn(|l| self.pooled.0[l] == 3).and(draw);
        let fresh = self.bits24(draw.and(take.not()));
        let mut bits = fresh;
        for l in 0..L {
            let t = take.0[l] as u32;
            bits.0[l] = (self.pool.0[l] & 0x00ff_ffff & t) | (fresh.0[l] & !t);
            self.pooled.0[l] &= !t;
        }
        Self::scaled(bits, 0)
    }

    /// A Box-Muller pair, in the order `StepStream::normal` returns them.
    #[inline(always)]
    pub fn normal_pair(&mut self) -> (V, V) {
        let radius = (-2.0 * super::simd::ln(self.uniform_open())).sqrt();
        let angle = std::f64::consts::TAU * self.uniform() - std::f64::consts::PI;
        let (sin, cos) = sin_cos(angle);
        (radius * cos, radius * sin)
    }

    /// One normal (`StepStream::normal`): the first of a new pair, or the spare of the last.
    #[inline(always)]
    pub fn normal(&mut self) -> V {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (z, spare) = self.normal_pair();
        self.spare = Some(spare);
        z
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
        let u = lanes.acceptance_uniform(Mask::ALL);
        let v = lanes.uniform();
        let w = lanes.acceptance_uniform(Mask::ALL);
        for (l, s) in scalars.iter_mut().enumerate() {
            assert_eq!(u.0[l], s.acceptance_uniform());
            assert_eq!(v.0[l], s.uniform());
            assert_eq!(w.0[l], s.acceptance_uniform());
        }
    }

    /// Single-particle moves: a normal at a time, and acceptance uniforms drawn by some lanes
    /// only, so that the lanes' places in their blocks and pools part.
    #[test]
    fn lanes_that_skip_a_draw_keep_their_own_place() {
        let walkers = U(std::array::from_fn(|l| 7 * l as u32));
        let mut lanes = LaneStream::new(99, walkers, 5);
        let mut scalars: Vec<StepStream> = (0..L)
            .map(|l| StepStream::new(99, walkers.0[l], 5))
            .collect();
        for round in 0..40usize {
            for _ in 0..1 + round % 3 {
                let z = lanes.normal();
                for (l, s) in scalars.iter_mut().enumerate() {
                    let want = s.normal();
                    assert!((z.0[l] - want).abs() <= 4.0 * f64::EPSILON * want.abs().max(1.0));
                }
            }
            let draw = Mask::from_fn(|l| (l * 7 + round * 3) % 5 < 2 + round % 2);
            let u = lanes.acceptance_uniform(draw);
            for (l, s) in scalars.iter_mut().enumerate() {
                if draw.get(l) {
                    assert_eq!(u.0[l], s.acceptance_uniform(), "round {round}, lane {l}");
                }
            }
        }
    }
}
