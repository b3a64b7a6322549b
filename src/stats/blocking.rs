//! Automated blocking (Flyvbjerg & Petersen 1989, stopping rule of Jonsson, Phys. Rev. E 98,
//! 043304, 2018): the variance of the mean of a correlated series.

use std::sync::OnceLock;

/// Result of the blocking analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blocking {
    /// Variance of the mean of the whole series.
    pub variance_of_mean: f64,
    /// The blocking level chosen (0: the series looked uncorrelated).
    pub level: u32,
    /// Values the mean and its variance refer to: the whole series.
    pub used: usize,
}

/// Jonsson's automated blocking of the whole of `series`, d = floor(log2 n) levels.
///
/// At level k the series has n_k = floor(n / 2^k) block means (a block left without a partner
/// is dropped at the level that would pair it) with variance s_k^2 (ddof 0) and lag-1
/// autocovariance g_k about their mean; M_j = sum_{k>=j} n_k [(n_k-1) s_k^2/n_k^2 + g_k]^2 /
/// s_k^4. The level is the smallest j with M_j below the chi-squared 0.99 quantile with d - j
/// degrees of freedom (Jonsson's code uses k + 1: more conservative and noisier). s_j^2 is
/// the variance of the mean of a block of 2^j values, so the variance of the mean of all n
/// values is s_j^2 2^j / n: the error, the mean and tau refer to the same n values (for n a
/// power of two this is Jonsson's s_j^2 / n_j). Returns `None` for fewer than 2 values.
pub fn blocking(series: &[f64]) -> Option<Blocking> {
    let n = series.len();
    if n < 2 {
        return None;
    }
    let d = usize::BITS - 1 - n.leading_zeros();
    let mut x = series.to_vec();
    let mut variances = Vec::with_capacity(d as usize);
    let mut terms = Vec::with_capacity(d as usize);
    for _ in 0..d {
        let len = x.len() as f64;
        let mean = x.iter().sum::<f64>() / len;
        let s2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len;
        let gamma = x
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / len;
        variances.push(s2);
        terms.push(if s2 > 0.0 {
            len * ((len - 1.0) * s2 / (len * len) + gamma).powi(2) / (s2 * s2)
        } else {
            0.0
        });
        x = x.chunks_exact(2).map(|p| 0.5 * (p[0] + p[1])).collect();
    }
    // M_j as suffix sums of the terms.
    let mut m = vec![0.0; d as usize + 1];
    for k in (0..d as usize).rev() {
        m[k] = m[k + 1] + terms[k];
    }
    let level = (0..d)
        .find(|&j| m[j as usize] < chi_squared_quantile_99(d - j))
        .unwrap_or(d - 1);
    Some(Blocking {
        variance_of_mean: variances[level as usize] * (1u64 << level) as f64 / n as f64,
        level,
        used: n,
    })
}

/// The 0.99 quantile of the chi-squared distribution with `dof` degrees of freedom, by
/// bisection on the regularised lower incomplete gamma function P(dof/2, x/2). Kept once
/// computed for the dof of a blocking analysis (at most 64 levels): DMC's running error
/// asks for them at every block.
pub fn chi_squared_quantile_99(dof: u32) -> f64 {
    static KEPT: [OnceLock<f64>; 65] = [const { OnceLock::new() }; 65];
    match KEPT.get(dof as usize) {
        Some(kept) => *kept.get_or_init(|| quantile_99(dof)),
        None => quantile_99(dof),
    }
}

fn quantile_99(dof: u32) -> f64 {
    let k = dof as f64 / 2.0;
    let (mut lo, mut hi) = (0.0, 10.0 * dof as f64 + 50.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if lower_regularised_gamma(k, mid / 2.0) < 0.99 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(a, x) = gamma(a, x) / Gamma(a): series for x < a + 1, continued fraction otherwise
/// (Numerical Recipes 6.2).
fn lower_regularised_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        sum * log_prefactor.exp()
    } else {
        // Modified Lentz for the continued fraction of Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - log_prefactor.exp() * h
    }
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error below 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rng::StepStream;

    #[test]
    fn chi_squared_quantiles_match_tables() {
        for (dof, q) in [
            (1, 6.634_897),
            (2, 9.210_340),
            (5, 15.086_272),
            (10, 23.209_251),
            (20, 37.566_235),
            (30, 50.892_181),
        ] {
            let got = chi_squared_quantile_99(dof);
            assert!((got - q).abs() < 1e-5, "dof {dof}: {got} vs {q}");
        }
    }

    pub(crate) fn ar1(phi: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut x = 0.0;
        let mut out = Vec::with_capacity(n);
        // Start from the stationary distribution so no burn-in is needed.
        let mut rng = StepStream::new(seed, 0, 0);
        x += rng.normal() / (1.0 - phi * phi).sqrt();
        for i in 0..n {
            let mut rng = StepStream::new(seed, 1, i as u64);
            x = phi * x + rng.normal();
            out.push(x);
        }
        out
    }

    #[test]
    fn blocking_recovers_the_error_of_an_ar1_series() {
        let n = 1 << 20;
        for phi in [0.5, 0.9] {
            let series = ar1(phi, n, 5);
            let b = blocking(&series).unwrap();
            // Var(mean) of AR(1) with unit innovations: 1 / (n (1 - phi)^2) for large n.
            let exact = 1.0 / (n as f64 * (1.0 - phi).powi(2));
            let ratio = (b.variance_of_mean / exact).sqrt();
            assert!((ratio - 1.0).abs() < 0.15, "phi {phi}: error ratio {ratio}");
            assert!(b.level > 0);
        }
    }

    /// Blocking used to analyse only the last 2^d values while the energy, tau and the sample
    /// count used all n: one value short of a power of two gave an error sqrt(2) too large.
    #[test]
    fn blocking_uses_the_whole_series_whatever_its_length() {
        let n = 1 << 14;
        let mut ratios = Vec::new();
        for seed in 0..8 {
            let series = ar1(0.9, n, seed);
            let full = blocking(&series).unwrap();
            let short = blocking(&series[..n - 1]).unwrap();
            assert_eq!(short.used, n - 1);
            ratios.push((short.variance_of_mean / full.variance_of_mean).sqrt());
        }
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "error ratios {ratios:?}");
    }

    #[test]
    fn blocking_leaves_uncorrelated_series_at_level_zero_or_near() {
        let series: Vec<f64> = (0..1 << 16)
            .map(|i| StepStream::new(3, 0, i).normal())
            .collect();
        let b = blocking(&series).unwrap();
        let ratio = (b.variance_of_mean * series.len() as f64).sqrt();
        assert!((ratio - 1.0).abs() < 0.1, "{ratio}");
        assert_eq!(b.used, 1 << 16);
    }

    #[test]
    fn blocking_needs_two_values_and_handles_constants() {
        assert!(blocking(&[1.0]).is_none());
        let b = blocking(&[2.0; 64]).unwrap();
        assert_eq!(b.variance_of_mean, 0.0);
    }
}
