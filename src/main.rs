//! The `rbm-vmc` command line: parse, call the library, report errors once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};

use rbm_vmc::config::{Config, EngineChoice};
use rbm_vmc::control::Control;
use rbm_vmc::driver::Context;
use rbm_vmc::report::{Console, OutputDir, stdout_failure, write_stderr, write_stdout};
use rbm_vmc::study::{self, BenchOptions, Sweep, ValidateOptions};
use rbm_vmc::team::Team;
use rbm_vmc::{Error, driver};

/// Variational Monte Carlo with an RBM trial wave function, on the GPU and the CPU.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Optimise the RBM parameters, then measure the energy (production run).
    Run(RunArgs),
    /// Measure the energy at fixed parameters, without optimising.
    Sample(SampleArgs),
    /// Fixed-node diffusion Monte Carlo from the trial wave function at fixed parameters
    /// (`--from RUN_DIR`: an optimised run's); writes dmc.csv, dmc.svg and result.json.
    Dmc(DmcArgs),
    /// List the GPU adapters (name, backend, type, driver, limits) and the one `auto` takes.
    Devices,
    /// Validate a config (and the parameters file it names) and estimate the work and memory
    /// of a run, without running it: exit 0 when it would run, 2 with the reason otherwise.
    Check(CheckArgs),
    /// Measure CPU and GPU throughput over a ladder of walker counts and check that the
    /// engines agree; writes bench.json, bench.csv and throughput.svg.
    Bench(BenchArgs),
    /// Run a grid of configs (a sweep file) one point after another; writes sweep.csv,
    /// sweep.json, each point's files and plots. `--resume` continues an interrupted sweep;
    /// `--worker` shares the points with other processes, `--collect` writes the table.
    Sweep(SweepArgs),
    /// Reblock the production traces (trace.csv) of runs and merge the runs of one system
    /// measured with one set of parameters; writes analysis.json and analysis.csv.
    Analyze(AnalyzeArgs),
    /// Run the reference systems (exact, analytic, diffusion Monte Carlo) and check the
    /// energies against them within stated tolerances; writes validation.csv and
    /// validation.md, exit 1 when a case fails.
    Validate(ValidateArgs),
}

#[derive(Args, Debug)]
struct AnalyzeArgs {
    /// Output directories of `run`, `sample` or `dmc` runs (several: merged, when they share
    /// the system and the parameters measured).
    #[arg(required = true, value_name = "RUN_DIR")]
    runs: Vec<PathBuf>,

    /// Leave out the first N rows of every trace (DMC: N generations after dmc.equilibration).
    #[arg(long, value_name = "N", default_value_t = 0)]
    discard: usize,

    #[command(flatten)]
    dir: DirArgs,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// Only the short cases (seconds on 2 CPU cores): exact non-interacting systems (fermions
    /// included), the two-electron dot with and without Jastrow and by DMC, 6 electrons.
    /// Without it, 12 and 20 electrons, DMC of 6, 12 and 20, and other trap frequencies are
    /// added (about 2.5 minutes on 2 CPU cores; --engine gpu runs them on a GPU).
    #[arg(long)]
    quick: bool,

    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    dir: DirArgs,
}

#[derive(Args, Debug)]
struct OutputArgs {
    /// Override a config value: dotted key, JSON value (strings need no quotes), e.g.
    /// `--set system.omega=0.5 --set sampler.kind=metropolis`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    #[command(flatten)]
    dir: DirArgs,
}

/// Where a command writes, and how loudly.
#[derive(Args, Debug)]
struct DirArgs {
    /// Output directory (default: runs/<UTC timestamp>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Write into an output directory that already holds files.
    #[arg(long)]
    force: bool,

    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// JSON config file; without one the built-in default is checked.
    config: Option<PathBuf>,

    /// Override a config value (dotted key, JSON value), as for `run`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// Check `sample --from DIR`: the measurement of the run in DIR at its parameters.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    from: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// JSON config of the system to benchmark (default: the built-in two-electron dot).
    config: Option<PathBuf>,

    /// Walker counts: a comma list of numbers and doubling ranges, e.g. `1024,4096` or
    /// `256..65536` (default 256..4194304). Larger counts are skipped once a point exceeds
    /// the time budget or the memory of an engine.
    #[arg(long, value_name = "LIST")]
    walkers: Option<String>,

    /// Engines: a comma list of `cpu` (all threads), `cpu:THREADS`, `gpu` (the adapter
    /// `auto` takes, or lavapipe when there is no GPU) and `gpu:ADAPTER` (default
    /// `cpu:1,cpu,gpu`).
    #[arg(long, value_name = "LIST")]
    engines: Option<String>,

    /// Time budget per point in seconds (warm-up and repeats together).
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    seconds: f64,

    /// Timed repeats per point (the median is reported with the spread).
    #[arg(long, value_name = "N", default_value_t = 5)]
    repeats: usize,

    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
struct SweepArgs {
    /// Sweep file: a base config, config overrides and a grid over config keys.
    file: PathBuf,

    #[command(flatten)]
    engine: EngineArgs,

    /// Continue the sweep in --out DIR, skipping the points it has finished.
    #[arg(long, requires = "out")]
    resume: bool,

    /// Work the sweep in --out DIR together with other `--worker` processes (on this machine
    /// or others sharing the file system): each runs points no other has claimed, a dead
    /// worker's point is taken over, and the worker that finishes the last point writes the
    /// table.
    #[arg(long, requires = "out", conflicts_with_all = ["resume", "force"])]
    worker: bool,

    /// Write sweep.csv, sweep.json and the figures in --out DIR from the points finished so
    /// far (by workers or an interrupted sweep); runs no point.
    #[arg(long, requires = "out", conflicts_with_all = ["resume", "force", "worker"])]
    collect: bool,

    #[command(flatten)]
    output: OutputArgs,

    #[command(flatten)]
    budget: BudgetArgs,
}

/// The engine options every command that runs walkers takes.
#[derive(Args, Debug)]
struct EngineArgs {
    /// Which engine runs the walkers: `auto` takes a GPU when there is one, else the CPU.
    #[arg(long, value_enum, value_name = "ENGINE")]
    engine: Option<EngineArg>,

    /// CPU engine worker threads (0: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// GPU adapter to use: the first whose name contains NAME (see `rbm-vmc devices`).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
}

impl EngineArgs {
    /// `set` followed by these options as config overrides.
    fn overrides(&self, set: &[String]) -> Vec<String> {
        let mut overrides = set.to_vec();
        if let Some(engine) = self.engine {
            let name = format!("{engine:?}").to_lowercase();
            overrides.push(format!("engine={name}"));
        }
        if let Some(threads) = self.threads {
            overrides.push(format!("threads={threads}"));
        }
        if let Some(adapter) = &self.adapter {
            overrides.push(format!(
                "gpu.adapter={}",
                serde_json::Value::from(adapter.as_str())
            ));
        }
        overrides
    }
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// JSON config file; without one the built-in default (two electrons in 2D) runs.
    config: Option<PathBuf>,

    #[command(flatten)]
    engine: EngineArgs,

    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    common: ConfigArgs,

    /// Continue the run whose output directory is DIR from its last checkpoint (takes no
    /// config or --set; --engine, --threads and --adapter may change).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "set", "out", "force"])]
    resume: Option<PathBuf>,

    #[command(flatten)]
    budget: BudgetArgs,
}

#[derive(Args, Debug)]
struct BudgetArgs {
    /// Stop cleanly after this many seconds of wall time and exit 130, keeping what is done
    /// so far; the message says what that is and, where the command can continue, how.
    #[arg(long, value_name = "S")]
    max_seconds: Option<f64>,
}

impl BudgetArgs {
    fn control(&self, stop: &Arc<AtomicBool>) -> Result<Control, Error> {
        if let Some(s) = self.max_seconds
            && !(s.is_finite() && s > 0.0)
        {
            return Err(Error::input(format!(
                "--max-seconds {}: must be a finite number of seconds > 0 (leave it out for no \
                 limit)",
                rbm_vmc::report::compact(s)
            )));
        }
        Ok(Control::new(stop.clone(), self.max_seconds))
    }
}

#[derive(Args, Debug)]
struct SampleArgs {
    #[command(flatten)]
    common: ConfigArgs,

    /// Parameters file (`params.json` of an earlier run); default: the config's initial ones.
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,

    /// Measure the parameters of the run in DIR (its params.json) with that run's config
    /// (from its result.json); --set and the engine options still apply.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "params"])]
    from: Option<PathBuf>,

    #[command(flatten)]
    budget: BudgetArgs,
}

impl SampleArgs {
    /// The config, the parameters file and every file the command reads: a run's config and
    /// parameters with `--from`, else the config and `--params`.
    fn load(&self) -> Result<(Config, Option<PathBuf>, Vec<PathBuf>), Error> {
        let c = &self.common;
        let (config, params, mut inputs) = match &self.from {
            Some(dir) => {
                let (config, params) = c.load_run(dir)?;
                (config, Some(params), vec![dir.join("result.json")])
            }
            None => {
                let config = c.load()?;
                let inputs = read_files(c.config.as_deref(), &config);
                (config, self.params.clone(), inputs)
            }
        };
        inputs.extend(params.clone());
        Ok((config, params, inputs))
    }
}

#[derive(Args, Debug)]
struct DmcArgs {
    #[command(flatten)]
    run: SampleArgs,

    /// Continue the DMC run whose output directory is DIR from its checkpoint (takes no
    /// config, --set, --params or --from; --threads may change).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "set", "out", "force", "params", "from"])]
    resume: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    Auto,
    Cpu,
    Gpu,
}

impl EngineArg {
    fn choice(self) -> EngineChoice {
        match self {
            EngineArg::Auto => EngineChoice::Auto,
            EngineArg::Cpu => EngineChoice::Cpu,
            EngineArg::Gpu => EngineChoice::Gpu,
        }
    }
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, Error> {
        Config::load(self.config.as_deref(), &self.overrides())
    }

    /// `--set` and the engine options as config overrides.
    fn overrides(&self) -> Vec<String> {
        self.engine.overrides(&self.output.set)
    }

    /// The config of the run in `dir` (its result.json), with this command's overrides, and
    /// the path of the run's parameters.
    fn load_run(&self, dir: &Path) -> Result<(Config, PathBuf), Error> {
        driver::run_config(dir, &self.overrides())
    }
}

fn main() -> ExitCode {
    rbm_vmc::report::command_started();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let stop = Arc::new(AtomicBool::new(false));
    handle_stop_signals(&stop, first_stop_message(&cli.command));
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // Mesa's implicit device-select Vulkan layer only reorders adapters (this program
        // ranks them itself) and, on headless machines, prints Wayland connection errors.
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    // MPI starts only for the commands that split work (it costs a moment per process).
    let splits_work = !matches!(
        cli.command,
        Command::Check(_) | Command::Devices | Command::Analyze(_)
    );
    let team = match if splits_work {
        team()
    } else {
        Ok(rbm_vmc::team::solo())
    } {
        Ok(team) => team,
        Err(e) => {
            write_stderr(&format!("error: {e:#}"));
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    match execute(cli, &stop, &team) {
        // A closed pipe only silences stdout; any other failure to write it is an error.
        Ok(()) => match stdout_failure() {
            Some(why) => {
                write_stderr(&format!("error: cannot write to standard output: {why}"));
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        },
        Err(e) => {
            if team.size() > 1 && !matches!(e, Error::Interrupted(_)) {
                // The other processes may be waiting in a collective: end them all.
                write_stderr(&format!("rank {}: error: {e:#}", team.rank()));
                team.abort(e.exit_code());
            }
            if team.is_root() {
                let label = match e {
                    Error::Interrupted(_) => "stopped",
                    _ => "error",
                };
                write_stderr(&format!("{label}: {e:#}"));
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// A command line clap refuses: one `error:` line, as every other error, exit 2. Help and
/// version requests print as clap has them.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    write_stderr(&format!("error: {}", one_line(&e.to_string())));
    ExitCode::from(2)
}

/// Clap's message on one line: its lines joined (after a colon or before a bracket by a
/// space, else by "; "), without the usage line and the pointer to --help, which ends the
/// line instead.
fn one_line(text: &str) -> String {
    let mut line = String::new();
    for part in text.lines().map(str::trim).filter(|l| {
        !(l.is_empty() || l.starts_with("Usage:") || l.starts_with("For more information"))
    }) {
        let part = part.strip_prefix("error: ").unwrap_or(part);
        if !line.is_empty() {
            let continues = line.ends_with(':') || part.starts_with('[');
            line.push_str(if continues { " " } else { "; " });
        }
        line.push_str(part);
    }
    format!("{line} (see --help)")
}

/// A stop signal this long after the first quits at once; sooner, it is the same stop.
const SECOND_SIGNAL_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Ctrl-C, SIGTERM (what batch schedulers send at the time limit) and SIGHUP (a closed
/// terminal): the first asks the run to stop after its iteration (with a checkpoint), the
/// second, from a second on, ends the process at once (the checkpoint on disk stays the last
/// good one). A SIGHUP that was ignored when the program started (`nohup`) stays ignored.
fn handle_stop_signals(stop: &Arc<AtomicBool>, message: &'static str) {
    #[cfg(unix)]
    let hangup_ignored = hangup_ignored();
    let flag = stop.clone();
    let mut first: Option<std::time::Instant> = None;
    let handler = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        match first {
            // One stop can arrive twice at once (`timeout` signals the process and then its
            // group; so do some batch systems): only a second one later quits at once.
            Some(at) if at.elapsed() >= SECOND_SIGNAL_AFTER => std::process::exit(130),
            Some(_) => {}
            None => {
                first = Some(std::time::Instant::now());
                write_stderr(&format!("\n{message} (press Ctrl-C again to quit at once)"));
            }
        }
    });
    if let Err(e) = handler {
        write_stderr(&format!(
            "warning: Ctrl-C and SIGTERM will stop at once, without a checkpoint: {e}"
        ));
    }
    #[cfg(unix)]
    if hangup_ignored {
        // SAFETY: SIG_IGN runs no handler code; only the ctrl-c thread exists besides this one.
        unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
    }
}

/// What the first stop signal does, in the command's terms.
fn first_stop_message(command: &Command) -> &'static str {
    match command {
        Command::Run(_) | Command::Sweep(_) => "stopping after this iteration, with a checkpoint",
        Command::Sample(_) => {
            "stopping; a `sample` stopped before the end of production keeps no energy"
        }
        Command::Dmc(_) => "stopping after this generation; the partial results are kept",
        _ => "stopping",
    }
}

/// Whether SIGHUP is ignored, as under `nohup`.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: with a null new action, sigaction only reads the current disposition into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The processes of this run: the MPI ranks when built with the `mpi` feature (one when not
/// started by mpirun), else this process alone.
fn team() -> Result<Rc<dyn Team>, Error> {
    #[cfg(feature = "mpi")]
    return Ok(Rc::new(rbm_vmc::mpi::MpiTeam::init()?));
    #[cfg(not(feature = "mpi"))]
    Ok(rbm_vmc::team::solo())
}

fn execute(cli: Cli, stop: &Arc<AtomicBool>, team: &Rc<dyn Team>) -> Result<(), Error> {
    // Only the first process reports; the others stay quiet unless they fail.
    let context = |quiet: bool, budget: &BudgetArgs| -> Result<Context, Error> {
        Ok(Context {
            console: Console::new(quiet || !team.is_root()),
            control: budget.control(stop)?,
            team: team.clone(),
        })
    };
    match cli.command {
        Command::Run(args) => {
            let c = &args.common;
            let ctx = context(c.output.dir.quiet, &args.budget)?;
            if let Some(dir) = &args.resume {
                let out = OutputDir::shared(team.as_ref(), || OutputDir::existing(dir))?;
                let e = &c.engine;
                let engine = e.engine.map(EngineArg::choice);
                let adapter = e.adapter.clone();
                return driver::resume(&out, engine, e.threads, adapter, &ctx).map(|_| ());
            }
            let config = c.load()?;
            let inputs = read_files(c.config.as_deref(), &config);
            let out = c.output.dir.open(team, &inputs)?;
            in_dir(&out, |out| driver::run(&config, out, &ctx))
        }
        Command::Sample(args) => {
            let c = &args.common;
            let ctx = context(c.output.dir.quiet, &args.budget)?;
            let (config, params, inputs) = args.load()?;
            let out = c.output.dir.open(team, &inputs)?;
            in_dir(&out, |out| {
                driver::sample(&config, params.as_deref(), out, &ctx)
            })
        }
        Command::Dmc(DmcArgs { run: args, resume }) => {
            let c = &args.common;
            let ctx = context(c.output.dir.quiet, &args.budget)?;
            if let Some(dir) = &resume {
                let out = OutputDir::shared(team.as_ref(), || OutputDir::existing(dir))?;
                let engine = c.engine.engine.map(EngineArg::choice);
                return rbm_vmc::dmc::resume(&out, engine, c.engine.threads, &ctx).map(|_| ());
            }
            let (config, params, inputs) = args.load()?;
            let out = c.output.dir.open(team, &inputs)?;
            in_dir(&out, |out| {
                rbm_vmc::dmc::dmc(&config, params.as_deref(), out, &ctx)
            })
        }
        Command::Check(args) => {
            let report =
                study::check_report(args.config.as_deref(), &args.set, args.from.as_deref())?;
            if team.is_root() {
                write_stdout(&report);
            }
            Ok(())
        }
        Command::Devices => {
            if team.is_root() {
                write_stdout(&rbm_vmc::engine::gpu::devices_report());
            }
            Ok(())
        }
        Command::Bench(args) => {
            let o = &args.output;
            let config = Config::load(args.config.as_deref(), &o.set)?;
            let options = BenchOptions {
                walkers: match &args.walkers {
                    Some(list) => parse_walkers(list)?,
                    None => BenchOptions::default_ladder(),
                },
                engines: match &args.engines {
                    Some(list) => list
                        .split(',')
                        .map(|e| e.trim().parse())
                        .collect::<Result<_, _>>()?,
                    None => BenchOptions::default_engines(),
                },
                seconds: args.seconds,
                repeats: args.repeats,
            };
            options.validate()?;
            let ctx = context(o.dir.quiet, &BudgetArgs { max_seconds: None })?;
            let out = o
                .dir
                .open(team, &read_files(args.config.as_deref(), &config))?;
            in_dir(&out, |out| study::bench(&config, &options, out, &ctx))
        }
        Command::Sweep(args) => {
            let o = &args.output;
            let overrides = args.engine.overrides(&o.set);
            let sweep = Sweep::load(&args.file, &overrides)?;
            let ctx = context(o.dir.quiet, &args.budget)?;
            if let (Some(dir), true) = (&o.dir.out, args.worker || args.collect) {
                return if args.worker {
                    study::sweep_worker(&sweep, &args.file, dir, &ctx)
                } else {
                    study::collect_sweep(&sweep, dir, &ctx)
                };
            }
            let out = match (&o.dir.out, args.resume) {
                (Some(dir), true) => OutputDir::shared(team.as_ref(), || OutputDir::existing(dir))?,
                _ => {
                    let mut inputs = vec![args.file.clone()];
                    for point in &sweep.points {
                        inputs.extend(point.config.wavefunction.params.clone());
                    }
                    o.dir.open(team, &inputs)?
                }
            };
            in_dir(&out, |out| {
                study::run_sweep(&sweep, &args.file, out, args.resume, &ctx)
            })
        }
        Command::Analyze(args) => {
            let console = Console::new(args.dir.quiet || !team.is_root());
            let out = args.dir.open(team, &args.runs)?;
            in_dir(&out, |out| {
                study::analyze(&args.runs, args.discard, out, &console)
            })
        }
        Command::Validate(args) => {
            let ctx = context(args.dir.quiet, &BudgetArgs { max_seconds: None })?;
            let options = ValidateOptions {
                quick: args.quick,
                engine: args
                    .engine
                    .engine
                    .map_or(EngineChoice::Auto, EngineArg::choice),
                threads: args.engine.threads.unwrap_or(0),
                adapter: args.engine.adapter.clone(),
            };
            let out = args.dir.open(team, &[])?;
            in_dir(&out, |out| {
                study::validate(&options, out, &ctx.console, &ctx.control)
            })
        }
    }
}

/// Runs `work` in `out`; when it fails, a directory it was created for and left empty is
/// removed again.
fn in_dir<T>(
    out: &OutputDir,
    work: impl FnOnce(&OutputDir) -> Result<T, Error>,
) -> Result<(), Error> {
    work(out)
        .map(|_| ())
        .inspect_err(|_| out.discard_if_unused())
}

impl DirArgs {
    /// The output directory (--out, or a fresh timestamped one), locked for this command;
    /// `inputs` are what the command reads, which `--force` must not remove.
    fn open(&self, team: &Rc<dyn Team>, inputs: &[PathBuf]) -> Result<OutputDir, Error> {
        OutputDir::shared(team.as_ref(), || {
            OutputDir::create(self.out.as_deref(), self.force, inputs)
        })
    }
}

/// The files a command with this config reads: the config file and its parameters file.
fn read_files(path: Option<&Path>, config: &Config) -> Vec<PathBuf> {
    path.map(Path::to_path_buf)
        .into_iter()
        .chain(config.wavefunction.params.clone())
        .collect()
}

/// `1024,4096` or `256..65536` (doubling) or a mix.
fn parse_walkers(list: &str) -> Result<Vec<u32>, Error> {
    let bad = |item: &str| {
        Error::input(format!(
            "--walkers: `{item}` is not a walker count > 0 or a range A..B (doubling from A to B)"
        ))
    };
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim) {
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b): (u32, u32) = match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a > 0 && a <= b => (a, b),
                    _ => return Err(bad(item)),
                };
                let mut w = a as u64;
                while w <= b as u64 {
                    out.push(w as u32);
                    w *= 2;
                }
            }
            None => match item.parse::<u32>() {
                Ok(w) if w > 0 => out.push(w),
                _ => return Err(bad(item)),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walker_lists_parse() {
        assert_eq!(
            parse_walkers("256..2048").unwrap(),
            vec![256, 512, 1024, 2048]
        );
        assert_eq!(parse_walkers("10, 100..300").unwrap(), vec![10, 100, 200]);
        for bad in ["0", "x", "8..4", "..4", "-1"] {
            assert!(parse_walkers(bad).is_err(), "{bad}");
        }
    }

    /// Clap's usage errors become one line that keeps what they say.
    #[test]
    fn usage_errors_read_on_one_line() {
        let error = |args: &[&str]| one_line(&Cli::try_parse_from(args).unwrap_err().to_string());
        assert_eq!(
            error(&["rbm-vmc", "run", "--engine", "tpu"]),
            "invalid value 'tpu' for '--engine <ENGINE>' [possible values: auto, cpu, gpu]; \
             tip: a similar value exists: 'gpu' (see --help)"
        );
        assert_eq!(
            error(&["rbm-vmc", "sweep"]),
            "the following required arguments were not provided: <FILE> (see --help)"
        );
    }

    /// `sample` cannot continue, so its help names no --resume (the budget's help used to).
    #[test]
    fn sample_help_offers_no_resume() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let help = cli
            .find_subcommand_mut("sample")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("--max-seconds"), "{help}");
        assert!(!help.contains("--resume"), "{help}");
    }

    #[test]
    fn command_lines_parse() {
        let cli = Cli::try_parse_from([
            "rbm-vmc",
            "bench",
            "--walkers",
            "256..1024",
            "--engines",
            "cpu:1,gpu",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Bench(_)));
        let cli = Cli::try_parse_from([
            "rbm-vmc",
            "run",
            "c.json",
            "--set",
            "walkers=5",
            "--engine",
            "cpu",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Run(_)));
        assert!(
            Cli::try_parse_from(["rbm-vmc", "sweep", "s.json", "--resume"]).is_err(),
            "--resume needs --out"
        );
        assert!(Cli::try_parse_from(["rbm-vmc", "run", "--engine", "tpu"]).is_err());
    }
}
