//! One walker ensemble over a team of processes: each member runs its own engine on its share
//! of the walkers (random streams follow the global walker index, so the ensemble is the same
//! whatever the team size), and every `sample` call ends with the members' `Moments` summed
//! on every member, so all apply the same update and keep identical parameters (checked).

use std::rc::Rc;

use super::{Engine, EngineSpec, Measure, Metric, Moments, Progress, WalkerState, check_state};
use crate::error::Error;
use crate::physics::Params;
use crate::team::Team;

pub struct DistributedEngine {
    local: Box<dyn Engine>,
    team: Rc<dyn Team>,
    /// The whole ensemble's spec (walkers over every member, first walker 0).
    spec: EngineSpec,
}

impl DistributedEngine {
    /// `local` must run this member's share (`crate::team::share`) of `spec`'s walkers.
    pub fn new(local: Box<dyn Engine>, team: Rc<dyn Team>, spec: EngineSpec) -> Self {
        Self { local, team, spec }
    }
}

/// An engine whose every `sample` fails: what `RBM_VMC_FAULT_RANK=r` puts on process r, to
/// test that one failing process ends the whole team with its reason (teams of several
/// processes exist only with MPI).
#[cfg(feature = "mpi")]
pub(crate) struct InjectedFault(pub Box<dyn Engine>);

#[cfg(feature = "mpi")]
impl Engine for InjectedFault {
    fn describe(&self) -> String {
        self.0.describe()
    }

    fn spec(&self) -> &EngineSpec {
        self.0.spec()
    }

    fn sample(
        &mut self,
        _: &Params,
        _: u32,
        _: Measure,
        _: &dyn Progress,
    ) -> Result<Moments, Error> {
        Err(Error::engine(
            "a fault injected by RBM_VMC_FAULT_RANK on this process",
        ))
    }

    fn state(&self) -> Result<WalkerState, Error> {
        self.0.state()
    }

    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error> {
        self.0.set_state(state)
    }
}

/// Passes progress on scaled to the whole ensemble (this member holds 1/size of it).
struct Scaled<'a> {
    inner: &'a dyn Progress,
    factor: f64,
}

impl Progress for Scaled<'_> {
    fn advance(&self, walker_steps: u64) {
        self.inner
            .advance((walker_steps as f64 * self.factor) as u64);
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// FNV-1a over the parameters' bits: equal on every member exactly when the parameters are.
fn fingerprint(params: &Params) -> u64 {
    let bytes: Vec<u8> = params
        .theta()
        .iter()
        .flat_map(|t| t.to_bits().to_le_bytes())
        .collect();
    crate::checksum::fnv1a(&bytes)
}

/// Moments as one vector of f64 for a single all-reduce (counts stay exact below 2^53).
fn flatten(m: &Moments) -> Vec<f64> {
    let mut v = vec![
        m.walkers as f64,
        m.samples as f64,
        m.energy,
        m.energy_sq,
        m.accepted,
        m.attempted,
        m.walker_means.count as f64,
        m.walker_means.sum,
        m.walker_means.sum_sq,
        m.resets as f64,
    ];
    v.extend(&m.o);
    v.extend(&m.energy_o);
    if let Some(metric) = &m.metric {
        v.push(metric.samples as f64);
        v.extend(&metric.o);
        v.extend(&metric.oo);
    }
    v.extend(&m.series);
    // Last, so the series' length is what remains without them (every member's blocks have
    // the same shape: the same call on the same histograms).
    if let Some(obs) = &m.observables {
        obs.flatten(&mut v);
    }
    v
}

/// The inverse of `flatten`; `like` is a member's own moments, for the shape of the metric
/// and the observables.
fn unflatten(v: &[f64], parameters: usize, like: &Moments) -> Moments {
    let (head, rest) = v.split_at(10);
    let (o, rest) = rest.split_at(parameters);
    let (energy_o, rest) = rest.split_at(parameters);
    let (metric, rest) = if like.metric.is_some() {
        let (samples, rest) = rest.split_at(1);
        let (mo, rest) = rest.split_at(parameters);
        let (oo, rest) = rest.split_at(parameters * parameters);
        let metric = Metric {
            samples: samples[0] as u64,
            o: mo.to_vec(),
            oo: oo.to_vec(),
        };
        (Some(metric), rest)
    } else {
        (None, rest)
    };
    let (series, rest) = rest.split_at(like.series.len());
    let observables = like.observables.clone().map(|mut obs| {
        let left = obs.unflatten(rest);
        assert!(left.is_empty(), "moments of different shapes");
        obs
    });
    let mut m = Moments {
        walkers: head[0] as u64,
        samples: head[1] as u64,
        energy: head[2],
        energy_sq: head[3],
        accepted: head[4],
        attempted: head[5],
        o: o.to_vec(),
        energy_o: energy_o.to_vec(),
        series: series.to_vec(),
        resets: head[9] as u64,
        metric,
        observables,
        ..Default::default()
    };
    m.walker_means.count = head[6] as u64;
    m.walker_means.sum = head[7];
    m.walker_means.sum_sq = head[8];
    m
}

impl Engine for DistributedEngine {
    fn describe(&self) -> String {
        format!("{} processes x {}", self.team.size(), self.local.describe())
    }

    fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    fn sample(
        &mut self,
        params: &Params,
        steps: u32,
        measure: Measure,
        progress: &dyn Progress,
    ) -> Result<Moments, Error> {
        if !self.team.agree(fingerprint(params)) {
            return Err(Error::engine(
                "the variational parameters differ between processes; the run cannot go on",
            ));
        }
        let scaled = Scaled {
            inner: progress,
            factor: self.spec.walkers as f64 / self.local.spec().walkers as f64,
        };
        let local = match self.local.sample(params, steps, measure, &scaled) {
            Err(Error::Interrupted(_)) => None,
            // Any other failure ends the whole team (the caller aborts).
            Err(e) => return Err(e),
            Ok(m) => Some(m),
        };
        // A member cancelled part-way: all stop together.
        if self.team.any(local.is_none()) {
            return Err(Error::Interrupted("sampling cancelled".into()));
        }
        let local = local.expect("checked above");
        let mut flat = flatten(&local);
        self.team.sum(&mut flat);
        Ok(unflatten(&flat, self.spec.parameters(), &local))
    }

    fn kernel_seconds(&self) -> Option<f64> {
        self.local.kernel_seconds()
    }

    fn state(&self) -> Result<WalkerState, Error> {
        let local = self.local.state()?;
        Ok(WalkerState {
            steps_done: local.steps_done,
            positions: self.team.gather(&local.positions),
        })
    }

    fn set_state(&mut self, state: &WalkerState) -> Result<(), Error> {
        check_state(&self.spec, state)?;
        let local = self.local.spec();
        let m = self.spec.coordinates();
        let first = local.first_walker as usize * m;
        let count = local.walkers as usize * m;
        self.local.set_state(&WalkerState {
            steps_done: state.steps_done,
            positions: state.positions[first..first + count].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::CpuEngine;
    use crate::team::{Solo, share};

    #[test]
    fn moments_survive_flattening() {
        let mut m = Moments::zeros(3, 4);
        m.walkers = 5;
        m.samples = 20;
        m.energy = 1.5;
        m.o = vec![1.0, 2.0, 3.0];
        m.energy_o = vec![4.0, 5.0, 6.0];
        m.series = vec![7.0, 8.0, 9.0, 10.0];
        m.walker_means.push(0.25);
        m.resets = 2;
        assert_eq!(unflatten(&flatten(&m), 3, &m), m);
        let mut metric = Metric::zeros(3);
        metric.add_rows(&[1.0, 2.0, 3.0, -1.0, 0.5, 2.0]);
        m.metric = Some(metric);
        assert_eq!(unflatten(&flatten(&m), 3, &m), m);
        let spec = crate::engine::ObservablesSpec {
            radial_bins: 3,
            r_max: 1.0,
            pair_bins: 2,
            pair_max: 1.0,
            grid_bins: 0,
            histogram_every: 1,
        };
        let mut obs = crate::engine::ObservableSums::zeros(&spec, 2);
        obs.blocks[1].samples = 4.0;
        obs.blocks[1].scalars[2] = 1.5;
        obs.blocks[0].counts[3] = 7.0;
        m.observables = Some(obs.clone());
        assert_eq!(unflatten(&flatten(&m), 3, &m), m);
        obs.walkers.push(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        obs.walkers.push(&[0.5, 1.0, -3.0, 4.0, 2.0, 0.0]);
        m.observables = Some(obs);
        assert_eq!(unflatten(&flatten(&m), 3, &m), m);
    }

    /// The shares of a split ensemble, summed, are the whole ensemble's moments (up to the
    /// order of the sums), walker for walker.
    #[test]
    fn split_ensembles_add_up_to_the_whole() {
        let config = Config::load(None, &["walkers=10".into(), "threads=1".into()]).unwrap();
        let spec = EngineSpec::from_config(&config);
        let params = crate::driver::initial_params(&config).unwrap();
        let mut whole = CpuEngine::new(spec.clone(), 1).unwrap();
        let expected = whole.sample(&params, 30, Measure::Energy, &()).unwrap();
        let mut total = Flat::default();
        for rank in 0..3 {
            let (first, walkers) = share(10, rank, 3);
            let local = EngineSpec {
                walkers,
                first_walker: first,
                ..spec.clone()
            };
            let engine = Box::new(CpuEngine::new(local, 1).unwrap());
            let mut part = DistributedEngine::new(engine, Rc::new(Solo), spec.clone());
            // With a one-member team the part's sums are its own: add them up here.
            total.add(&flatten(
                &part
                    .local
                    .sample(&params, 30, Measure::Energy, &())
                    .unwrap(),
            ));
            assert_eq!(part.spec().walkers, 10);
        }
        let got = unflatten(&total.0, spec.parameters(), &expected);
        assert_eq!(got.samples, expected.samples);
        assert!((got.energy - expected.energy).abs() < 1e-12 * expected.energy.abs());
        for (a, b) in got.series.iter().zip(&expected.series) {
            assert!((a - b).abs() < 1e-12 * b.abs());
        }
    }

    #[derive(Default)]
    struct Flat(Vec<f64>);

    impl Flat {
        fn add(&mut self, v: &[f64]) {
            if self.0.is_empty() {
                self.0 = vec![0.0; v.len()];
            }
            for (a, b) in self.0.iter_mut().zip(v) {
                *a += b;
            }
        }
    }

    #[test]
    fn fingerprints_tell_parameters_apart() {
        let a = Params::initial(crate::physics::Layout::rbm(4, 2), 0.1, 1, &[], 1.0);
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.theta_mut()[3] = f64::from_bits(b.theta()[3].to_bits() ^ 1);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
