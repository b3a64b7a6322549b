//! The processes a run is split over: the collective operations the program needs, as a small
//! trait. `Solo` is the one-process team; with the `mpi` feature, `crate::mpi::MpiTeam` runs
//! them over MPI. Everything that distributes work (`DistributedEngine`, sweeps, bench)
//! is written against this trait, so it builds and is tested without MPI too.

use std::rc::Rc;

/// A fixed group of cooperating processes. Every collective must be called by every member,
/// in the same order.
pub trait Team {
    /// This process's index, 0..size.
    fn rank(&self) -> usize;

    fn size(&self) -> usize;

    /// Index among the members on the same machine (to pick distinct GPUs), and how many
    /// members share this machine.
    fn local_rank(&self) -> usize;

    fn local_size(&self) -> usize;

    /// Element-wise sum over the members, the same result on every member.
    fn sum(&self, values: &mut [f64]);

    /// Whether `value` is the same on every member.
    fn agree(&self, value: u64) -> bool;

    /// Whether `flag` is set on any member.
    fn any(&self, flag: bool) -> bool;

    /// The members' slices in rank order, on every member.
    fn gather(&self, local: &[f64]) -> Vec<f64>;

    /// Member 0's bytes, on every member.
    fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8>;

    /// Every member's bytes in rank order, on member 0 (empty elsewhere).
    fn gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>>;

    /// Ends every member's process with `code`, from any member: no collective may hang.
    fn abort(&self, code: i32) -> !;

    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// A team of one: every collective is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Team for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn local_rank(&self) -> usize {
        0
    }

    fn local_size(&self) -> usize {
        1
    }

    fn sum(&self, _: &mut [f64]) {}

    fn agree(&self, _: u64) -> bool {
        true
    }

    fn any(&self, flag: bool) -> bool {
        flag
    }

    fn gather(&self, local: &[f64]) -> Vec<f64> {
        local.to_vec()
    }

    fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    fn gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        vec![local.to_vec()]
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The one-process team, shared.
pub fn solo() -> Rc<dyn Team> {
    Rc::new(Solo)
}

/// The walkers of member `rank` when `walkers` are split over `size` members: as equal as
/// possible, the first members taking one more. Returns (first global index, count).
pub fn share(walkers: u32, rank: usize, size: usize) -> (u32, u32) {
    let (base, extra) = (walkers / size as u32, walkers % size as u32);
    let rank = rank as u32;
    let count = base + u32::from(rank < extra);
    let first = rank * base + rank.min(extra);
    (first, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_walker_once() {
        for walkers in [1, 7, 64, 1000] {
            for size in 1..=5 {
                let mut next = 0;
                for rank in 0..size {
                    let (first, count) = share(walkers, rank, size);
                    assert_eq!(first, next);
                    next += count;
                }
                assert_eq!(next, walkers);
            }
        }
    }
}
