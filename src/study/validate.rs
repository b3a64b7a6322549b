//! `rbm-vmc validate`: runs the reference systems (exact, analytic, diffusion Monte Carlo) and
//! says, case by case, whether this installation reproduces them within a stated tolerance.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::{Config, EngineChoice, merge};
use crate::control::{Control, StopReason};
use crate::driver::{self, Context, Outcome};
use crate::error::Error;
use crate::report::{Console, OutputDir, csv_quoted};
use crate::team::solo;

/// What a case must show to pass.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// The exact eigenstate: the reference to rounding (f64 or f32) and zero variance.
    Exact,
    /// An analytic expectation value at fixed parameters: within 4 error bars.
    Statistical,
    /// A variational energy: at most `max`, and not below the reference (a lower bound: exact,
    /// or fixed-node diffusion Monte Carlo) by more than 4 error bars.
    AtMost(f64),
}

/// How a case measures its energy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// VMC at the initial parameters (`sample`).
    Sample,
    /// VMC after an optimisation (`run`).
    Optimise,
    /// Fixed-node diffusion Monte Carlo from the initial parameters (`dmc`, CPU engine).
    Dmc,
}

/// One reference system.
struct Case {
    system: &'static str,
    ansatz: &'static str,
    /// Overrides on top of the built-in default config.
    config: Value,
    method: Method,
    reference: f64,
    source: &'static str,
    check: Check,
    /// Part of `--quick`.
    quick: bool,
}

/// Sizes of a short measurement at fixed parameters.
fn fixed(walkers: u32, steps: u32, extra: Value) -> Value {
    let mut c = json!({
        "walkers": walkers,
        "sampler": {"thermalisation": 100},
        "optimiser": {"iterations": 0},
        "production": {"steps": steps},
        "wavefunction": {"init_scale": 0.0},
    });
    merge(&mut c, &extra);
    c
}

/// Sizes of a DMC run at time step `tau`, from the trial function with a zero RBM (the
/// Gaussian of the trap's width, times the factors `extra` asks for).
fn dmc(walkers: u32, tau: f64, generations: u32, extra: Value) -> Value {
    let mut c = json!({
        "walkers": walkers,
        "optimiser": {"iterations": 0},
        "wavefunction": {"init_scale": 0.0},
        "dmc": {"time_step": tau, "generations": generations, "equilibration": 400},
    });
    merge(&mut c, &extra);
    c
}

/// A closed-shell example config shipped in `configs/`, with `extra` on top.
fn shipped(text: &str, extra: Value) -> Value {
    let mut c: Value = serde_json::from_str(text).expect("the shipped configs are JSON");
    merge(&mut c, &extra);
    c
}

const FERMIONS_6: &str = include_str!("../../configs/fermions-6.json");
const FERMIONS_12: &str = include_str!("../../configs/fermions-12.json");
const FERMIONS_20: &str = include_str!("../../configs/fermions-20.json");

fn cases() -> Vec<Case> {
    let free_fermions = |particles: u32, dims: u32, energy: f64, quick: bool| Case {
        system: match (particles, dims) {
            (6, 2) => "6 electrons, 2D, no interaction",
            (12, 2) => "12 electrons, 2D, no interaction",
            (20, 2) => "20 electrons, 2D, no interaction",
            _ => "8 electrons, 3D, no interaction",
        },
        ansatz: "Slater x RBM (zero parameters)",
        config: fixed(
            40,
            100,
            json!({
                "system": {"particles": particles, "dims": dims, "interaction": false,
                           "statistics": "fermions"},
                "sampler": {"moves": "single", "dt": 0.1},
            }),
        ),
        method: Method::Sample,
        reference: energy,
        source: "exact: closed shells",
        check: Check::Exact,
        quick,
    };
    let jastrow = json!({"wavefunction": {"jastrow": "pade", "init_scale": 0.1}});
    let two_jastrow = |omega: f64, dims: u32, iterations: u32| {
        let mut c = json!({
            "system": {"omega": omega, "dims": dims},
            "walkers": 500, "steps_per_iteration": 500,
            "optimiser": {"iterations": iterations},
            "production": {"steps": 4000},
        });
        merge(&mut c, &jastrow);
        c
    };
    vec![
        Case {
            system: "2 particles, 2D, no interaction",
            ansatz: "RBM (zero parameters)",
            config: fixed(100, 200, json!({"system": {"interaction": false}})),
            method: Method::Sample,
            reference: 2.0,
            source: "exact: P D omega / 2",
            check: Check::Exact,
            quick: true,
        },
        free_fermions(6, 2, 10.0, true),
        free_fermions(12, 2, 28.0, true),
        free_fermions(8, 3, 18.0, true),
        free_fermions(20, 2, 60.0, false),
        Case {
            system: "2 electrons, 2D, omega 1",
            ansatz: "Gaussian, sigma 1",
            config: fixed(1000, 2000, json!({"wavefunction": {"sigma": 1.0}})),
            method: Method::Sample,
            reference: 2.0 + std::f64::consts::FRAC_PI_2.sqrt(),
            source: "exact: 2 + sqrt(pi/2)",
            check: Check::Statistical,
            quick: true,
        },
        Case {
            system: "2 electrons, 2D, omega 1",
            ansatz: "RBM (2 hidden)",
            config: json!({
                "walkers": 500, "steps_per_iteration": 400,
                "optimiser": {"iterations": 60}, "production": {"steps": 4000},
            }),
            method: Method::Optimise,
            reference: 3.0,
            source: "exact (Taut); plain RBM reaches 3.06-3.08",
            check: Check::AtMost(3.09),
            quick: true,
        },
        Case {
            system: "2 electrons, 2D, omega 1",
            ansatz: "RBM x Jastrow",
            config: two_jastrow(1.0, 2, 40),
            method: Method::Optimise,
            reference: 3.0,
            source: "exact (Taut)",
            check: Check::AtMost(3.0015),
            quick: true,
        },
        Case {
            system: "6 electrons, 2D, omega 1",
            ansatz: "Slater x RBM x Jastrow",
            config: shipped(
                FERMIONS_6,
                json!({"walkers": 200, "steps_per_iteration": 200,
                       "optimiser": {"iterations": 15}, "production": {"steps": 1000}}),
            ),
            method: Method::Optimise,
            reference: 20.1597,
            source: "DMC (Pedersen Lohne et al. 2011)",
            check: Check::AtMost(20.30),
            quick: true,
        },
        Case {
            system: "2 electrons, 2D, omega 1",
            ansatz: "DMC from RBM x Jastrow",
            config: dmc(
                500,
                0.02,
                4000,
                json!({"wavefunction": {"jastrow": "pade"}}),
            ),
            method: Method::Dmc,
            reference: 3.0,
            source: "exact (Taut)",
            check: Check::Statistical,
            quick: true,
        },
        Case {
            system: "2 electrons, 2D, omega 1/6",
            ansatz: "RBM x Jastrow",
            config: two_jastrow(1.0 / 6.0, 2, 100),
            method: Method::Optimise,
            reference: 2.0 / 3.0,
            source: "exact (Taut)",
            check: Check::AtMost(2.0 / 3.0 * 1.005),
            quick: false,
        },
        Case {
            system: "2 electrons, 2D, omega 0.5",
            ansatz: "RBM x Jastrow",
            config: two_jastrow(0.5, 2, 60),
            method: Method::Optimise,
            reference: 1.65977,
            source: "DMC",
            check: Check::AtMost(1.65977 * 1.002),
            quick: false,
        },
        Case {
            system: "2 electrons, 3D, omega 0.5",
            ansatz: "RBM x Jastrow",
            config: two_jastrow(0.5, 3, 60),
            method: Method::Optimise,
            reference: 2.0,
            source: "exact (Taut)",
            check: Check::AtMost(2.0 * 1.002),
            quick: false,
        },
        Case {
            system: "6 electrons, 2D, omega 1",
            ansatz: "Slater x RBM x Jastrow",
            config: shipped(FERMIONS_6, json!({})),
            method: Method::Optimise,
            reference: 20.1597,
            source: "DMC (Pedersen Lohne et al. 2011)",
            check: Check::AtMost(20.20),
            quick: false,
        },
        Case {
            system: "6 electrons, 2D, omega 0.5",
            ansatz: "Slater x RBM x Jastrow",
            config: shipped(FERMIONS_6, json!({"system": {"omega": 0.5}})),
            method: Method::Optimise,
            reference: 11.7888,
            source: "DMC (Pedersen Lohne et al. 2011)",
            check: Check::AtMost(11.7888 * 1.003),
            quick: false,
        },
        Case {
            system: "6 electrons, 2D, omega 1",
            ansatz: "DMC from Slater x RBM x Jastrow",
            config: dmc(
                1000,
                0.01,
                4000,
                json!({"system": {"particles": 6, "statistics": "fermions"},
                       "wavefunction": {"jastrow": "pade"}}),
            ),
            method: Method::Dmc,
            reference: 20.15932,
            source: "fixed-node DMC (Høgberget 2013)",
            check: Check::Statistical,
            quick: false,
        },
        Case {
            system: "12 electrons, 2D, omega 1",
            ansatz: "DMC from Slater x RBM x Jastrow",
            config: dmc(
                500,
                0.01,
                2000,
                json!({"system": {"particles": 12, "statistics": "fermions"},
                       "wavefunction": {"jastrow": "pade"}}),
            ),
            method: Method::Dmc,
            reference: 65.7001,
            source: "fixed-node DMC (Høgberget 2013)",
            check: Check::Statistical,
            quick: false,
        },
        Case {
            system: "20 electrons, 2D, omega 1",
            ansatz: "DMC from Slater x RBM x Jastrow",
            config: dmc(
                500,
                0.01,
                1500,
                json!({"system": {"particles": 20, "statistics": "fermions"},
                       "wavefunction": {"jastrow": "pade"}}),
            ),
            method: Method::Dmc,
            reference: 155.8822,
            source: "fixed-node DMC (Høgberget 2013)",
            check: Check::Statistical,
            quick: false,
        },
        Case {
            system: "12 electrons, 2D, omega 1",
            ansatz: "Slater x RBM x Jastrow",
            config: shipped(FERMIONS_12, json!({})),
            method: Method::Optimise,
            reference: 65.700,
            source: "DMC (Pedersen Lohne et al. 2011)",
            check: Check::AtMost(65.83),
            quick: false,
        },
        Case {
            system: "20 electrons, 2D, omega 1",
            ansatz: "Slater x RBM x Jastrow",
            config: shipped(FERMIONS_20, json!({})),
            method: Method::Optimise,
            reference: 155.868,
            source: "DMC (Pedersen Lohne et al. 2011)",
            check: Check::AtMost(156.18),
            quick: false,
        },
    ]
}

/// Where one case ended.
struct Verdict {
    energy: f64,
    error: f64,
    variance: f64,
    /// (energy - reference) / error; infinite for a nonzero difference without error bar.
    sigmas: f64,
    pass: bool,
    seconds: f64,
    engine: String,
    /// Why the case failed to run, if it did.
    failure: Option<String>,
}

impl Check {
    fn tolerance(&self, exact_digits: &str) -> String {
        match self {
            Check::Exact => format!("exact to {exact_digits}, zero variance"),
            Check::Statistical => "within 4 error bars".into(),
            Check::AtMost(max) => format!("<= {max:.6}, >= reference - 4 error bars"),
        }
    }

    /// Whether the estimate passes; `f32` loosens what "exact" means.
    fn passes(&self, reference: f64, energy: f64, error: f64, variance: f64, f32: bool) -> bool {
        let (relative, max_variance) = if f32 { (1e-5, 1e-6) } else { (1e-9, 1e-12) };
        match *self {
            Check::Exact => {
                (energy - reference).abs() <= relative * reference && variance <= max_variance
            }
            Check::Statistical => (energy - reference).abs() <= 4.0 * error,
            Check::AtMost(max) => energy <= max && energy >= reference - 4.0 * error,
        }
    }
}

/// Settings of the whole validation (the engine runs every case).
pub struct ValidateOptions {
    pub quick: bool,
    pub engine: EngineChoice,
    pub threads: usize,
    pub adapter: Option<String>,
}

/// Runs the cases (`--quick`: the short ones), one directory each under `cases/`, prints a
/// line per case as it ends and writes `validation.csv` and `validation.md`. Fails (exit 1)
/// when a case does not pass.
pub fn validate(
    options: &ValidateOptions,
    out: &OutputDir,
    console: &Console,
    control: &Control,
) -> Result<(), Error> {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.quick || !options.quick)
        .collect();
    // The options are the user's: a bad one is bad input, not a failed case.
    let mut config = Config {
        engine: options.engine,
        threads: options.threads,
        ..Config::default()
    };
    config.gpu.adapter = options.adapter.clone();
    config.validate()?;
    if options.engine == EngineChoice::Gpu {
        crate::driver::gpu_adapter(options.adapter.as_deref(), 0)?;
    }
    console.line(&format!(
        "validate: {} reference systems ({}); each case's files are in {}",
        cases.len(),
        if options.quick {
            "quick: seconds on 2 CPU cores"
        } else {
            "full: about 2.5 minutes on 2 CPU cores, half of it DMC of 6, 12 and 20 electrons"
        },
        out.file("cases").display()
    ));
    let mut verdicts = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let verdict = run_case(i, case, options, out, control).map_err(|e| match e {
            // The case's own message would offer to resume its run; validation starts over.
            Error::Interrupted(_) => Error::Interrupted(format!(
                "{} during case {} of {} ({}); {} finished. Run `rbm-vmc validate` again to \
                 validate (a case cannot be resumed)",
                control.reason().unwrap_or(StopReason::Interrupted),
                i + 1,
                cases.len(),
                case.system,
                if i == 1 {
                    "1 case".to_string()
                } else {
                    format!("{i} cases")
                }
            )),
            other => other,
        })?;
        console.line(&format!(
            "[{}/{}] {}",
            i + 1,
            cases.len(),
            row_text(case, &verdict)
        ));
        verdicts.push(verdict);
    }
    out.write("validation.csv", csv(&cases, &verdicts).as_bytes())?;
    out.write("validation.md", markdown(&cases, &verdicts).as_bytes())?;
    console.line(&format!(
        "wrote {} and {}",
        out.file("validation.csv").display(),
        out.file("validation.md").display()
    ));
    let failed: Vec<String> = cases
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !v.pass)
        .map(|(c, _)| format!("{} ({})", c.system, c.ansatz))
        .collect();
    if failed.is_empty() {
        console.line(&format!("all {} cases pass", cases.len()));
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} of {} validation cases failed: {}; see {}",
            failed.len(),
            cases.len(),
            failed.join(", "),
            out.file("validation.md").display()
        )))
    }
}

fn run_case(
    index: usize,
    case: &Case,
    options: &ValidateOptions,
    out: &OutputDir,
    control: &Control,
) -> Result<Verdict, Error> {
    let mut value = serde_json::to_value(Config::default()).expect("configs serialise");
    merge(&mut value, &case.config);
    let mut config = Config::from_value(value, case.system)?;
    config.engine = options.engine;
    config.threads = options.threads;
    config.gpu.adapter = options.adapter.clone();
    config.validate()?;
    let dir = OutputDir::create(
        Some(&out.file(&format!("cases/{:02}", index + 1))),
        true,
        &[],
    )?;
    let ctx = Context {
        console: Console::new(true),
        control: control.clone(),
        team: solo(),
    };
    let start = Instant::now();
    let outcome = match case.method {
        Method::Optimise => driver::run(&config, &dir, &ctx),
        Method::Sample => driver::sample(&config, None, &dir, &ctx),
        Method::Dmc => crate::dmc::dmc(&config, None, &dir, &ctx).map(|o| o.as_outcome(&config)),
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(match outcome {
        Ok(Outcome {
            production: Some(e),
            engine,
            ..
        }) => {
            let f32 = engine.starts_with("gpu");
            let difference = e.energy - case.reference;
            Verdict {
                energy: e.energy,
                error: e.error,
                variance: e.variance,
                sigmas: if difference == 0.0 {
                    0.0
                } else {
                    difference / e.error
                },
                pass: case
                    .check
                    .passes(case.reference, e.energy, e.error, e.variance, f32),
                seconds,
                engine,
                failure: None,
            }
        }
        Ok(_) => unreachable!("every case measures"),
        Err(e @ Error::Interrupted(_)) => return Err(e),
        Err(e) => Verdict {
            energy: f64::NAN,
            error: f64::NAN,
            variance: f64::NAN,
            sigmas: f64::NAN,
            pass: false,
            seconds,
            engine: String::new(),
            failure: Some(e.to_string()),
        },
    })
}

fn digits(v: &Verdict) -> &'static str {
    if v.engine.starts_with("gpu") {
        "1e-5 (f32)"
    } else {
        "1e-9"
    }
}

fn row_text(case: &Case, v: &Verdict) -> String {
    let verdict = if v.pass { "pass" } else { "FAIL" };
    match &v.failure {
        Some(why) => format!("{}, {}: FAIL: {why}", case.system, case.ansatz),
        None => format!(
            "{}, {}: {:.6} +- {:.6} (reference {:.6}, {}; {:+.1} sigma): {verdict} ({}) in {:.0} s",
            case.system,
            case.ansatz,
            v.energy,
            v.error,
            case.reference,
            case.source,
            v.sigmas,
            case.check.tolerance(digits(v)),
            v.seconds
        ),
    }
}

fn csv(cases: &[Case], verdicts: &[Verdict]) -> String {
    let mut text = String::from(
        "system,ansatz,energy,error,variance,reference,source,difference_sigmas,tolerance,pass,\
         seconds,engine\n",
    );
    let quote = csv_quoted;
    for (c, v) in cases.iter().zip(verdicts) {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{},{},{},{},{:.2},{}",
            quote(c.system),
            quote(c.ansatz),
            v.energy,
            v.error,
            v.variance,
            c.reference,
            quote(c.source),
            v.sigmas,
            quote(&c.check.tolerance(digits(v))),
            v.pass,
            v.seconds,
            quote(&v.engine)
        );
    }
    text
}

fn markdown(cases: &[Case], verdicts: &[Verdict]) -> String {
    let mut text = String::from(
        "| system | ansatz | energy | reference | difference | tolerance | result |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (c, v) in cases.iter().zip(verdicts) {
        let result = match (&v.failure, v.pass) {
            (Some(why), _) => format!("FAIL: {why}"),
            (None, true) => "pass".into(),
            (None, false) => "FAIL".into(),
        };
        let _ = writeln!(
            text,
            "| {} | {} | {:.6} +- {:.6} | {:.6} ({}) | {:+.1} sigma | {} | {} |",
            c.system,
            c.ansatz,
            v.energy,
            v.error,
            c.reference,
            c.source,
            v.sigmas,
            c.check.tolerance(digits(v)),
            result
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case is a valid config, and the quick set covers what `--quick` promises.
    #[test]
    fn every_case_is_a_valid_config() {
        for case in cases() {
            let mut value = serde_json::to_value(Config::default()).unwrap();
            merge(&mut value, &case.config);
            let config = Config::from_value(value, case.system).unwrap();
            config.validate().unwrap();
            assert_eq!(
                case.method == Method::Optimise,
                config.optimiser.iterations > 0,
                "{}",
                case.system
            );
            assert!(config.production.steps > 0, "{}", case.system);
        }
        let quick = cases().into_iter().filter(|c| c.quick).count();
        assert!(quick >= 8 && quick < cases().len());
    }

    #[test]
    fn checks_pass_and_fail_where_they_should() {
        assert!(Check::Exact.passes(10.0, 10.0 + 1e-10, 0.0, 0.0, false));
        assert!(!Check::Exact.passes(10.0, 10.0 + 1e-7, 0.0, 0.0, false));
        assert!(Check::Exact.passes(10.0, 10.0 + 1e-5, 0.0, 1e-8, true));
        assert!(!Check::Exact.passes(10.0, 10.0, 0.0, 1e-3, true));
        assert!(Check::Statistical.passes(3.25, 3.26, 0.003, 1.0, false));
        assert!(!Check::Statistical.passes(3.25, 3.27, 0.003, 1.0, false));
        let bound = Check::AtMost(3.0015);
        assert!(bound.passes(3.0, 3.001, 0.0001, 0.01, false));
        assert!(!bound.passes(3.0, 3.002, 0.0001, 0.01, false));
        assert!(
            !bound.passes(3.0, 2.999, 0.0001, 0.01, false),
            "below the exact bound"
        );
    }
}
