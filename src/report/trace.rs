//! trace.csv: a run's production series for `rbm-vmc analyze`. VMC: the ensemble-mean E_L
//! per block of measurements (`measurement`: the block's first, per walker, 0-based;
//! `measurements`: how many it averages). DMC: the weighted energy of every generation.
//! parts.csv (VMC with observables): the energy's parts per time block of the observables,
//! the at most `MAX_BLOCKS` blocks both engines sum them in.

use crate::checksum::fnv1a_hex;
use crate::engine::observables::{INTERACTION, KINETIC, TRAP};
use crate::engine::{Moments, ObservablesSpec};
use crate::error::Error;
use crate::physics::Params;

use super::OutputDir;

/// Most rows of a VMC trace: about 1.3 MB however long the run.
pub const MAX_TRACE_ROWS: usize = 1 << 15;

pub const VMC_TRACE_HEADER: &str = "measurement,measurements,energy";
pub const DMC_TRACE_HEADER: &str = "time_step,generation,energy";
pub const PARTS_HEADER: &str = "measurement,measurements,kinetic,trap,interaction";

/// Measurements per row of a trace of `measurements`: the smallest power of two that keeps
/// it within `MAX_TRACE_ROWS` rows. A power of two, so that blocking the rows is blocking the
/// series from the level of the block on.
pub fn trace_block(measurements: usize) -> usize {
    measurements.div_ceil(MAX_TRACE_ROWS).next_power_of_two()
}

/// trace.csv of a VMC production whose ensemble-mean energies per measurement are `series`.
pub fn vmc_trace_csv(series: &[f64]) -> String {
    let block = trace_block(series.len());
    let mut text = format!("{VMC_TRACE_HEADER}\n");
    for (i, chunk) in series.chunks(block).enumerate() {
        let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
        text += &format!("{},{},{mean}\n", i * block, chunk.len());
    }
    text
}

/// Writes a VMC production's trace.csv, and its parts.csv when it measured observables.
pub fn write_vmc_trace(moments: &Moments, out: &OutputDir) -> Result<(), Error> {
    out.write(
        "trace.csv",
        vmc_trace_csv(&moments.ensemble_means()).as_bytes(),
    )?;
    let Some(sums) = &moments.observables else {
        return Ok(());
    };
    let measurements = moments.series.len() as u32;
    let mut text = format!("{PARTS_HEADER}\n");
    let mut first = 0;
    for (block, length) in sums
        .blocks
        .iter()
        .zip(ObservablesSpec::block_lengths(measurements))
    {
        let mean = |i: usize| block.scalars[i] / block.samples;
        text += &format!(
            "{first},{length},{},{},{}\n",
            mean(KINETIC),
            mean(TRAP),
            mean(INTERACTION)
        );
        first += length;
    }
    out.write("parts.csv", text.as_bytes())
}

/// trace.csv of a DMC run: per time step, the energy of every generation (1-based, the
/// equilibration included).
pub fn dmc_trace_csv(runs: &[(f64, &[f64])]) -> String {
    let mut text = format!("{DMC_TRACE_HEADER}\n");
    for (tau, series) in runs {
        for (g, e) in series.iter().enumerate() {
            text += &format!("{tau},{},{e}\n", g + 1);
        }
    }
    text
}

/// The rows of a trace with `header`: N numbers each. `what` names the file in errors.
pub fn read_trace<const N: usize>(
    text: &str,
    header: &str,
    what: &str,
) -> Result<Vec<[f64; N]>, Error> {
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        return Err(Error::input(format!(
            "{what}: the header is not `{header}`"
        )));
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<f64> = line.split(',').filter_map(|f| f.parse().ok()).collect();
            <[f64; N]>::try_from(fields).map_err(|_| {
                Error::input(format!(
                    "{what}, line {}: `{line}` is not {N} numbers",
                    i + 2
                ))
            })
        })
        .collect()
}

/// A checksum of the parameters a run measured, in result.json (`params_checksum`): runs
/// that measured the same parameters (a `sample --from` run and its original) share it. The
/// values are taken to 12 significant digits, as a parameters file read back may differ in
/// the last bit (the width is stored as sigma, trained as ln sigma), and -0 as 0 (zero
/// initial parameters are drawn as random numbers times 0).
pub fn params_checksum(params: &Params) -> String {
    let text: String = params
        .theta()
        .iter()
        .map(|t| format!("{:.11e};", t + 0.0))
        .collect();
    fnv1a_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_powers_of_two_within_the_row_limit() {
        assert_eq!(trace_block(1), 1);
        assert_eq!(trace_block(MAX_TRACE_ROWS), 1);
        assert_eq!(trace_block(MAX_TRACE_ROWS + 1), 2);
        for n in [40_000, 1_000_000, 10_000_000] {
            let b = trace_block(n);
            assert!(
                b.is_power_of_two() && n.div_ceil(b) <= MAX_TRACE_ROWS,
                "{n}"
            );
            assert!(
                n.div_ceil(b / 2) > MAX_TRACE_ROWS,
                "{n}: the smallest block"
            );
        }
    }

    /// A 1e7-sample run (one walker: the longest series) writes at most a few MB.
    #[test]
    fn a_long_trace_stays_small_and_reads_back() {
        let series: Vec<f64> = (0..10_000_000)
            .map(|i| 3.0 + (i as f64).sin() / 7.0)
            .collect();
        let text = vmc_trace_csv(&series);
        assert!(text.len() < 2_000_000, "{} bytes", text.len());
        let rows: Vec<[f64; 3]> = read_trace(&text, VMC_TRACE_HEADER, "trace").unwrap();
        assert!(rows.len() <= MAX_TRACE_ROWS);
        let n: f64 = rows.iter().map(|r| r[1]).sum();
        assert_eq!(n, 1e7);
        let mean = rows.iter().map(|r| r[1] * r[2]).sum::<f64>() / n;
        let exact = series.iter().sum::<f64>() / 1e7;
        assert!((mean - exact).abs() < 1e-12);
    }
}
