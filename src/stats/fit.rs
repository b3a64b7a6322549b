//! Weighted least squares of a polynomial y(x) = c_0 + c_1 x + ... through points with
//! errors: DMC's extrapolation of the energy to a zero time step.

/// The coefficients of a fit, lowest order first, with their covariance and the fit's chi^2.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub coefficients: Vec<f64>,
    /// covariance[i][j] of coefficients i and j.
    pub covariance: Vec<Vec<f64>>,
    pub chi_squared: f64,
}

impl Fit {
    /// The fitted polynomial at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, c| acc * x + c)
    }
}

/// The polynomial of `degree` through the points (x, y) with errors `sigma` (weights
/// 1/sigma^2); `None` without more points than coefficients, with an error that is not a
/// positive number, or for a singular system (points at fewer distinct x than coefficients).
pub fn polynomial_fit(x: &[f64], y: &[f64], sigma: &[f64], degree: usize) -> Option<Fit> {
    let k = degree + 1;
    if x.len() < k || sigma.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return None;
    }
    // Normal equations A c = b, A = X^T W X, b = X^T W y.
    let mut a = vec![vec![0.0; k]; k];
    let mut b = vec![0.0; k];
    for ((&xi, &yi), &si) in x.iter().zip(y).zip(sigma) {
        let w = 1.0 / (si * si);
        let powers: Vec<f64> = (0..k).map(|p| xi.powi(p as i32)).collect();
        for i in 0..k {
            b[i] += w * powers[i] * yi;
            for j in 0..k {
                a[i][j] += w * powers[i] * powers[j];
            }
        }
    }
    let covariance = inverse(a)?;
    let coefficients: Vec<f64> = (0..k)
        .map(|i| (0..k).map(|j| covariance[i][j] * b[j]).sum())
        .collect();
    let fit = Fit {
        coefficients,
        covariance,
        chi_squared: 0.0,
    };
    let chi_squared = x
        .iter()
        .zip(y)
        .zip(sigma)
        .map(|((&xi, &yi), &si)| ((yi - fit.at(xi)) / si).powi(2))
        .sum();
    Some(Fit { chi_squared, ..fit })
}

/// The inverse of a small symmetric positive-definite matrix (Gauss-Jordan with partial
/// pivoting); `None` when singular.
fn inverse(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let k = a.len();
    let mut inv: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| (i == j) as u8 as f64).collect())
        .collect();
    let scale = a.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    for col in 0..k {
        let pivot = (col..k).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[pivot][col].abs() <= 1e-13 * scale {
            return None;
        }
        a.swap(pivot, col);
        inv.swap(pivot, col);
        let p = a[col][col];
        for j in 0..k {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in (0..k).filter(|&r| r != col) {
            let f = a[row][col];
            for j in 0..k {
                a[row][j] -= f * a[col][j];
                inv[row][j] -= f * inv[col][j];
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a line are fitted exactly; the intercept's error of two points follows from
    /// propagating their errors through the line.
    #[test]
    fn lines_and_parabolas_are_recovered_with_their_errors() {
        let x = [0.005, 0.01, 0.02];
        let line: Vec<f64> = x.iter().map(|t| 3.0 + 0.5 * t).collect();
        let fit = polynomial_fit(&x, &line, &[1e-4; 3], 1).unwrap();
        assert!((fit.coefficients[0] - 3.0).abs() < 1e-12);
        assert!((fit.coefficients[1] - 0.5).abs() < 1e-9);
        assert!(fit.chi_squared < 1e-12);
        // Two points: y(0) = (x2 y1 - x1 y2) / (x2 - x1), so var = (x2^2 s1^2 + x1^2 s2^2) / dx^2.
        let (x1, x2, s1, s2) = (0.01, 0.02, 1e-3, 2e-3);
        let fit = polynomial_fit(&[x1, x2], &[1.0, 1.0], &[s1, s2], 1).unwrap();
        let expected = ((x2 * s1).powi(2) + (x1 * s2).powi(2)).sqrt() / (x2 - x1);
        assert!((fit.covariance[0][0].sqrt() - expected).abs() < 1e-9 * expected);
        let x = [0.0025, 0.005, 0.01, 0.02];
        let parabola: Vec<f64> = x.iter().map(|t| 20.0 + 2.0 * t - 30.0 * t * t).collect();
        let fit = polynomial_fit(&x, &parabola, &[1e-4; 4], 2).unwrap();
        assert!((fit.at(0.0) - 20.0).abs() < 1e-9, "{:?}", fit.coefficients);
        assert!((fit.coefficients[2] + 30.0).abs() < 1e-4);
    }

    #[test]
    fn too_few_points_or_unusable_errors_give_no_fit() {
        assert_eq!(polynomial_fit(&[0.01], &[3.0], &[1e-3], 1), None);
        assert_eq!(
            polynomial_fit(&[0.01, 0.01], &[3.0, 3.1], &[1e-3; 2], 1),
            None
        );
        assert_eq!(
            polynomial_fit(&[0.01, 0.02], &[3.0, 3.1], &[1e-3, f64::NAN], 1),
            None
        );
    }
}
