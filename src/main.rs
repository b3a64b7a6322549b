//! The `rbm-vmc` command line: parse, call the library, report errors once.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rbm_vmc::config::Config;
use rbm_vmc::report::{Console, OutputDir};
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
    /// List the GPU adapters (name, backend, type, driver, limits) and the one `auto` takes.
    Devices,
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// JSON config file; without one the built-in default (two electrons in 2D) runs.
    config: Option<PathBuf>,

    /// Override a config value: dotted key, JSON value (strings need no quotes), e.g.
    /// `--set system.omega=0.5 --set sampler.kind=metropolis`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,

    /// Which engine runs the walkers: `auto` takes a GPU when there is one, else the CPU.
    #[arg(long, value_enum, value_name = "ENGINE")]
    engine: Option<EngineArg>,

    /// CPU engine worker threads (0: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// GPU adapter to use: the first whose name contains NAME (see `rbm-vmc devices`).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,

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
struct RunArgs {
    #[command(flatten)]
    common: ConfigArgs,
}

#[derive(Args, Debug)]
struct SampleArgs {
    #[command(flatten)]
    common: ConfigArgs,

    /// Parameters file (`params.json` of an earlier run); default: the config's initial ones.
    #[arg(long, value_name = "FILE")]
    params: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    Auto,
    Cpu,
    Gpu,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, Error> {
        let mut overrides = self.set.clone();
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
        Config::load(self.config.as_deref(), &overrides)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // Mesa's implicit device-select Vulkan layer only reorders adapters (this program
        // ranks them itself) and, on headless machines, prints Wayland connection errors.
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn execute(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Run(args) => {
            let c = &args.common;
            let config = c.load()?;
            let out = OutputDir::create(c.out.as_deref(), c.force)?;
            driver::run(&config, &out, &Console::new(c.quiet)).map(|_| ())
        }
        Command::Sample(args) => {
            let c = &args.common;
            let config = c.load()?;
            let out = OutputDir::create(c.out.as_deref(), c.force)?;
            driver::sample(
                &config,
                args.params.as_deref(),
                &out,
                &Console::new(c.quiet),
            )
            .map(|_| ())
        }
        Command::Devices => {
            print!("{}", rbm_vmc::engine::gpu::devices_report());
            Ok(())
        }
    }
}
