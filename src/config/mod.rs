//! The run configuration: JSON file + `--set key=value` overrides, defaults for every field
//! (`{}` is the two-electron quantum dot), and validation with messages naming the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::physics::{
    Form, Jastrow, Layout, PairForm, Rbm, Reference, Slater, Statistics, System, Wavefunction,
    reference_energy,
};
use crate::sampler::{Moves, SamplerKind, Step};
use crate::text::compact;

mod overrides;
mod resolve;
mod validate;

pub use overrides::{apply_override, merge, read_json, refuse_duplicate_keys, set_path};
use overrides::{array_within, exact_integers, override_of, refuse_output_files};
pub use validate::{MAX_SIGMA_LENGTHS, flat_width};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub system: SystemConfig,
    pub wavefunction: WavefunctionConfig,
    pub sampler: SamplerConfig,
    /// Number of independent Markov chains.
    pub walkers: u32,
    /// Monte Carlo steps per walker in one optimisation iteration.
    pub steps_per_iteration: u32,
    /// Seed of every random number of the run.
    pub seed: u64,
    /// Which engine runs the walkers.
    pub engine: EngineChoice,
    /// CPU engine threads; 0 uses every core.
    pub threads: usize,
    /// CPU engine: walk the walkers in SIMD lanes where the lane engine supports the system
    /// (Metropolis or importance sampling of the RBM, with or without the Padé-Jastrow
    /// factor; with Slater determinants, single-particle moves); false keeps the scalar
    /// reference engine. Both walk the same chains to rounding (README, Engines).
    pub cpu_lanes: bool,
    pub optimiser: OptimiserConfig,
    pub production: ProductionConfig,
    /// Write a checkpoint every this many optimisation iterations (0: only at the end).
    pub checkpoint_every: u32,
    pub gpu: GpuConfig,
    /// Observables beyond the energy, measured in production.
    pub observables: ObservablesConfig,
    /// Diffusion Monte Carlo (`rbm-vmc dmc`).
    pub dmc: DmcConfig,
    /// The energy to compare with, instead of the built-in table's (`Config::reference`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceConfig>,
}

/// A reference energy given in the config: `"reference": 2.0` or `{"energy": 2.0, "error":
/// 0.001, "label": "exact diagonalisation"}` (error and label optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct ReferenceConfig {
    pub energy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl TryFrom<Value> for ReferenceConfig {
    type Error = String;

    fn try_from(value: Value) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            energy: f64,
            #[serde(default)]
            error: Option<f64>,
            #[serde(default)]
            label: Option<String>,
        }
        let full = match value {
            Value::Number(n) => Full {
                energy: n.as_f64().unwrap_or(f64::NAN),
                error: None,
                label: None,
            },
            Value::Object(_) => serde_json::from_value(value).map_err(|e| e.to_string())?,
            other => {
                return Err(format!(
                    "{other} is neither a number (the energy) nor an object {{\"energy\": .., \
                     \"error\": .., \"label\": ..}}"
                ));
            }
        };
        Ok(Self {
            energy: full.energy,
            error: full.error,
            label: full.label,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            system: SystemConfig::default(),
            wavefunction: WavefunctionConfig::default(),
            sampler: SamplerConfig::default(),
            walkers: 1000,
            steps_per_iteration: 1000,
            seed: 2023,
            engine: EngineChoice::Auto,
            threads: 0,
            cpu_lanes: true,
            optimiser: OptimiserConfig::default(),
            production: ProductionConfig::default(),
            checkpoint_every: 10,
            gpu: GpuConfig::default(),
            observables: ObservablesConfig::default(),
            dmc: DmcConfig::default(),
            reference: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Number of particles P.
    pub particles: usize,
    /// Spatial dimensions D (1..3).
    pub dims: usize,
    /// Trap frequency.
    pub omega: f64,
    /// Coulomb repulsion between the particles.
    pub interaction: bool,
    /// Distinguishable particles (the plain RBM) or spin-1/2 fermions in closed shells.
    pub statistics: Statistics,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            particles: 2,
            dims: 2,
            omega: 1.0,
            interaction: true,
            statistics: Statistics::Distinguishable,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WavefunctionConfig {
    /// Hidden units N.
    pub hidden: usize,
    /// Width sigma of the Gaussian visible units (`"auto"`: the trap's ground state).
    pub sigma: AutoValue,
    /// Optimise ln sigma with the other parameters.
    pub train_sigma: bool,
    pub form: Form,
    /// Electron-electron correlation factor.
    pub jastrow: JastrowKind,
    /// Initial beta of the Padé-Jastrow factor.
    pub jastrow_beta: f64,
    /// Standard deviation of the random initial parameters (0: all zero).
    pub init_scale: f64,
    /// Parameters file (as written by `run`) to start from instead of random ones.
    pub params: Option<PathBuf>,
}

impl Default for WavefunctionConfig {
    fn default() -> Self {
        Self {
            hidden: 2,
            sigma: AutoValue::Auto,
            train_sigma: false,
            form: Form::Direct,
            jastrow: JastrowKind::None,
            jastrow_beta: 0.5,
            init_scale: 0.1,
            params: None,
        }
    }
}

/// A number, or `"auto"`: the width of the RBM's Gaussian (matching the trap's ground
/// state: sigma^2 = 1/omega for psi = F, 1/(2 omega) for psi = sqrt(F)), or the sampler's
/// step and time step (tuned during thermalisation toward a target acceptance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AutoValue {
    Auto,
    Value(f64),
}

impl Serialize for AutoValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AutoValue::Auto => serializer.serialize_str("auto"),
            AutoValue::Value(v) => serializer.serialize_f64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for AutoValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AutoValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number > 0 or \"auto\"")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<AutoValue, E> {
                Ok(AutoValue::Value(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<AutoValue, E> {
                Ok(AutoValue::Value(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<AutoValue, E> {
                Ok(AutoValue::Value(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AutoValue, E> {
                match v {
                    "auto" => Ok(AutoValue::Auto),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JastrowKind {
    /// No correlation factor: the RBM (and determinants) alone.
    None,
    /// exp( sum_{i<j} a_ij r_ij / (1 + beta r_ij) ) with the cusp a_ij fixed by D and the spins.
    Pade,
    /// exp( sum_{i<j} beta_ij r_ij ), one beta per kind of spin pair, starting at the cusps.
    Simple,
}

impl JastrowKind {
    /// The Jastrow factor's pair function, `None` without the factor.
    pub fn pair_form(self) -> Option<PairForm> {
        match self {
            JastrowKind::None => None,
            JastrowKind::Pade => Some(PairForm::Pade),
            JastrowKind::Simple => Some(PairForm::Simple),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    pub moves: Moves,
    /// Metropolis proposal width: y = x + step (u - 1/2) (`"auto"`: tuned).
    pub step: AutoValue,
    /// Importance-sampling time step (`"auto"`: tuned).
    pub dt: AutoValue,
    /// Steps every walker makes before the first measurement.
    pub thermalisation: u32,
    /// Monte Carlo steps between measurements (K).
    pub measure_every: u32,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            kind: SamplerKind::Importance,
            moves: Moves::All,
            step: AutoValue::Auto,
            dt: AutoValue::Auto,
            thermalisation: 500,
            measure_every: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// A real GPU when one exists, else the CPU engine.
    Auto,
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimiserKind {
    Sgd,
    Adam,
    /// Stochastic reconfiguration (natural gradient).
    Sr,
}

/// How the learning rate changes over the iterations (t = updates made before this one,
/// T = `iterations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// lr.
    Constant,
    /// lr / (1 + t / t0).
    Inverse,
    /// From lr at t = 0 down to lr * final_fraction at t = T along a half cosine.
    Cosine,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimiserConfig {
    pub kind: OptimiserKind,
    pub learning_rate: f64,
    pub iterations: u32,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// SR: eps_rel, the shift of S's diagonal relative to itself.
    pub diagonal_shift: f64,
    /// SR: eps_abs, a shift of S's diagonal by this absolute amount.
    pub absolute_shift: f64,
    /// SR: samples per iteration (per process) whose O vectors enter S.
    pub metric_samples: u32,
    pub schedule: Schedule,
    /// The `inverse` schedule's time scale, in iterations.
    pub t0: f64,
    /// The `cosine` schedule's final learning rate, as a fraction of `learning_rate`.
    pub final_fraction: f64,
}

impl Default for OptimiserConfig {
    fn default() -> Self {
        Self {
            kind: OptimiserKind::Adam,
            learning_rate: 0.05,
            iterations: 100,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            diagonal_shift: DEFAULT_DIAGONAL_SHIFT,
            absolute_shift: DEFAULT_ABSOLUTE_SHIFT,
            metric_samples: DEFAULT_METRIC_SAMPLES,
            schedule: Schedule::Constant,
            t0: 100.0,
            final_fraction: 0.1,
        }
    }
}

/// SR's relative diagonal shift (see README, "Choosing the optimiser", for how it was chosen).
pub const DEFAULT_DIAGONAL_SHIFT: f64 = 0.01;
/// SR's absolute diagonal shift.
pub const DEFAULT_ABSOLUTE_SHIFT: f64 = 1e-4;
/// Samples per iteration entering S: 2^14.
pub const DEFAULT_METRIC_SAMPLES: u32 = 1 << 14;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProductionConfig {
    /// Monte Carlo steps per walker of the final measurement.
    pub steps: u32,
}

impl Default for ProductionConfig {
    fn default() -> Self {
        Self { steps: 10_000 }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    /// Choose the adapter whose name contains this text (case-insensitive).
    pub adapter: Option<String>,
    /// Monte Carlo steps per dispatch; chosen automatically when absent.
    pub steps_per_dispatch: Option<u32>,
    /// Build the walk and DMC kernels with wgpu's runtime checks (loops bounded, indices clamped):
    /// slower (4x on an H200), for a driver that fails to build the kernel without them.
    /// Absent: only beyond 512 parameters, where NVIDIA's driver failed.
    pub runtime_checks: Option<bool>,
    /// Unroll the determinants' loops over the orbitals in the walk and DMC kernels
    /// (constant bounds, so their arrays can stay in registers). Absent: up to 6 orbitals
    /// per spin block (12 electrons).
    pub unroll_orbitals: Option<bool>,
    /// Philox's 32 x 32 -> 64-bit multiplies in the walk and DMC kernels as one native
    /// instruction (the kernels' SPIR-V, Vulkan only) instead of 16-bit pieces: the same
    /// numbers. Absent: on where the adapter is Vulkan.
    pub native_multiply: Option<bool>,
    /// The parameters in a uniform buffer in the walk and DMC kernels (read through the
    /// constant cache, so fewer registers hold them) instead of a storage buffer (copied into
    /// private memory up to 128 parameters). Absent: off.
    pub uniform_params: Option<bool>,
    /// The walk kernel sums the O_i and E_L O_i over its workgroup at each measurement,
    /// through workgroup memory, instead of in a per-walker private array of 2K values (which
    /// leaves registers for large K). Absent: off.
    pub workgroup_sums: Option<bool>,
}

/// The observables measured in production besides the energy: the energy's parts, pair
/// distances, and the density histograms (bins over ranges that default to multiples of the
/// oscillator length 1/sqrt(omega)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservablesConfig {
    /// false: production measures the energy alone (no parts, distances or densities).
    pub enabled: bool,
    /// Bins of the radial one-body density over [0, r_max).
    pub radial_bins: usize,
    /// Outer radius of the density histograms (and half-width of the x-y grid); absent or
    /// null: 4 / sqrt(omega).
    pub r_max: Option<f64>,
    /// Bins of the pair-distance distribution over [0, pair_max).
    pub pair_bins: usize,
    /// Largest pair distance binned; absent or null: 2 r_max.
    pub pair_max: Option<f64>,
    /// Cells per side of the x-y density (D = 2 only) over [-r_max, r_max)^2.
    pub grid_bins: usize,
    /// The histograms take every this many measurements (the first of a call, then every
    /// n-th): neighbouring samples are correlated, so the densities lose little, and binning
    /// is most of the observables' cost. The scalars take every measurement.
    pub histogram_every: u32,
}

impl Default for ObservablesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            radial_bins: 50,
            r_max: None,
            pair_bins: 50,
            pair_max: None,
            grid_bins: 40,
            histogram_every: 4,
        }
    }
}

/// Fixed-node diffusion Monte Carlo from the trial wave function: time step, generations,
/// moves and the energy cutoff (docs/physics.md, "Diffusion Monte Carlo").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DmcConfig {
    /// Imaginary time step tau of the moves; a list runs each in turn and extrapolates the
    /// energy to tau = 0.
    pub time_step: TimeSteps,
    /// Generations measured after the equilibration.
    pub generations: u32,
    /// Generations before the measurement, while the walkers relax from |psi_T|^2 to
    /// psi_T Phi_0.
    pub equilibration: u32,
    /// "all" (every electron at once) or "single" (one after another); absent or null:
    /// "single" for fermions, "all" otherwise.
    pub moves: Option<Moves>,
    /// The energy cutoff E_cut = cutoff sqrt(P / tau) of the branching (Zen et al. 2016).
    pub cutoff: f64,
    /// Generations per row of dmc.csv.
    pub block: u32,
}

impl Default for DmcConfig {
    fn default() -> Self {
        Self {
            time_step: TimeSteps(vec![0.01]),
            generations: 2000,
            equilibration: 500,
            moves: None,
            cutoff: 0.2,
            block: 20,
        }
    }
}

/// DMC's time steps: a number, or a list of them for an extrapolation to tau = 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSteps(pub Vec<f64>);

/// Most time steps of one extrapolation.
pub const MAX_TIME_STEPS: usize = 16;

impl Serialize for TimeSteps {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_f64(*one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TimeSteps {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a time step > 0 or a list of them")]
        enum Written {
            One(f64),
            Many(Vec<f64>),
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::One(tau) => TimeSteps(vec![tau]),
            Written::Many(taus) => TimeSteps(taus),
        })
    }
}

/// Largest sizes accepted; beyond them memory or run time is unreasonable for this code.
pub const MAX_PARTICLES: usize = 256;
pub const MAX_HIDDEN: usize = 1024;
/// Most CPU engine threads (each holds a chain of the size of the parameters).
pub const MAX_THREADS: usize = 4096;

impl Config {
    /// Reads a config file (or the defaults when `path` is `None`), applies `key=value`
    /// overrides, and validates the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self, Error> {
        let mut value = match path {
            Some(path) => read_json(path, "config")?,
            None => Value::Object(Default::default()),
        };
        if let Some(path) = path {
            refuse_output_files(&value, path)?;
        }
        for item in overrides {
            apply_override(&mut value, item)?;
        }
        let origin = path.map_or("built-in default".to_string(), |p| p.display().to_string());
        Self::from_value_set(value, &origin, overrides)
    }

    /// Deserialises and validates a JSON value; `origin` names it in error messages.
    pub fn from_value(value: Value, origin: &str) -> Result<Self, Error> {
        Self::from_value_set(value, origin, &[])
    }

    /// As `from_value`, for a value that the `key=value` `overrides` were applied to: an
    /// error in a field an override set names the override instead of `origin`.
    pub fn from_value_set(
        mut value: Value,
        origin: &str,
        overrides: &[String],
    ) -> Result<Self, Error> {
        exact_integers(&mut value);
        let place = |path: &str| match override_of(overrides, path) {
            Some(item) => format!("--set `{item}`"),
            None => format!("config {origin}"),
        };
        if let Some(path) = array_within(&value, "") {
            return Err(Error::input(format!(
                "{}: `{path}`: a JSON array, but no config setting is a list: write an object \
                 of named settings (e.g. {{\"system\": {{\"particles\": 6}}}}) or a single value",
                place(&path)
            )));
        }
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            Error::input(format!("{}: `{path}`: {}", place(&path), e.inner()))
        })?;
        config.validate().map_err(|e| match e {
            // "config: `field` = value: ...": name the override that set the field, if one did.
            Error::Input(m) => {
                let field = m
                    .strip_prefix("config: `")
                    .and_then(|rest| rest.split(['`', ' ']).next());
                match field.and_then(|f| override_of(overrides, f)) {
                    Some(item) => {
                        Error::input(format!("--set `{item}`: {}", &m["config: ".len()..]))
                    }
                    None => Error::Input(m),
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Measurements per walker in `steps` Monte Carlo steps.
    pub fn measurements(&self, steps: u32) -> u32 {
        steps / self.sampler.measure_every
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(value: Value) -> Result<Config, String> {
        Config::from_value(value, "test").map_err(|e| e.to_string())
    }

    #[test]
    fn a_runs_own_files_are_named_when_given_as_the_config() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text, expect) in [
            (
                "checkpoint.json",
                r#"{"version": 3, "config": {}}"#,
                "--resume",
            ),
            (
                "result.json",
                r#"{"status": "completed", "config": {}}"#,
                "result",
            ),
            (
                "params.json",
                r#"{"a": [0], "b": [], "w": [[]], "system": {}}"#,
                "params",
            ),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            let error = Config::load(Some(&path), &[]).unwrap_err().to_string();
            assert!(
                error.contains("is not a config") && error.contains(expect),
                "{error}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// serde reads a JSON array in place of an object by position (`[6, 2, 1.0, true,
    /// "fermions"]` was six fermions): no setting is a list, so any array is refused by path.
    #[test]
    fn arrays_in_place_of_objects_are_refused() {
        for (value, path) in [
            (json!({"system": [6, 2, 1.0, true, "fermions"]}), "`system`"),
            (json!({"sampler": {"kind": ["gibbs"]}}), "`sampler.kind`"),
            (json!([{}]), "`.`"),
        ] {
            let e = load(value.clone()).unwrap_err();
            assert!(
                e.starts_with(&format!("config test: {path}: a JSON array")),
                "{value}: {e}"
            );
        }
    }

    /// A key given twice (serde_json keeps the last silently) is refused, by its path.
    #[test]
    fn duplicate_keys_are_refused_by_path() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-dup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (text, key) in [
            (r#"{"walkers": 8, "walkers": 9}"#, "`walkers`"),
            (
                r#"{"system": {"omega": 0.5, "dims": 2, "omega": 2}}"#,
                "`system.omega`",
            ),
            (r#"{"a": [{"x": 1}, {"x": 1, "x": 2}]}"#, "`a[1].x`"),
        ] {
            let path = dir.join("config.json");
            std::fs::write(&path, text).unwrap();
            let e = Config::load(Some(&path), &[]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let e = e.to_string();
            assert!(
                e.contains(&format!("the key {key} appears twice")),
                "{text}: {e}"
            );
        }
        // The same keys in different objects, and text that is not JSON, pass the check.
        let path = dir.join("ok.json");
        for text in [r#"{"a": {"x": 1}, "b": {"x": 1}, "x": [1, 1]}"#, "{\"a\": "] {
            assert!(
                refuse_duplicate_keys(text, "config", &path).is_ok(),
                "{text}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An error in a value set by `--set` names the `--set`, not the config file.
    #[test]
    fn errors_in_overrides_name_the_override() {
        let dir = std::env::temp_dir().join(format!("rbm-vmc-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, r#"{"system": {"omega": 0.5}, "walkers": "many"}"#).unwrap();
        let error = |set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            Config::load(Some(&path), &set).unwrap_err().to_string()
        };
        for (set, expect) in [
            (
                &["walkers=8", "system.omega=abc"][..],
                "--set `system.omega=abc`: `system.omega`: invalid type",
            ),
            (
                &["walkers=8", "system={\"omega\": true}"],
                "--set `system={\"omega\": true}`: `system.omega`: invalid type",
            ),
            (
                &["walkers=8", "system.omga=1"],
                "--set `system.omga=1`: `system.omga`",
            ),
            (
                &["walkers=[8]"],
                "--set `walkers=[8]`: `walkers`: a JSON array",
            ),
            (
                &["walkers=8", "system.omega=-1"],
                "--set `system.omega=-1`: `system.omega` = -1: must be a finite number > 0",
            ),
        ] {
            let e = error(set);
            assert!(e.starts_with(expect), "{set:?}: {e}");
        }
        // The file's own error still names the file.
        let e = error(&["system.omega=2"]);
        assert!(
            e.starts_with(&format!("config {}: `walkers`", path.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Counts accept floats that are exact integers; fractions stay errors.
    #[test]
    fn counts_accept_exact_integers_written_as_floats() {
        let c = Config::load(None, &["walkers=1e3".into(), "system.omega=2".into()]).unwrap();
        assert_eq!((c.walkers, c.system.omega), (1000, 2.0));
        let e = Config::load(None, &["walkers=1.5e3".into()]).unwrap();
        assert_eq!(e.walkers, 1500);
        let e = load(json!({"walkers": 10.5})).unwrap_err();
        assert!(e.contains("walkers"), "{e}");
    }

    #[test]
    fn empty_config_is_the_two_electron_dot() {
        let c = load(json!({})).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!((c.system.particles, c.system.dims), (2, 2));
        assert!(c.system.interaction);
    }

    #[test]
    fn overrides_apply_dotted_paths_and_plain_strings() {
        let mut v = json!({"system": {"omega": 1.0}});
        apply_override(&mut v, "system.omega=0.5").unwrap();
        apply_override(&mut v, "sampler.kind=gibbs").unwrap();
        apply_override(&mut v, "wavefunction.form=\"sqrt\"").unwrap();
        apply_override(&mut v, "walkers=64").unwrap();
        let c = load(v).unwrap();
        assert_eq!(c.system.omega, 0.5);
        assert_eq!(c.sampler.kind, SamplerKind::Gibbs);
        assert_eq!(c.walkers, 64);
        let mut v = json!({"walkers": 3});
        assert!(apply_override(&mut v, "walkers.x=1").is_err());
        assert!(apply_override(&mut v, "novalue").is_err());
        assert!(apply_override(&mut v, "a..b=1").is_err());
    }

    #[test]
    fn sigma_auto_follows_the_trap_and_the_form() {
        let c = load(json!({"system": {"omega": 0.25}})).unwrap();
        assert_eq!(c.wavefunction.sigma, AutoValue::Auto);
        assert!((c.sigma() - 2.0).abs() < 1e-15);
        let c = load(json!({"system": {"omega": 0.5}, "wavefunction": {"form": "sqrt"}})).unwrap();
        assert!((c.sigma() - 1.0).abs() < 1e-15);
        let c = load(json!({"wavefunction": {"sigma": 0.7}})).unwrap();
        assert_eq!(c.sigma(), 0.7);
        // It serialises back as written (checkpoints carry the config).
        let text = serde_json::to_string(&Config::default()).unwrap();
        assert!(text.contains("\"sigma\":\"auto\""), "{text}");
        assert_eq!(
            load(serde_json::from_str(&text).unwrap()).unwrap(),
            Config::default()
        );
    }

    /// The sampler table's messages, word for word.
    #[test]
    fn sampler_errors_read_in_full() {
        let gibbs = json!({"kind": "gibbs"});
        let cases = [
            (
                json!({"sampler": gibbs}),
                "config: `sampler.kind` = \"gibbs\" needs `wavefunction.form` = \"sqrt\": Gibbs \
                 sampling draws from the RBM marginal F(x), which is |psi|^2 only for psi = sqrt(F)",
            ),
            (
                json!({"sampler": gibbs, "wavefunction": {"form": "sqrt", "jastrow": "pade"}}),
                "config: `sampler.kind` = \"gibbs\" samples the RBM alone; it cannot sample a \
                 Jastrow factor or Slater determinants: use \"metropolis\" or \"importance\"",
            ),
            (
                json!({"sampler": {"kind": "gibbs", "moves": "single"},
                    "wavefunction": {"form": "sqrt"}}),
                "config: `sampler.moves` = \"single\" does not apply to Gibbs sampling, which \
                 redraws every coordinate each step; use \"all\"",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(load(value.clone()).expect_err(&value.to_string()), message);
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({"system": {"omega": -1.0}}), "system.omega"),
            (json!({"observables": {"r_max": 1e39}}), "observables.r_max"),
            (
                json!({"observables": {"pair_max": 1e-4}, "system": {"omega": 0.01}}),
                "observables.pair_max",
            ),
            (json!({"system": {"dims": 4}}), "system.dims"),
            (json!({"system": {"particles": 0}}), "system.particles"),
            (
                json!({"system": {"dims": 1, "interaction": true}}),
                "diverges",
            ),
            (
                json!({"wavefunction": {"sigma": 0.0}}),
                "wavefunction.sigma",
            ),
            (
                json!({"wavefunction": {"sigma": 1e5}}),
                "100000 trap lengths",
            ),
            (
                json!({"wavefunction": {"sigma": 1e300}}),
                "the trial function is flat",
            ),
            (
                json!({"system": {"omega": 1e-6}, "wavefunction": {"sigma": 1e6}}),
                "1000 trap lengths",
            ),
            (json!({"sampler": {"kind": "gibbs"}}), "sqrt"),
            (json!({"sampler": {"dt": -0.1}}), "sampler.dt"),
            (json!({"sampler": {"step": 0.0}}), "sampler.step"),
            (json!({"walkers": 0}), "walkers"),
            // Huge and tiny numbers in exponent form, not 300 digits.
            (
                json!({"optimiser": {"beta1": 1e300}}),
                "`optimiser.beta1` = 1e300:",
            ),
            (
                json!({"sampler": {"dt": -1e-300}}),
                "`sampler.dt` = -1e-300:",
            ),
            (json!({"walkers": -5}), "walkers"),
            (json!({"walkers": 1e12}), "walkers"),
            (json!({"steps_per_iteration": 0}), "steps_per_iteration"),
            (
                json!({"optimiser": {"learning_rate": 0.0}}),
                "optimiser.learning_rate",
            ),
            (json!({"sampler": {"kind": "hmc"}}), "sampler.kind"),
            (json!({"optimiser": {"kind": "lbfgs"}}), "optimiser.kind"),
            (
                json!({"optimiser": {"kind": "sr", "diagonal_shift": -0.1}}),
                "optimiser.diagonal_shift",
            ),
            (
                json!({"optimiser": {"kind": "sr", "absolute_shift": 0.0}}),
                "optimiser.absolute_shift",
            ),
            (
                json!({"optimiser": {"metric_samples": 1}}),
                "optimiser.metric_samples",
            ),
            (
                json!({"optimiser": {"schedule": "linear"}}),
                "optimiser.schedule",
            ),
            (
                json!({"optimiser": {"schedule": "inverse", "t0": 0.0}}),
                "optimiser.t0",
            ),
            (
                json!({"optimiser": {"schedule": "cosine", "final_fraction": 1.5}}),
                "optimiser.final_fraction",
            ),
            (json!({"system": {"omgea": 1.0}}), "omgea"),
            (json!({"extra": 1}), "extra"),
            (json!({"system": {"omega": "one"}}), "system.omega"),
            (json!({"wavefunction": {"sigma": "wide"}}), "auto"),
            (
                json!({"wavefunction": {"jastrow": "pade"}, "system": {"interaction": false}}),
                "interaction",
            ),
            (
                json!({"wavefunction": {"jastrow": "pade", "jastrow_beta": -1.0}}),
                "jastrow_beta",
            ),
            (
                json!({"wavefunction": {"jastrow": "pade", "form": "sqrt"},
                    "sampler": {"kind": "gibbs"}}),
                "Jastrow",
            ),
            (
                json!({"system": {"particles": 8, "statistics": "fermions"}}),
                "2, 6, 12, 20, 30, 42, 56",
            ),
            (
                json!({"system": {"particles": 6, "dims": 3, "statistics": "fermions"}}),
                "2, 8, 20, 40",
            ),
            (
                json!({"system": {"statistics": "bosons"}}),
                "system.statistics",
            ),
            (json!({"dmc": {"time_step": 0.0}}), "dmc.time_step"),
            (json!({"dmc": {"time_step": -0.01}}), "dmc.time_step"),
            (json!({"dmc": {"time_step": []}}), "dmc.time_step"),
            (json!({"dmc": {"time_step": [0.01, 0.01]}}), "listed twice"),
            (json!({"dmc": {"time_step": [0.01, "x"]}}), "dmc.time_step"),
            (json!({"dmc": {"time_step": [[0.01]]}}), "dmc.time_step"),
            (json!({"dmc": {"generations": 0}}), "dmc.generations"),
            (json!({"dmc": {"block": 0}}), "dmc.block"),
            (
                json!({"dmc": {"generations": 10, "block": 20}}),
                "dmc.block",
            ),
            (json!({"dmc": {"cutoff": 0.0}}), "dmc.cutoff"),
            (
                json!({"dmc": {"generations": 215, "block": 20}}),
                "must divide `dmc.generations`",
            ),
            (json!({"dmc": {"moves": "some"}}), "dmc.moves"),
        ];
        for (value, needle) in cases {
            let err = load(value.clone()).expect_err(&value.to_string());
            assert!(err.contains(needle), "{value}: `{err}` lacks `{needle}`");
        }
    }
}
