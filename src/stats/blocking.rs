//! Automated blocking (Flyvbjerg & Petersen 1989, stopping rule of Jonsson, Phys. Rev. E 98,
//! 043304, 2018): the variance of the mean of a correlated series.

/// Result of the blocking analysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blocking {
    /// Variance of the series mean.
    pub variance_of_mean: f64,
    /// The blocking level chosen (0: the series looked uncorrelated).
    pub level: u32,
    /// Values used: the largest power of two not above the series length (the most recent).
    pub used: usize,
}

/// Jonsson's automated blocking on the last 2^d values of `series` (d >= 1).
///
/// At level k the series has n_k = n / 2^k values with variance s_k^2 (ddof 0) and lag-1
/// autocovariance g_k about the mean; M_j = sum_{k>=j} n_k [(n_k-1) s_k^2/n_k^2 + g_k]^2 / s_k^4.
/// The level is the smallest j with M_j below the chi-squared 0.99 quantile with d - j degrees
/// of freedom (Jonsson's code uses k + 1: more conservative and noisier), and the variance of
/// the mean is s_j^2 / n_j. Returns `None` for fewer than 2 values.
pub fn blocking(series: &[f64]) -> Option<Blocking> {
    if series.len() < 2 {
        return None;
    }
    let d = usize::BITS - 1 - series.len().leading_zeros();
    let used = 1usize << d;
    let mut x = series[series.len() - used..].to_vec();
    let mean = x.iter().sum::<f64>() / used as f64;
    let mut variances = Vec::with_capacity(d as usize);
    let mut terms = Vec::with_capacity(d as usize);
    for _ in 0..d {
        let n = x.len() as f64;
        let s2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let gamma = x
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / n;
        variances.push(s2);
        terms.push(if s2 > 0.0 {
            n * ((n - 1.0) * s2 / (n * n) + gamma).powi(2) / (s2 * s2)
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
    let n_j = (used >> level) as f64;
    Some(Blocking {
        variance_of_mean: variances[level as usize] / n_j,
        level,
        used,
    })
}

/// The 0.99 quantile of the chi-squared distribution with `dof` degrees of freedom, by
/// bisection on the regularised lower incomplete gamma function P(dof/2, x/2).
pub fn chi_squared_quantile_99(dof: u32) -> f64 {
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
mod tests {
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

    fn ar1(phi: f64, n: usize, seed: u64) -> Vec<f64> {
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
