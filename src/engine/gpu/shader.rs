//! Puts the WGSL together for one run: a generated header of constants (sizes, physics,
//! sampler), the shared files, the files of the wave-function factors the run uses with
//! generated glue that sums them, and the sampler's file, so loops have constant bounds,
//! private arrays their sizes, and an unused factor costs nothing. The one place where
//! shader variants are made.

use crate::engine::EngineSpec;
use crate::engine::ObservablesSpec;
use crate::engine::REFRESH_EVERY;
use crate::engine::observables::SCALARS;
use crate::physics::PairForm;
use crate::sampler::{Moves, Step};

use super::layout::{
    FLAG_FIRST_OF_CALL, FLAG_LAST_OF_CALL, FLAG_MEASURE, FLAG_OBSERVE, FLAG_RESET_PARTIALS,
    HIST_COPIES, WALKER_SCALARS,
};

/// Walkers per workgroup (the kernels' @workgroup_size); a power of two for the reduce
/// kernel's tree.
pub const WORKGROUP: u32 = 64;

/// Measurements the walk kernel buffers per walker in workgroup memory before it sums them
/// over the workgroup (walk.wgsl, `rows`). 16 rather than 32: the smaller array lets more
/// workgroups share a multiprocessor, and importance sampling ran 1.17x faster on an H200
/// (Metropolis 1.01x).
pub const SERIES_CHUNK: u32 = 16;

// walk.wgsl sums a row's first CHUNK columns with one thread each, and `flush_observed` and
// `reduce_sums` put the observables' and the walker's scalars in a row of CHUNK + 1: an
// unchecked kernel would not notice.
const _: () = assert!(SCALARS as u32 <= SERIES_CHUNK + 1 && SERIES_CHUNK <= WORKGROUP);
const _: () = assert!(WALKER_SCALARS as u32 <= SERIES_CHUNK);
const _: () = assert!(WORKGROUP.is_power_of_two());

/// Workgroup memory, in f32 values, for the O vectors that the walk kernel sums over the
/// workgroup at each measurement with `gpu.workgroup_sums` (walk.wgsl, `tile`), as many
/// walkers' rows at a time as fit: 2 KB, half the series rows, as a larger workgroup array
/// lowers occupancy (see SERIES_CHUNK). A real GPU is still to say what is best.
const DERIVATIVE_TILE: usize = 512;

/// The walk kernel's tile for `parameters` O values: (rows, walkers per round, a power of
/// two dividing WORKGROUP; row stride, odd so that the rows' writes fall in distinct banks,
/// and at least K + 1 for O and E_L - shift). Beyond DERIVATIVE_TILE - 1 parameters a single
/// row outgrows it.
fn derivative_tile(parameters: usize) -> (usize, usize) {
    let stride = (parameters + 1) | 1;
    let mut rows = WORKGROUP as usize;
    while rows > 1 && rows * stride > DERIVATIVE_TILE {
        rows /= 2;
    }
    (rows, stride)
}

pub use crate::wgsl::Part;
use crate::wgsl::shader_file;

const RNG: Part = shader_file!("rng.wgsl");
const WALKER: Part = shader_file!("walker.wgsl");
const THETA: Part = shader_file!("theta.wgsl");
const THETA_UNIFORM: Part = shader_file!("theta_uniform.wgsl");
const RBM: Part = shader_file!("rbm.wgsl");
const JASTROW: Part = shader_file!("jastrow.wgsl");
const PADE: Part = shader_file!("pade.wgsl");
const SIMPLE_PAIR: Part = shader_file!("simple_pair.wgsl");
const SLATER: Part = shader_file!("slater.wgsl");
const WALK: Part = shader_file!("walk.wgsl");
const MOVES: Part = shader_file!("moves.wgsl");
const REDUCE: Part = shader_file!("reduce.wgsl");
const METRIC: Part = shader_file!("metric.wgsl");
const DMC: Part = shader_file!("dmc.wgsl");
const COMB: Part = shader_file!("comb.wgsl");

/// Walkers per block of the comb's scan (comb.wgsl: a workgroup each).
pub const SCAN_WORKGROUP: u32 = 256;

/// The constants the host and every kernel share, from their Rust definitions: the WGSL
/// files carry no copies.
const SHARED: [(&str, u32); 9] = [
    ("RESET_BLOCK", crate::rng::RESET_BLOCK),
    ("WG", WORKGROUP),
    ("FLAG_MEASURE", FLAG_MEASURE),
    ("FLAG_RESET_PARTIALS", FLAG_RESET_PARTIALS),
    ("FLAG_FIRST_OF_CALL", FLAG_FIRST_OF_CALL),
    ("FLAG_LAST_OF_CALL", FLAG_LAST_OF_CALL),
    ("FLAG_OBSERVE", FLAG_OBSERVE),
    ("HIST_COPIES", HIST_COPIES),
    ("CHUNK", SERIES_CHUNK),
];

fn shared_constants() -> String {
    let mut out = String::new();
    for (name, value) in SHARED {
        out += &format!("const {name}: u32 = {value}u;\n");
    }
    out
}

/// Opens each part of an assembled source: naga's errors number the lines of the whole, and
/// `locate` turns such a line back into the part's file and line.
const MARKER: &str = "// --- file: ";

/// The parts in order, each after its marker line.
fn assemble(parts: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, text) in parts {
        out += &format!("{MARKER}{name}\n{text}");
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The part (its file) and the line in it of line `line` (from 1) of an assembled source.
pub fn locate(source: &str, line: usize) -> Option<(&str, usize)> {
    source
        .lines()
        .take(line)
        .enumerate()
        .filter_map(|(i, text)| Some((text.strip_prefix(MARKER)?, line - 1 - i)))
        .last()
}

/// Parses and validates `source` as wgpu does when it creates a module; an error is led by
/// the file, line and column it is in (`shaders/rbm.wgsl:42:7: message`), then naga's
/// report on the assembled source.
pub fn validate(source: &str) -> Result<(naga::Module, naga::valid::ModuleInfo), String> {
    let located = |at: Option<naga::SourceLocation>, message: String, report: String| {
        let place = at.and_then(|at| {
            let (file, line) = locate(source, at.line_number as usize)?;
            Some(format!("{file}:{line}:{}: ", at.line_position))
        });
        format!("{}{message}\n{report}", place.unwrap_or_default())
    };
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        located(
            e.location(source),
            e.message().to_string(),
            e.emit_to_string(source),
        )
    })?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| {
        located(
            e.location(source),
            e.as_inner().to_string(),
            e.emit_to_string(source),
        )
    })?;
    Ok((module, info))
}

/// The reduce kernel's source.
pub fn reduce_source() -> String {
    let shared = shared_constants();
    assemble(&[("generated shared constants", &shared), REDUCE])
}

/// The metric kernel's source.
pub fn metric_source() -> String {
    assemble(&[METRIC])
}

/// Most orbitals per spin block (12 electrons) for which the determinants' loops over the
/// orbitals are unrolled by default: their arrays then take constant indices (registers
/// rather than spilled private memory), while the unrolled code grows as n^2 per loop nest.
/// On lavapipe (BENCHMARKS.md) unrolled kernels were 10 % faster at 3 orbitals, even at 6
/// and 10-15 % slower at 10; a real GPU is still to be measured.
const MAX_UNROLLED_ORBITALS: usize = 6;

/// How slater.wgsl bounds its loops over the orbitals of a move, the drift and the
/// measurement (the rebuild every REFRESH_EVERY steps always loops to the job's count: its
/// O(n^3) loops unrolled took minutes to compile on llvmpipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrbitalLoops {
    /// To the constant NB: the compiler can unroll them fully.
    Unrolled,
    /// To the orbital count of the job, a run-time value.
    Looped,
}

impl OrbitalLoops {
    /// As `forced` (`gpu.unroll_orbitals`), else unrolled up to `MAX_UNROLLED_ORBITALS`
    /// orbitals per spin block; without determinants it changes nothing.
    pub fn choose(spec: &EngineSpec, forced: Option<bool>) -> Self {
        let n = spec.wavefunction.slater.as_ref().map_or(0, |s| s.n);
        if forced.unwrap_or(n <= MAX_UNROLLED_ORBITALS) {
            Self::Unrolled
        } else {
            Self::Looped
        }
    }
}

/// What a walker kernel's source is built with besides the run: its orbital loops and where
/// it reads the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelShape {
    pub loops: OrbitalLoops,
    /// The parameters in a uniform buffer (theta_uniform.wgsl, `gpu.uniform_params`) instead
    /// of a storage buffer (theta.wgsl).
    pub uniform_params: bool,
    /// The O sums over the workgroup at each measurement (walk.wgsl, `gpu.workgroup_sums`)
    /// instead of per walker.
    pub workgroup_sums: bool,
}

impl From<OrbitalLoops> for KernelShape {
    /// `loops` with the engine's defaults otherwise.
    fn from(loops: OrbitalLoops) -> Self {
        Self {
            loops,
            uniform_params: false,
            workgroup_sums: false,
        }
    }
}

/// The walk kernel's source for `spec`, shaped as `shape` says.
pub fn walk_source(spec: &EngineSpec, shape: KernelShape) -> String {
    let sampler = spec.sampler.kind.info();
    let mut tail = Vec::new();
    if let Step::Moves { .. } = sampler.step {
        tail.push(MOVES);
    }
    tail.extend([sampler.wgsl, WALK]);
    walker_source(spec, shape, &tail)
}

/// The DMC generation kernel's source for `spec`, whose sampler must be importance sampling
/// at DT = tau (the moves are its Langevin proposals).
pub fn dmc_source(spec: &EngineSpec, shape: KernelShape) -> String {
    assert_eq!(spec.sampler.kind, crate::sampler::SamplerKind::Importance);
    let sums = format!(
        "const DMC_SUMS: u32 = {}u;\nconst DMC_BLOCK: u32 = {}u;\n",
        super::layout::DMC_SUMS,
        crate::rng::DMC_BLOCK
    );
    walker_source(
        spec,
        shape,
        &[
            spec.sampler.kind.info().wgsl,
            ("generated DMC constants", &sums),
            DMC,
        ],
    )
}

/// The comb kernels' source for walkers of `coordinates` coordinates.
pub fn comb_source(coordinates: usize) -> String {
    let header =
        format!("const M: u32 = {coordinates}u;\nconst SCAN_WG: u32 = {SCAN_WORKGROUP}u;\n");
    assemble(&[("generated comb constants", &header), COMB])
}

/// A kernel on one walker per invocation: the shared constants, the run's header, the
/// walker, the factors of `spec` with their glue, then `tail` (the sampler and the kernel).
fn walker_source(spec: &EngineSpec, shape: KernelShape, tail: &[(&str, &str)]) -> String {
    let shared = shared_constants();
    let factors = factor_parts(&spec.wavefunction, shape.loops);
    let header = header(spec, &factors, shape.workgroup_sums);
    let glue = glue(&factors);
    let mut parts = vec![
        ("generated shared constants", shared.as_str()),
        ("generated run constants", header.as_str()),
        RNG,
        WALKER,
        if shape.uniform_params {
            THETA_UNIFORM
        } else {
            THETA
        },
    ];
    parts.extend(factors.iter().flat_map(|f| f.files.iter().copied()));
    parts.push(("generated glue", glue.as_str()));
    parts.extend(tail);
    assemble(&parts)
}

/// An upper estimate of the loop iterations one walker runs per Monte Carlo step (with a
/// measurement), mirroring the loops of the WGSL files: llvmpipe ends an invocation's loops
/// after 65,535 iterations in all, so CPU adapters size their dispatches by it.
pub fn loop_iterations_per_step(spec: &EngineSpec, workgroup_sums: bool) -> u64 {
    let wf = &spec.wavefunction;
    let (p, d) = (spec.system.particles as u64, spec.system.dims as u64);
    let (m, n) = (p * d, wf.layout.hidden as u64);
    let single = spec.sampler.moves == Moves::Single;
    let len = if single { d } else { m };
    // Per move: the proposal, the RBM's fields and ln, the drift twice (when it has one).
    let mut per_move = 2 * len + n * if single { len } else { m } + m + n;
    let mut drift = n * len;
    let mut measure = m * n + 2 * (m + n + m * n) + m;
    if wf.jastrow.is_some() {
        per_move += if single { 2 * p * d } else { p * p * d };
        drift += (len / d) * p * d;
        measure += p * p * d;
    }
    if let Some(sl) = &wf.slater {
        let (nb, hd) = (sl.n as u64, 7u64);
        let row = d * hd + nb * d * d;
        let build = 2 * (nb * row + 2 * nb * nb + nb * nb * nb);
        per_move += if single { row + 2 * nb * nb } else { build };
        drift += (len / d) * (row + nb * d * d);
        measure += p * (row + nb * d * d);
    }
    let sampler = &spec.sampler;
    let moves = sampler
        .kind
        .moves_per_step(sampler.moves, spec.system.particles) as u64;
    let step = match sampler.kind.info().step {
        Step::Moves { drift: true, .. } => moves * (per_move + 2 * drift + 2 * len),
        Step::Moves { drift: false, .. } => moves * per_move,
        Step::Whole { loops, .. } => loops(m, n),
    };
    // The observables: distances and bins, and at most one histogram flush per measurement.
    if let Some(o) = &spec.observables {
        measure += p * p * d + p * d + o.bins() as u64 / WORKGROUP as u64 + 1;
    }
    if workgroup_sums {
        // The workgroup's O sums: per round of the tile, the rows' columns for each of this
        // thread's parameters.
        let (rows, _) = derivative_tile(spec.parameters());
        let rounds = WORKGROUP as u64 / rows as u64;
        let columns = spec.parameters().div_ceil(WORKGROUP as usize) as u64;
        measure += rounds * (1 + columns * (rows as u64 + 1));
    }
    // The measurement, its series flush (a column of WG values per SERIES_CHUNK
    // measurements) and the health check.
    step + measure + 2 * (WORKGROUP / SERIES_CHUNK) as u64 + m
}

/// How a glue function combines its factors' calls.
enum Combine {
    /// Each call is a statement.
    Each,
    /// The calls' sum, after this text (an assignment or `return`).
    Sum(&'static str),
    /// Whether any call is true (false without calls).
    Any,
}

/// The functions walker.wgsl and the samplers call: (signature, statements first, the hook
/// every factor may implement as `fn {prefix}_{hook}({arguments})`, how the calls combine).
const HOOKS: [(&str, &str, &str, &str, Combine); 8] = [
    ("begin()", "load_theta();", "begin", "", Combine::Each),
    (
        "propose(start: u32, len: u32)",
        "",
        "propose",
        "start, len",
        Combine::Sum("ln_psi_y ="),
    ),
    // y equals x outside the moved coordinates (walker.wgsl), so only those are copied.
    (
        "accept(start: u32, len: u32)",
        "for (var m = start; m < start + len; m++) { x[m] = y[m]; } ln_psi = ln_psi_y;",
        "accept",
        "start, len",
        Combine::Each,
    ),
    (
        "refresh_factors() -> f32",
        "",
        "refresh",
        "",
        Combine::Sum("return"),
    ),
    (
        "drift(at_y: bool, k: u32) -> vec3<f32>",
        "",
        "drift",
        "at_y, k",
        Combine::Sum("return"),
    ),
    (
        "measure_laplacian() -> f32",
        "",
        "measure",
        "",
        Combine::Sum("return"),
    ),
    (
        "log_derivatives(d: f32)",
        "",
        "log_derivatives",
        "d",
        Combine::Each,
    ),
    // Only a factor with nodes (the determinants) implements it.
    (
        "crosses_node() -> bool",
        "",
        "crosses_node",
        "",
        Combine::Any,
    ),
];

/// A factor's WGSL: its files, the prefix of its hook functions, and its header constants.
struct FactorPart {
    prefix: &'static str,
    files: Vec<Part>,
    header: Vec<String>,
}

impl FactorPart {
    /// Whether the factor implements `hook` (a function `{prefix}_{hook}` in its files).
    fn implements(&self, hook: &str) -> bool {
        let name = format!("fn {}_{hook}(", self.prefix);
        self.files.iter().any(|(_, text)| text.contains(&name))
    }
}

/// The WGSL factor list of `wf`, in the order of psi: the twin of `Wavefunction::factors`.
/// (The RBM's constants are the run's: the kernels size theta and the sums by them.)
fn factor_parts(wf: &crate::physics::Wavefunction, loops: OrbitalLoops) -> Vec<FactorPart> {
    let f32_lit = |v: f64| format!("{:e}f", v as f32);
    let mut parts = vec![FactorPart {
        prefix: "rbm",
        files: vec![RBM],
        header: vec![],
    }];
    if let Some(j) = &wf.jastrow {
        let pair = match j.form {
            PairForm::Pade => PADE,
            PairForm::Simple => SIMPLE_PAIR,
        };
        let range = wf.layout.jastrow_range();
        parts.push(FactorPart {
            prefix: "jastrow",
            files: vec![pair, JASTROW],
            header: vec![
                format!("const JASTROW_INDEX: u32 = {}u;", range.start),
                format!("const JASTROW_K: u32 = {}u;", range.len()),
                format!("const UP: u32 = {}u;", j.up),
                format!("const A_SAME: f32 = {};", f32_lit(j.a_same)),
                format!("const A_OPPOSITE: f32 = {};", f32_lit(j.a_opposite)),
            ],
        });
    }
    if let Some(sl) = &wf.slater {
        parts.push(FactorPart {
            prefix: "slater",
            files: vec![SLATER],
            header: slater_header(sl, loops).into(),
        });
    }
    parts
}

/// The glue functions: each hook calls the factors that implement it.
fn glue(factors: &[FactorPart]) -> String {
    let mut out =
        String::from("// Generated by src/engine/gpu/shader.rs: the factors of this run.\n");
    for (signature, first, hook, arguments, combine) in &HOOKS {
        let calls: Vec<String> = factors
            .iter()
            .filter(|f| f.implements(hook))
            .map(|f| format!("{}_{hook}({arguments})", f.prefix))
            .collect();
        let body = match combine {
            Combine::Sum(lead) => format!("{lead} {};", calls.join(" + ")),
            Combine::Any => format!(
                "return false{};",
                calls.iter().map(|c| format!(" || {c}")).collect::<String>()
            ),
            Combine::Each => calls
                .iter()
                .map(|c| format!("{c};"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        out += &format!("fn {signature} {{ {first} {body} }}\n");
    }
    out
}

/// The observables' constants: histogram geometry (bins, scales, offsets) and where their
/// sums start in `sums`; without observables, a one-counter histogram nobody touches.
fn observables_header(spec: &EngineSpec) -> Vec<String> {
    let f32_lit = |v: f64| format!("{:e}f", v as f32);
    let base = super::layout::reduced_components(spec.parameters());
    let off = ObservablesSpec {
        radial_bins: 1,
        r_max: 1.0,
        pair_bins: 1,
        pair_max: 1.0,
        grid_bins: 0,
        histogram_every: 1,
    };
    let o = spec.observables.as_ref().unwrap_or(&off);
    vec![
        format!("const OBSERVABLES: bool = {};", spec.observables.is_some()),
        format!("const OBS_BASE: u32 = {base}u;"),
        format!("const OBS_SCALARS: u32 = {SCALARS}u;"),
        format!("const HIST_BINS: u32 = {}u;", o.bins()),
        format!("const HIST_EVERY: u32 = {}u;", o.histogram_every),
        format!("const RADIAL_BINS: u32 = {}u;", o.radial_bins),
        format!(
            "const RADIAL_SCALE: f32 = {};",
            f32_lit(o.radial_bins as f64 / o.r_max)
        ),
        format!("const R_MAX: f32 = {};", f32_lit(o.r_max)),
        format!("const PAIR_OFFSET: u32 = {}u;", o.pair_offset()),
        format!("const PAIR_BINS: u32 = {}u;", o.pair_bins),
        format!(
            "const PAIR_SCALE: f32 = {};",
            f32_lit(o.pair_bins as f64 / o.pair_max)
        ),
        format!("const GRID_OFFSET: u32 = {}u;", o.grid_offset()),
        format!("const GRID_BINS: u32 = {}u;", o.grid_bins),
        format!(
            "const GRID_SCALE: f32 = {};",
            f32_lit(o.grid_bins as f64 / (2.0 * o.r_max))
        ),
    ]
}

/// The most parameters the walk kernel copies into private memory (walk.wgsl, `theta_at`):
/// beyond, a private array would spill, and on a GPU spilled per-thread copies cost more than
/// the shared storage reads.
const MAX_PRIVATE_THETA: usize = 128;

fn header(spec: &EngineSpec, factors: &[FactorPart], workgroup_sums: bool) -> String {
    let sys = &spec.system;
    let wf = &spec.wavefunction;
    let layout = wf.layout;
    let m = spec.coordinates();
    let n = layout.hidden;
    let k = spec.parameters();
    let (tile_rows, tile_stride) = if workgroup_sums {
        derivative_tile(k)
    } else {
        (1, 1)
    };
    let f32_lit = |v: f64| format!("{:e}f", v as f32);
    let sigma = wf.rbm.sigma;
    let mut lines = vec![
        "// Generated by src/engine/gpu/shader.rs for this run.".to_string(),
        format!("const P: u32 = {}u;", sys.particles),
        format!("const D: u32 = {}u;", sys.dims),
        format!("const M: u32 = {m}u;"),
        format!("const N: u32 = {n}u;"),
        format!("const NA: u32 = {}u;", n.max(1)),
        format!("const K: u32 = {k}u;"),
        format!("const THETA_IN_PRIVATE: bool = {};", k <= MAX_PRIVATE_THETA),
        format!("const K4: u32 = {}u;", k.div_ceil(4)),
        format!("const WORKGROUP_SUMS: bool = {workgroup_sums};"),
        format!("const WALKER_SCALARS: u32 = {WALKER_SCALARS}u;"),
        // Per walker: every sum, or only the scalars when the workgroup sums the O_i.
        format!(
            "const SUMS_LEN: u32 = {}u;",
            if workgroup_sums {
                WALKER_SCALARS
            } else {
                super::layout::reduced_components(k)
            }
        ),
        format!(
            "const KW: u32 = {}u;",
            k.div_ceil(WORKGROUP as usize).max(1)
        ),
        // The tile is one float when unused: workgroup memory costs occupancy.
        format!("const TILE_ROWS: u32 = {tile_rows}u;"),
        format!("const TILE_STRIDE: u32 = {tile_stride}u;"),
        format!(
            "const KP: u32 = {}u;",
            if k <= MAX_PRIVATE_THETA { k } else { 1 }
        ),
        format!("const R: u32 = {}u;", super::layout::components(spec)),
        format!("const F: f32 = {};", f32_lit(wf.rbm.form.factor())),
        format!("const INV_S2: f32 = {};", f32_lit(1.0 / (sigma * sigma))),
        format!("const TRAIN_SIGMA: bool = {};", layout.train_sigma),
        format!(
            "const LN_SIGMA_INDEX: u32 = {}u;",
            layout.ln_sigma_index().unwrap_or(0)
        ),
        format!("const OMEGA2: f32 = {};", f32_lit(sys.omega * sys.omega)),
        format!("const INTERACTION: bool = {};", sys.interaction),
        format!("const STEP: f32 = {};", f32_lit(spec.sampler.step)),
        format!("const DT: f32 = {};", f32_lit(spec.sampler.dt)),
        format!(
            "const MEASURE_EVERY: u32 = {}u;",
            spec.sampler.measure_every
        ),
        format!(
            "const SINGLE_MOVES: bool = {};",
            spec.sampler.moves == Moves::Single
        ),
        format!("const REFRESH_EVERY: u32 = {REFRESH_EVERY}u;"),
        format!(
            "const INIT_SPREAD: f32 = {};",
            f32_lit(spec.initial_spread())
        ),
        format!("const SEED_LO: u32 = {}u;", spec.seed as u32),
        format!("const SEED_HI: u32 = {}u;", (spec.seed >> 32) as u32),
    ];
    lines.extend(observables_header(spec));
    lines.extend(factors.iter().flat_map(|f| f.header.iter().cloned()));
    lines.join("\n") + "\n"
}

/// The determinants' constants: block size, Hermite degrees, the orbital table, how the
/// orbital loops are bounded.
fn slater_header(sl: &crate::physics::Slater, loops: OrbitalLoops) -> [String; 8] {
    let f32_lit = |v: f64| format!("{:e}f", v as f32);
    let degree = sl.orbitals.iter().flatten().copied().max().unwrap_or(0);
    let orbitals: Vec<String> = sl
        .orbitals
        .iter()
        .map(|q| format!("vec3<u32>({}u, {}u, {}u)", q[0], q[1], q[2]))
        .collect();
    [
        format!("const NB: u32 = {}u;", sl.n),
        format!("const NB2: u32 = {}u;", sl.n * sl.n),
        format!("const DINV: u32 = {}u;", 2 * sl.n * sl.n),
        // At least H_0..H_2, which the derivative formulas index.
        format!("const HD: u32 = {}u;", (degree + 1).max(3)),
        format!("const OMEGA: f32 = {};", f32_lit(sl.omega)),
        format!("const SQRT_OMEGA: f32 = {};", f32_lit(sl.omega.sqrt())),
        format!(
            "const UNROLL_ORBITALS: bool = {};",
            loops == OrbitalLoops::Unrolled
        ),
        format!(
            "var<private> orbitals: array<vec3<u32>, NB> = array<vec3<u32>, NB>({});",
            orbitals.join(", ")
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::gpu::layout::{CombJob, DmcJob, Job, Products, Reduce};

    fn spec(overrides: &[&str]) -> EngineSpec {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        EngineSpec::from_config(&Config::load(None, &overrides).unwrap())
    }

    /// The walk kernel for `spec` as the engine builds it by default.
    fn walk(spec: &EngineSpec) -> String {
        walk_source(spec, OrbitalLoops::choose(spec, None).into())
    }

    /// Every shape a walker kernel can take.
    fn every_shape() -> Vec<KernelShape> {
        let loops = [OrbitalLoops::Unrolled, OrbitalLoops::Looped];
        loops
            .into_iter()
            .flat_map(|loops| {
                [(false, false), (true, false), (false, true)].map(
                    |(uniform_params, workgroup_sums)| KernelShape {
                        loops,
                        uniform_params,
                        workgroup_sums,
                    },
                )
            })
            .collect()
    }

    fn valid(source: &str, label: &str) -> naga::Module {
        validate(source)
            .unwrap_or_else(|e| panic!("{label}: {e}"))
            .0
    }

    /// Every sampler, move mode and form, with awkward sizes (N = 0, D = 1 and 3, P = 1),
    /// parses and validates: shader bugs show up without a GPU.
    #[test]
    fn every_shader_variant_validates() {
        let shapes = [
            [
                "system.particles=2",
                "system.dims=2",
                "wavefunction.hidden=2",
            ],
            [
                "system.particles=1",
                "system.dims=3",
                "wavefunction.hidden=0",
            ],
            [
                "system.particles=5",
                "system.dims=1",
                "wavefunction.hidden=7",
            ],
        ];
        // Every sampler of the table with each of its move modes, in the form it needs
        // (both forms across the modes where it takes either); whether it takes factors.
        let samplers: Vec<([String; 3], bool)> = crate::sampler::SamplerKind::ALL
            .into_iter()
            .flat_map(|kind| {
                let info = kind.info();
                let moves: &[&str] = match info.step {
                    Step::Moves { .. } => &["all", "single"],
                    Step::Whole { .. } => &["all"],
                };
                moves.iter().enumerate().map(move |(i, m)| {
                    let sqrt = info.needs_sqrt.is_some() || i == 1;
                    let settings = [
                        format!("sampler.kind={}", info.name),
                        format!("sampler.moves={m}"),
                        format!("wavefunction.form={}", if sqrt { "sqrt" } else { "direct" }),
                    ];
                    (settings, !info.rbm_alone)
                })
            })
            .collect();
        assert!(samplers.len() >= 5, "every sampler and move mode");
        for shape in &shapes {
            for (sampler, _) in &samplers {
                let mut overrides: Vec<&str> = shape.to_vec();
                overrides.extend(sampler.iter().map(String::as_str));
                overrides.push("system.interaction=false");
                let label = overrides.join(" ");
                valid(&walk(&spec(&overrides)), &label);
            }
            // Without observables (a one-counter histogram).
            let mut overrides = shape.to_vec();
            overrides.extend(["system.interaction=false", "observables.enabled=false"]);
            valid(&walk(&spec(&overrides)), &overrides.join(" "));
        }
        // The Jastrow factor, a trained width and Slater determinants, with every sampler
        // that allows them, the orbital loops unrolled and looped.
        let factors = [
            &["system.particles=3", "wavefunction.jastrow=pade"][..],
            &[
                "system.dims=3",
                "wavefunction.train_sigma=true",
                "wavefunction.hidden=0",
            ],
            &[
                "system.particles=6",
                "system.statistics=fermions",
                "wavefunction.jastrow=pade",
            ],
            &[
                "system.particles=8",
                "system.dims=3",
                "system.statistics=fermions",
                "system.interaction=false",
            ],
            &[
                "system.particles=4",
                "system.dims=1",
                "system.statistics=fermions",
                "system.interaction=false",
            ],
        ];
        for extra in factors {
            for (sampler, _) in samplers.iter().filter(|(_, factors)| *factors) {
                let mut overrides: Vec<&str> = extra.to_vec();
                overrides.extend(sampler[..2].iter().map(String::as_str));
                let label = overrides.join(" ");
                for shape in every_shape() {
                    valid(&walk_source(&spec(&overrides), shape), &label);
                }
            }
        }
        valid(&reduce_source(), "reduce");
        // The DMC generation kernel for each factor set and move mode, and the comb.
        for extra in factors.into_iter().chain([&[][..]]) {
            for moves in ["sampler.moves=all", "sampler.moves=single"] {
                let mut overrides: Vec<&str> = extra.to_vec();
                overrides.extend(["sampler.kind=importance", moves]);
                let label = format!("dmc {}", overrides.join(" "));
                for shape in every_shape() {
                    valid(&dmc_source(&spec(&overrides), shape), &label);
                }
            }
        }
        valid(&comb_source(6), "comb");
    }

    /// The glue sums exactly the factors present.
    #[test]
    fn glue_calls_only_the_factors_present() {
        let plain = walk(&spec(&[]));
        assert!(plain.contains("ln_psi_y = rbm_propose(start, len);"));
        for call in [
            "jastrow_begin()",
            "slater_begin()",
            "jastrow_propose",
            "slater_propose",
        ] {
            assert!(!plain.contains(call), "{call} in the plain RBM's kernel");
        }
        let all = walk(&spec(&[
            "system.particles=6",
            "system.statistics=fermions",
            "wavefunction.jastrow=pade",
        ]));
        assert!(all.contains(
            "ln_psi_y = rbm_propose(start, len) + jastrow_propose(start, len) + \
             slater_propose(start, len);"
        ));
        assert!(all.contains("const NB: u32 = 3u;"));
    }

    /// The orbital loops are unrolled up to six orbitals per spin block unless the setting
    /// says otherwise, and the header says which.
    #[test]
    fn orbital_loops_unroll_up_to_six_orbitals() {
        let fermions = |n: &str| {
            spec(&[
                &format!("system.particles={n}"),
                "system.statistics=fermions",
            ])
        };
        let (twelve, twenty) = (fermions("12"), fermions("20"));
        assert_eq!(OrbitalLoops::choose(&twelve, None), OrbitalLoops::Unrolled);
        assert_eq!(OrbitalLoops::choose(&twenty, None), OrbitalLoops::Looped);
        assert_eq!(
            OrbitalLoops::choose(&twelve, Some(false)),
            OrbitalLoops::Looped
        );
        assert_eq!(
            OrbitalLoops::choose(&twenty, Some(true)),
            OrbitalLoops::Unrolled
        );
        assert!(walk(&twelve).contains("const UNROLL_ORBITALS: bool = true;"));
        assert!(walk(&twenty).contains("const UNROLL_ORBITALS: bool = false;"));
    }

    fn members(module: &naga::Module, name: &str) -> (u32, Vec<(String, u32)>) {
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"))
            .1;
        match &ty.inner {
            naga::TypeInner::Struct { members, span } => (
                *span,
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect(),
            ),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    /// Asserts that the WGSL struct `name` of `module` has `size` bytes and the `expected`
    /// (field, offset) list.
    fn assert_layout(module: &naga::Module, name: &str, size: usize, expected: &[(&str, usize)]) {
        let (got_size, fields) = members(module, name);
        assert_eq!(got_size as usize, size, "{name}");
        let expected: Vec<(String, u32)> = expected
            .iter()
            .map(|(n, o)| (n.to_string(), *o as u32))
            .collect();
        assert_eq!(fields, expected, "{name}");
    }

    /// The Rust mirrors have the WGSL structs' size, field names and offsets.
    #[test]
    fn host_structs_match_the_shader_layouts() {
        use std::mem::{offset_of, size_of};
        let walk = valid(&walk(&spec(&[])), "walk");
        assert_layout(
            &walk,
            "Job",
            size_of::<Job>(),
            &[
                ("walkers", offset_of!(Job, walkers)),
                ("steps", offset_of!(Job, steps)),
                ("step_lo", offset_of!(Job, step_lo)),
                ("step_hi", offset_of!(Job, step_hi)),
                ("call_step", offset_of!(Job, call_step)),
                ("flags", offset_of!(Job, flags)),
                ("groups_x", offset_of!(Job, groups_x)),
                ("groups", offset_of!(Job, groups)),
                ("call_measurements", offset_of!(Job, call_measurements)),
                ("first_walker", offset_of!(Job, first_walker)),
                ("shift", offset_of!(Job, shift)),
                ("slater_n", offset_of!(Job, slater_n)),
                ("metric_stride", offset_of!(Job, metric_stride)),
                ("metric_every", offset_of!(Job, metric_every)),
                ("metric_per_walker", offset_of!(Job, metric_per_walker)),
                ("obs_blocks", offset_of!(Job, obs_blocks)),
            ],
        );
        let importance = spec(&["sampler.kind=importance"]);
        let dmc = valid(&dmc_source(&importance, OrbitalLoops::Looped.into()), "dmc");
        assert_layout(
            &dmc,
            "Job",
            size_of::<DmcJob>(),
            &[
                ("walkers", offset_of!(DmcJob, walkers)),
                ("first_walker", offset_of!(DmcJob, first_walker)),
                ("generation_lo", offset_of!(DmcJob, generation_lo)),
                ("generation_hi", offset_of!(DmcJob, generation_hi)),
                ("groups_x", offset_of!(DmcJob, groups_x)),
                ("groups", offset_of!(DmcJob, groups)),
                ("slater_n", offset_of!(DmcJob, slater_n)),
                ("moves", offset_of!(DmcJob, moves)),
                ("tau_eff", offset_of!(DmcJob, tau_eff)),
                ("trial_energy", offset_of!(DmcJob, trial_energy)),
                ("reference", offset_of!(DmcJob, reference)),
                ("cutoff", offset_of!(DmcJob, cutoff)),
            ],
        );
        let comb = valid(&comb_source(4), "comb");
        assert_layout(
            &comb,
            "Comb",
            size_of::<CombJob>(),
            &[
                ("walkers", offset_of!(CombJob, walkers)),
                ("groups_x", offset_of!(CombJob, groups_x)),
                ("blocks", offset_of!(CombJob, blocks)),
                ("u", offset_of!(CombJob, u)),
            ],
        );
        let metric = valid(&metric_source(), "metric");
        assert_layout(
            &metric,
            "Products",
            size_of::<Products>(),
            &[
                ("rows", offset_of!(Products, rows)),
                ("k", offset_of!(Products, k)),
                ("first_row", offset_of!(Products, first_row)),
                ("row_count", offset_of!(Products, row_count)),
                ("accumulate", offset_of!(Products, accumulate)),
                ("_pad0", offset_of!(Products, _pad0)),
                ("_pad1", offset_of!(Products, _pad1)),
                ("_pad2", offset_of!(Products, _pad2)),
            ],
        );
        let reduce = valid(&reduce_source(), "reduce");
        assert_layout(
            &reduce,
            "Reduce",
            size_of::<Reduce>(),
            &[
                ("count", offset_of!(Reduce, count)),
                ("segments", offset_of!(Reduce, segments)),
                ("stride_j", offset_of!(Reduce, stride_j)),
                ("stride_i", offset_of!(Reduce, stride_i)),
                ("out_offset", offset_of!(Reduce, out_offset)),
                ("groups_x", offset_of!(Reduce, groups_x)),
                ("span", offset_of!(Reduce, span)),
                ("_pad0", offset_of!(Reduce, _pad0)),
            ],
        );
    }

    #[test]
    fn header_carries_the_run_constants() {
        let source = walk(&spec(&["seed=4294967301", "wavefunction.hidden=0"]));
        assert!(source.contains("const SEED_LO: u32 = 5u;"));
        assert!(source.contains("const SEED_HI: u32 = 1u;"));
        assert!(source.contains("const N: u32 = 0u;"));
        assert!(source.contains("const NA: u32 = 1u;"));
    }

    /// An error names the file it is in and its line and column there: a parse error and
    /// a validation error (workgroup memory of no fixed size) in the second part; and
    /// every line of a real kernel maps back to its file's line.
    #[test]
    fn errors_name_the_shader_file_and_line() {
        let first = ("shaders/a.wgsl", "fn f() {}\n\n");
        let parse = "fn g() {\n    let x: u32 = 1.5;\n}\n";
        let error = validate(&assemble(&[first, ("shaders/b.wgsl", parse)])).unwrap_err();
        assert!(error.starts_with("shaders/b.wgsl:2:9: "), "{error}");
        let unsized_shared = "fn g() {}\n\nvar<workgroup> w: array<f32>;\n";
        let error = validate(&assemble(&[first, ("shaders/c.wgsl", unsized_shared)]));
        let error = error.unwrap_err();
        assert!(error.starts_with("shaders/c.wgsl:3:"), "{error}");
        assert!(
            error.contains("Global variable"),
            "not the validator's: {error}"
        );

        let source = walk(&spec(&["wavefunction.jastrow=pade"]));
        for (file, text) in [RBM, JASTROW, WALK] {
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with("fn "))
            {
                let at = source.lines().position(|l| l == line).expect("assembled") + 1;
                assert_eq!(locate(&source, at), Some((file, i + 1)), "{line}");
            }
        }
    }

    /// The value of the u32 constant `name` of `module`.
    fn constant(module: &naga::Module, name: &str) -> u32 {
        let (_, c) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no constant {name}"));
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref other => panic!("{name} = {other:?}"),
        }
    }

    /// The kernels see the host's values of the shared constants.
    #[test]
    fn shared_constants_have_the_host_values() {
        let walk = valid(&walk(&spec(&[])), "walk");
        let reduce = valid(&reduce_source(), "reduce");
        for (name, value) in SHARED {
            assert_eq!(constant(&walk, name), value, "{name}");
        }
        assert_eq!(constant(&reduce, "WG"), WORKGROUP);
    }
}
