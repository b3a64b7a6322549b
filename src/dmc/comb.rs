//! Population control at a constant population: the stochastic comb. With the weights'
//! running sums C_j and their total W, slot k = 0..M-1 takes walker j with
//! C_{j-1} < (k + u) W / M <= C_j for one uniform u per generation: walker j gets M w_j / W
//! copies in expectation (the integer part or one more), and exactly M walkers remain.

/// The walkers (indices into `weights`) that fill `slots` slots, in order, for the uniform
/// `u` in [0, 1). `None` when the total weight is not a positive finite number.
pub fn comb(weights: &[f64], u: f64, slots: usize) -> Option<Vec<u32>> {
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    // The last walker that carries weight: where rounding leaves a tooth past C_n.
    let last = weights.iter().rposition(|&w| w > 0.0)?;
    let spacing = total / slots as f64;
    let mut chosen = Vec::with_capacity(slots);
    let (mut j, mut upper) = (0, weights[0]);
    for k in 0..slots {
        let tooth = (k as f64 + u) * spacing;
        // A tooth on a running sum exactly (u = 0) passes walkers without weight too.
        while (tooth > upper || weights[j] == 0.0) && j < last {
            j += 1;
            upper += weights[j];
        }
        chosen.push(j as u32);
    }
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::StepStream;
    use crate::stats::chi_squared_quantile_99;

    /// Exactly M walkers; each walker's copies are the floor or the ceiling of M w_j / W;
    /// zero weights get none.
    #[test]
    fn the_comb_keeps_the_population_and_rounds_each_share() {
        let weights = [0.5, 0.0, 2.25, 1e-3, 0.75, 3.0, 0.0];
        let total: f64 = weights.iter().sum();
        let mut stream = StepStream::new(1, 0, 1);
        for slots in [1, 7, 100, 1000] {
            for _ in 0..50 {
                let chosen = comb(&weights, stream.uniform(), slots).unwrap();
                assert_eq!(chosen.len(), slots);
                assert!(chosen.windows(2).all(|p| p[0] <= p[1]), "slots in order");
                for (j, w) in weights.iter().enumerate() {
                    let copies = chosen.iter().filter(|&&c| c as usize == j).count() as f64;
                    let share = slots as f64 * w / total;
                    assert!(
                        copies >= share.floor() - 1e-9 && copies <= share.ceil() + 1e-9,
                        "walker {j}: {copies} copies of a share {share}"
                    );
                }
            }
        }
        assert_eq!(comb(&[0.0, 0.0], 0.5, 4), None);
        assert_eq!(comb(&[1.0, f64::NAN], 0.5, 4), None);
        // A tooth at the very end never picks a walker without weight.
        assert_eq!(
            comb(&[1.0, 1.0, 0.0], 0.999_999_999_999, 2),
            Some(vec![0, 1])
        );
    }

    /// The copies are unbiased: summed over many draws they match M w_j / W within a
    /// chi-squared test at the 99 % level.
    #[test]
    fn the_comb_is_unbiased() {
        let weights: Vec<f64> = (0..20)
            .map(|j| 0.1 + ((j * 37) % 11) as f64 / 7.0)
            .collect();
        let total: f64 = weights.iter().sum();
        let (slots, draws) = (13, 20_000);
        let mut copies = vec![0.0; weights.len()];
        let mut stream = StepStream::new(2, 0, 1);
        for _ in 0..draws {
            for j in comb(&weights, stream.uniform(), slots).unwrap() {
                copies[j as usize] += 1.0;
            }
        }
        // Each walker's copies per draw take two neighbouring values, floor(s) or floor(s) + 1
        // with probability frac(s): the variance of their sum is draws frac (1 - frac).
        let mut chi2 = 0.0;
        let mut dof = 0;
        for (j, w) in weights.iter().enumerate() {
            let share = slots as f64 * w / total;
            let frac = share.fract();
            let expected = draws as f64 * share;
            let variance = draws as f64 * frac * (1.0 - frac);
            if variance > 0.0 {
                chi2 += (copies[j] - expected).powi(2) / variance;
                dof += 1;
            }
        }
        assert!(
            chi2 < chi_squared_quantile_99(dof),
            "chi^2 = {chi2:.1} with {dof} degrees of freedom"
        );
    }
}
