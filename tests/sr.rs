//! Stochastic reconfiguration on the CPU engine: it stays at an exact solution, and it
//! converges in far fewer iterations than Adam.

mod common;

use common::{config, cpu};
use rbm_vmc::Estimate;
use rbm_vmc::driver::initial_params;
use rbm_vmc::engine::{Engine, Measure};
use rbm_vmc::optimize::Optimiser;
use serde_json::json;

/// Starting at the exact non-interacting solution (a = b = w = 0, sigma^2 = 1/omega), SR's
/// steps vanish with the gradient: after 20 iterations the energy is still exact with zero
/// variance (Adam, which normalises its steps, walks away from it).
#[test]
fn sr_stays_at_the_exact_non_interacting_solution() {
    let c = config(json!({
        "system": {"interaction": false, "omega": 0.5},
        "wavefunction": {"hidden": 2, "init_scale": 0.0, "sigma": "auto"},
        "optimiser": {"kind": "sr", "iterations": 20},
        "walkers": 40, "steps_per_iteration": 100, "threads": 2,
    }));
    let exact = 2.0 * 2.0 * 0.5 / 2.0;
    let mut engine = cpu(&c);
    let mut params = initial_params(&c).unwrap();
    let mut optimiser = Optimiser::new(&c.optimiser, params.theta().len());
    engine.sample(&params, 100, Measure::Nothing, &()).unwrap();
    for _ in 0..20 {
        let moments = engine
            .sample(&params, 100, optimiser.measure(), &())
            .unwrap();
        assert!(moments.metric.is_some());
        let e = Estimate::from_moments(&moments);
        let step = optimiser
            .step(&mut params, &e.gradient, moments.metric.as_ref())
            .unwrap();
        assert!(step.norm < 1e-8, "step {}", step.norm);
    }
    let e = Estimate::from_moments(&engine.sample(&params, 200, Measure::Energy, &()).unwrap());
    assert!((e.energy - exact).abs() < 1e-10, "{}", e.energy);
    assert!(e.variance < 1e-16, "{}", e.variance);
}
