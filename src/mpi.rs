//! The `Team` over MPI (feature `mpi`, through the `mpi` crate): one process per rank,
//! `MPI_COMM_WORLD`, and a shared-memory sub-communicator for the rank on the machine.

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::error::Error;
use crate::team::Team;

pub struct MpiTeam {
    world: SimpleCommunicator,
    node: SimpleCommunicator,
    // Finalises MPI when dropped; fields drop in order, so it goes after the communicators.
    _universe: Universe,
}

impl MpiTeam {
    /// Initialises MPI (once per process). Without `mpirun` this is a team of one.
    pub fn init() -> Result<Self, Error> {
        let universe = mpi::initialize()
            .ok_or_else(|| Error::engine("MPI was initialised twice in this process"))?;
        let world = universe.world();
        let node = world.split_shared(world.rank());
        Ok(Self {
            world,
            node,
            _universe: universe,
        })
    }

    /// Counts and displacements of every rank's `len`, for the variable-count collectives.
    fn partition(&self, len: usize, all: bool) -> (Vec<i32>, Vec<i32>) {
        let mine = len as i32;
        let mut counts = vec![0i32; self.size()];
        if all {
            self.world.all_gather_into(&mine, &mut counts[..]);
        } else if self.is_root() {
            self.world
                .process_at_rank(0)
                .gather_into_root(&mine, &mut counts[..]);
        } else {
            self.world.process_at_rank(0).gather_into(&mine);
        }
        let displs = counts
            .iter()
            .scan(0, |offset, &c| {
                let d = *offset;
                *offset += c;
                Some(d)
            })
            .collect();
        (counts, displs)
    }
}

impl Team for MpiTeam {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn local_rank(&self) -> usize {
        self.node.rank() as usize
    }

    fn local_size(&self) -> usize {
        self.node.size() as usize
    }

    fn sum(&self, values: &mut [f64]) {
        let local = values.to_vec();
        self.world
            .all_reduce_into(&local[..], values, SystemOperation::sum());
    }

    fn agree(&self, value: u64) -> bool {
        let (mut low, mut high) = (0u64, 0u64);
        self.world
            .all_reduce_into(&value, &mut low, SystemOperation::min());
        self.world
            .all_reduce_into(&value, &mut high, SystemOperation::max());
        low == high
    }

    fn any(&self, flag: bool) -> bool {
        let mut any = 0i32;
        self.world
            .all_reduce_into(&(flag as i32), &mut any, SystemOperation::max());
        any != 0
    }

    fn gather(&self, local: &[f64]) -> Vec<f64> {
        let (counts, displs) = self.partition(local.len(), true);
        let mut all = vec![0.0; counts.iter().sum::<i32>() as usize];
        let mut parts = PartitionMut::new(&mut all[..], counts, &displs[..]);
        self.world.all_gather_varcount_into(local, &mut parts);
        all
    }

    fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        let mut buffer = if self.is_root() {
            bytes
        } else {
            vec![0u8; len as usize]
        };
        root.broadcast_into(&mut buffer[..]);
        buffer
    }

    fn gather_bytes(&self, local: &[u8]) -> Vec<Vec<u8>> {
        let (counts, displs) = self.partition(local.len(), false);
        let root = self.world.process_at_rank(0);
        if !self.is_root() {
            root.gather_varcount_into(local);
            return Vec::new();
        }
        let mut all = vec![0u8; counts.iter().sum::<i32>() as usize];
        {
            let mut parts = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            root.gather_varcount_into_root(local, &mut parts);
        }
        counts
            .iter()
            .zip(&displs)
            .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
            .collect()
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
