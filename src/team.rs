//! The processes a run is split over: the collective operations the program needs, as a small
//! trait. `Solo` is the one-process team; with the `mpi` feature, `crate::mpi::MpiTeam` runs
//! them over MPI. Everything that distributes work (`DistributedEngine`, sweeps, bench)
//! is written against this trait, so it builds and is tested without MPI too.

use std::rc::Rc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

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

/// "Member 0 decides": what one member works out and every member then goes by (the output
/// directory, the points left to run, a timing decision), sent as JSON.
impl dyn Team + '_ {
    /// `decide`'s value on member 0 (where alone it runs), on every member.
    pub fn from_root<T: Serialize + DeserializeOwned>(&self, decide: impl FnOnce() -> T) -> T {
        let bytes = if self.is_root() {
            serde_json::to_vec(&decide()).expect("plain values serialise")
        } else {
            Vec::new()
        };
        serde_json::from_slice(&self.broadcast(bytes)).expect("sent as JSON")
    }

    /// Member 0 does `work`; every member gets the `summary` of its result, and member 0 the
    /// result itself too. An error on member 0 is an error on every member (the others get its
    /// message as an input error).
    pub fn from_root_work<T, S: Serialize + DeserializeOwned>(
        &self,
        work: impl FnOnce() -> Result<T, Error>,
        summary: impl FnOnce(&T) -> S,
    ) -> Result<(Option<T>, S), Error> {
        let mut mine = None;
        let shared = self.from_root(|| {
            let result = work();
            let shared = result.as_ref().map(summary).map_err(|e| e.to_string());
            mine = Some(result);
            shared
        });
        match (mine, shared) {
            (Some(result), shared) => {
                let value = result?;
                Ok((Some(value), shared.expect("member 0's own result")))
            }
            (None, shared) => shared.map(|s| (None, s)).map_err(Error::Input),
        }
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
    fn the_first_member_decides_and_its_errors_reach_everyone() {
        let team = solo();
        assert!(team.from_root(|| true));
        let (mine, count) = team.from_root_work(|| Ok(vec![3, 4]), |v| v.len()).unwrap();
        assert_eq!((mine, count), (Some(vec![3, 4]), 2));
        let failed = team.from_root_work(|| Err::<u32, _>(Error::input("no room")), |v| *v);
        assert_eq!(failed.unwrap_err().to_string(), "no room");
    }

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
