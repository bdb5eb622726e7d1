//! The statistics every command shares, hand-rolled so that the formulas
//! can be read.
//!
//! The samples of a (label, scenario) are its repeats, never its messages:
//! the messages of one run are not independent of each other.
//!
//! - [`Summary`]: the median with a distribution-free 95% confidence
//!   interval from order statistics, `[x_(k), x_(n+1-k)]` with `k` the
//!   largest rank whose binomial(n, ½) tail is at most 2.5% on each side.
//!   It needs n ≥ 6; below that the summary is the min–max, labelled as such.
//! - [`mann_whitney`]: the Mann–Whitney U test of two sets of repeats,
//!   two-sided. Exact for small sets: without ties the U distribution
//!   enumerated by its recurrence; with ties every split of the pooled
//!   midranks enumerated. Otherwise the normal approximation with the tie
//!   correction of the variance and a continuity correction.
//! - [`ratio_ci`]: a 95% confidence interval for the ratio B / A, the
//!   Hodges–Lehmann estimate on log values: the pairwise differences
//!   `ln b_j − ln a_i` sorted, the interval between the `k`-th smallest and
//!   the `k`-th largest, `k − 1` the lower critical value of U (the
//!   distribution-free interval that inverts the Mann–Whitney test, as in
//!   Hollander & Wolfe, Nonparametric Statistical Methods, §4.3). Not a
//!   bootstrap.
//! - [`holm`]: Holm–Bonferroni adjusted p-values over a family of tests
//!   (the chance of any false finding at most α).
//! - [`benjamini_hochberg`]: Benjamini–Hochberg adjusted p-values (the
//!   expected share of false findings among the findings at most α; the
//!   same guarantee as Holm's when nothing changed).

/// The two-sided level of every interval and test here.
pub const ALPHA: f64 = 0.05;

/// Above this many pooled values U's distribution is approximated.
const EXACT_UP_TO: usize = 60;

/// With ties, the test is exact while it can enumerate every way of
/// drawing the first set from the pooled values (C(20, 10) = 184,756).
const EXACT_ORDERINGS: f64 = 200_000.0;

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|value| value.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The median of a set of repeats and how far it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
    /// `low`–`high` is a 95% confidence interval of the median (n ≥ 6);
    /// otherwise it is the min–max.
    pub is_ci: bool,
}

impl Summary {
    /// `None` when no value is finite.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let sorted = sorted(values);
        let n = sorted.len();
        if n == 0 {
            return None;
        }
        let (low, high, is_ci) = match median_ci_ranks(n) {
            Some((low, high)) => (sorted[low - 1], sorted[high - 1], true),
            None => (sorted[0], sorted[n - 1], false),
        };
        Some(Summary {
            median: median(&sorted),
            low,
            high,
            n,
            is_ci,
        })
    }

    /// `1234 [1200, 1260]`, or `1234 [1200–1260] n = 3: no CI`, with the
    /// numbers formatted by `format`; a single run is its value alone.
    pub fn text(&self, format: impl Fn(f64) -> String) -> String {
        if self.is_ci {
            format!(
                "{} [{}, {}]",
                format(self.median),
                format(self.low),
                format(self.high)
            )
        } else if self.n == 1 {
            format(self.median)
        } else {
            format!(
                "{} [{}–{}] n = {}: no CI",
                format(self.median),
                format(self.low),
                format(self.high),
                self.n
            )
        }
    }
}

/// The 1-based ranks `(k, n + 1 − k)` of the order statistics bounding a
/// distribution-free 95% confidence interval of the median of `n` values:
/// `k` is the largest rank with `P(B ≤ k − 1) ≤ 2.5%` for `B ~ Binomial(n, ½)`.
/// `None` for n < 6, where even `[min, max]` covers less than 95%.
pub fn median_ci_ranks(n: usize) -> Option<(usize, usize)> {
    let mut below = 0.0; // P(B ≤ k − 1)
    let mut k = 0;
    for successes in 0..n {
        below += binomial_half(n, successes);
        if below > ALPHA / 2.0 {
            break;
        }
        k = successes + 1;
    }
    (k >= 1).then_some((k, n + 1 - k))
}

/// The exact coverage of the interval [`median_ci_ranks`] gives.
#[cfg(test)]
pub fn median_ci_coverage(n: usize) -> Option<f64> {
    let (k, _) = median_ci_ranks(n)?;
    let tail: f64 = (0..k).map(|successes| binomial_half(n, successes)).sum();
    Some(1.0 - 2.0 * tail)
}

/// `P(B = k)` for `B ~ Binomial(n, ½)`.
fn binomial_half(n: usize, k: usize) -> f64 {
    choose(n, k) * 0.5f64.powi(n as i32)
}

fn choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (0..k).fold(1.0, |product, i| product * (n - i) as f64 / (i + 1) as f64)
}

/// The outcome of a Mann–Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTest {
    /// The number of pairs (a, b) with a > b, ties counted a half.
    pub u: f64,
    /// Two-sided.
    pub p_value: f64,
    pub exact: bool,
}

/// Mann–Whitney U of `a` against `b`, two-sided. `None` when either is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let (a, b) = (sorted(a), sorted(b));
    let (m, n) = (a.len(), b.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut u = 0.0;
    for x in &a {
        for y in &b {
            u += if x > y {
                1.0
            } else if x == y {
                0.5
            } else {
                0.0
            };
        }
    }
    let mut pooled: Vec<f64> = a.iter().chain(&b).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let tie_sizes = tie_sizes(&pooled);
    let tied = tie_sizes.iter().any(|&size| size > 1);
    if !tied && m + n <= EXACT_UP_TO {
        let counts = u_counts(m, n);
        let total: f64 = counts.iter().sum();
        let u = u as usize;
        let below: f64 = counts[..=u].iter().sum::<f64>() / total;
        let above: f64 = counts[u..].iter().sum::<f64>() / total;
        return Some(RankTest {
            u: u as f64,
            p_value: (2.0 * below.min(above)).min(1.0),
            exact: true,
        });
    }
    if tied && choose(m + n, m) <= EXACT_ORDERINGS {
        return Some(RankTest {
            u,
            p_value: tied_exact_p(&a, &pooled, &tie_sizes),
            exact: true,
        });
    }
    let (mf, nf, total) = (m as f64, n as f64, (m + n) as f64);
    let tie_term: f64 = tie_sizes
        .iter()
        .map(|&size| {
            let t = size as f64;
            t * t * t - t
        })
        .sum();
    let variance = mf * nf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
    let mean = mf * nf / 2.0;
    let p_value = if variance <= 0.0 {
        1.0
    } else {
        let z = ((u - mean).abs() - 0.5).max(0.0) / variance.sqrt();
        (2.0 * normal_upper_tail(z)).min(1.0)
    };
    Some(RankTest {
        u,
        p_value,
        exact: false,
    })
}

/// The exact two-sided p-value with ties: every way of choosing which m of
/// the pooled midranks belong to the first set, equally likely under the
/// null hypothesis; p is the share whose rank sum lies at least as far from
/// its mean `m (N + 1) / 2` as the observed one.
fn tied_exact_p(a: &[f64], pooled: &[f64], tie_sizes: &[usize]) -> f64 {
    let mut midranks = Vec::with_capacity(pooled.len());
    let mut below = 0;
    for &size in tie_sizes {
        let midrank = below as f64 + (size as f64 + 1.0) / 2.0;
        midranks.extend(std::iter::repeat_n(midrank, size));
        below += size;
    }
    let rank_of = |value: f64| midranks[pooled.partition_point(|&pooled_value| pooled_value < value)];
    let m = a.len();
    let mean = m as f64 * (pooled.len() as f64 + 1.0) / 2.0;
    let observed = (a.iter().map(|&value| rank_of(value)).sum::<f64>() - mean).abs();
    let (mut as_far, mut all) = (0u64, 0u64);
    // Every m-subset of the positions, by recursion on the next position.
    fn visit(midranks: &[f64], from: usize, left: usize, sum: f64, on_subset: &mut dyn FnMut(f64)) {
        if left == 0 {
            on_subset(sum);
            return;
        }
        for position in from..=midranks.len() - left {
            visit(
                midranks,
                position + 1,
                left - 1,
                sum + midranks[position],
                on_subset,
            );
        }
    }
    visit(&midranks, 0, m, 0.0, &mut |sum| {
        all += 1;
        if (sum - mean).abs() >= observed - 1e-9 {
            as_far += 1;
        }
    });
    as_far as f64 / all as f64
}

/// The sizes of the runs of equal values in a sorted slice.
fn tie_sizes(sorted: &[f64]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut start = 0;
    for index in 1..=sorted.len() {
        if index == sorted.len() || sorted[index] != sorted[start] {
            sizes.push(index - start);
            start = index;
        }
    }
    sizes
}

/// How many of the `C(m + n, m)` orderings of two sets of sizes m and n
/// give each value of U (index u = 0..=mn): the recurrence of Mann and
/// Whitney (1947), `N(u; m, n) = N(u − n; m − 1, n) + N(u; m, n − 1)`
/// (the largest value is from the first set, or from the second).
pub fn u_counts(m: usize, n: usize) -> Vec<f64> {
    // table[j][u] = counts for (i, j) while i goes up row by row.
    let mut table: Vec<Vec<f64>> = (0..=n).map(|_| vec![1.0]).collect();
    for i in 1..=m {
        let mut next: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
        next.push(vec![1.0]); // j = 0: only U = 0
        for j in 1..=n {
            let mut counts = vec![0.0; i * j + 1];
            // The largest is from the first set: it beats all j of the second.
            for (u, count) in table[j].iter().enumerate() {
                counts[u + j] += count;
            }
            // The largest is from the second set: it beats none.
            for (u, count) in next[j - 1].iter().enumerate() {
                counts[u] += count;
            }
            next.push(counts);
        }
        table = next;
    }
    table.swap_remove(n)
}

/// `P(U ≤ u)` for sets of sizes m and n with no ties.
#[cfg(test)]
pub fn u_lower_tail(m: usize, n: usize, u: usize) -> f64 {
    let counts = u_counts(m, n);
    let total: f64 = counts.iter().sum();
    counts[..=u.min(m * n)].iter().sum::<f64>() / total
}

/// The two-sided lower critical value of U at level `ALPHA`: the largest u
/// with `2 P(U ≤ u) ≤ ALPHA`; `None` when no u is (too few repeats). Exact
/// for small sets, from the normal approximation above `EXACT_UP_TO`.
pub fn u_critical(m: usize, n: usize) -> Option<usize> {
    if m == 0 || n == 0 {
        return None;
    }
    if m + n > EXACT_UP_TO {
        let (mf, nf) = (m as f64, n as f64);
        let sd = (mf * nf * (mf + nf + 1.0) / 12.0).sqrt();
        let value = mf * nf / 2.0 - 1.959_964 * sd - 0.5;
        return (value >= 0.0).then(|| value.floor() as usize);
    }
    let counts = u_counts(m, n);
    let total: f64 = counts.iter().sum();
    let mut below = 0.0;
    let mut critical = None;
    for (u, count) in counts.iter().enumerate() {
        below += count / total;
        if 2.0 * below > ALPHA + 1e-12 {
            break;
        }
        critical = Some(u);
    }
    critical
}

/// The smallest two-sided p-value the exact test can give for sets of
/// sizes m and n: `2 / C(m + n, m)` (all of one set below all of the other).
pub fn smallest_p(m: usize, n: usize) -> f64 {
    (2.0 / choose(m + n, m)).min(1.0)
}

/// A ratio B / A with its 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioCi {
    /// exp of the Hodges–Lehmann estimate: the median pairwise ratio.
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// The Hodges–Lehmann ratio B / A and its distribution-free 95% interval
/// (see the module doc). `None` when a value is not positive or the sets
/// are too small for any interval (no critical value of U).
pub fn ratio_ci(a: &[f64], b: &[f64]) -> Option<RatioCi> {
    let (a, b) = (sorted(a), sorted(b));
    if a.iter().chain(&b).any(|&value| value <= 0.0) {
        return None;
    }
    let critical = u_critical(a.len(), b.len())?;
    let mut differences: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| y.ln() - x.ln()))
        .collect();
    differences.sort_by(f64::total_cmp);
    let count = differences.len();
    let k = critical + 1;
    Some(RatioCi {
        estimate: median(&differences).exp(),
        low: differences[k - 1].exp(),
        high: differences[count - k].exp(),
    })
}

/// Holm–Bonferroni: each p-value adjusted for the family it belongs to, in
/// the order given. Sorted ascending, the i-th (from 0) becomes
/// `max over j ≤ i of min(1, (m − j) p_(j))`; a test is significant at
/// level α when its adjusted p is at most α.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| p_values[x].total_cmp(&p_values[y]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (position, &index) in order.iter().enumerate() {
        running = running.max(((m - position) as f64 * p_values[index]).min(1.0));
        adjusted[index] = running;
    }
    adjusted
}

/// Benjamini–Hochberg: each p-value adjusted for the family, in the order
/// given. Sorted ascending, the i-th of m (from 1) becomes
/// `min over j ≥ i of min(1, m p_(j) / j)`; the tests whose adjusted p is
/// at most q keep the false discovery rate at q (Benjamini and Hochberg,
/// JRSS B 57, 1995). Where Holm asks `α / m` of the smallest p, this asks
/// `α k / m` of the k-th: k changes found together need less each.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| p_values[x].total_cmp(&p_values[y]));
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0f64;
    for (position, &index) in order.iter().enumerate().rev() {
        running = running.min(m as f64 * p_values[index] / (position + 1) as f64);
        adjusted[index] = running;
    }
    adjusted
}

/// `P(Z > z)` for a standard normal Z: `erfc(z / √2) / 2`, with the
/// Chebyshev fit of erfc from Numerical Recipes (§6.2, fractional error
/// below 1.2e-7 everywhere).
pub fn normal_upper_tail(z: f64) -> f64 {
    erfc(z / std::f64::consts::SQRT_2) / 2.0
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    /// The ranks of the order statistics that bound a 95% CI of the median,
    /// and their exact confidence, for n = 6..20, as tabulated in Campbell &
    /// Gardner, "Calculating confidence intervals for some non-parametric
    /// analyses", BMJ 296 (1988) 1454–1456, Table I (reprinted in Altman et
    /// al., Statistics with Confidence, 2nd ed., Table 18.4).
    #[test]
    fn median_ci_ranks_match_the_published_table() {
        let table: [(usize, usize, usize, f64); 15] = [
            (6, 1, 6, 96.9),
            (7, 1, 7, 98.4),
            (8, 1, 8, 99.2),
            (9, 2, 8, 96.1),
            (10, 2, 9, 97.9),
            (11, 2, 10, 98.8),
            (12, 3, 10, 96.1),
            (13, 3, 11, 97.8),
            (14, 3, 12, 98.7),
            (15, 4, 12, 96.5),
            (16, 4, 13, 97.9),
            (17, 5, 13, 95.1),
            (18, 5, 14, 96.9),
            (19, 5, 15, 98.1),
            (20, 6, 15, 95.9),
        ];
        for (n, low, high, confidence) in table {
            assert_eq!(median_ci_ranks(n), Some((low, high)), "n = {n}");
            let coverage = median_ci_coverage(n).unwrap() * 100.0;
            assert!(close(coverage, confidence, 0.05), "n = {n}: {coverage}");
        }
        for n in 1..6 {
            assert_eq!(median_ci_ranks(n), None, "n = {n} has no 95% CI");
        }
    }

    #[test]
    fn summaries_give_a_ci_from_six_repeats_and_the_range_below() {
        let six = Summary::of(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!((six.median, six.low, six.high, six.is_ci), (3.5, 1.0, 6.0, true));
        assert_eq!(six.text(|v| format!("{v}")), "3.5 [1, 6]");
        let three = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert!(!three.is_ci);
        assert_eq!(three.text(|v| format!("{v}")), "2 [1–3] n = 3: no CI");
        assert_eq!(Summary::of(&[7.0]).unwrap().text(|v| format!("{v}")), "7");
        assert!(Summary::of(&[f64::NAN]).is_none());
        // Twelve values: ranks 3 and 10.
        let values: Vec<f64> = (1..=12).map(f64::from).collect();
        let twelve = Summary::of(&values).unwrap();
        assert_eq!((twelve.low, twelve.high), (3.0, 10.0));
    }

    /// Exact lower-tail probabilities of U from Mann & Whitney, "On a test
    /// of whether one of two random variables is stochastically larger than
    /// the other", Ann. Math. Statist. 18 (1947) 50–60, Table I.
    #[test]
    fn the_u_distribution_matches_mann_and_whitney_1947() {
        for (m, n, u, probability) in [
            (3, 3, 0, 0.050),
            (3, 3, 1, 0.100),
            (4, 4, 0, 0.014),
            (4, 4, 1, 0.029),
            (4, 4, 2, 0.057),
            (5, 5, 2, 0.016),
            (5, 5, 4, 0.048),
            (6, 6, 5, 0.021),
            (8, 8, 13, 0.025),
        ] {
            let tail = u_lower_tail(m, n, u);
            assert!(close(tail, probability, 0.0005), "P(U ≤ {u}; {m}, {n}) = {tail}");
        }
        assert_eq!(u_counts(4, 4).iter().sum::<f64>(), 70.0);
    }

    /// Two-tailed critical values of U at α = 0.05 (reject when U is at most
    /// the value; "–" when no U can reject), from the standard table, e.g.
    /// Zar, Biostatistical Analysis, 5th ed., Table B.11, as the lower value
    /// `mn − U'`.
    #[test]
    fn critical_values_match_the_published_table() {
        for (m, n, critical) in [
            (3, 3, None),
            (3, 5, Some(0)),
            (4, 4, Some(0)),
            (5, 5, Some(2)),
            (6, 6, Some(5)),
            (7, 7, Some(8)),
            (8, 8, Some(13)),
            (9, 9, Some(17)),
            (10, 10, Some(23)),
            (5, 10, Some(8)),
            (20, 20, Some(127)),
        ] {
            assert_eq!(u_critical(m, n), critical, "m = {m}, n = {n}");
        }
        assert!(close(smallest_p(3, 3), 0.1, 1e-12));
        assert!(close(smallest_p(6, 6), 2.0 / 924.0, 1e-12));
    }

    #[test]
    fn the_test_is_exact_without_ties_and_approximate_with_them() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let test = mann_whitney(&a, &b).unwrap();
        assert!(test.exact && test.u == 0.0);
        assert!(close(test.p_value, 2.0 / 924.0, 1e-12));
        assert_eq!(mann_whitney(&b, &a).unwrap().u, 36.0);
        let identical = mann_whitney(&a, &a).unwrap();
        assert!(identical.exact && identical.u == 18.0 && identical.p_value == 1.0);
        // Ties, enumerated: a = 1 2 2, b = 2 3 3 have midranks 1 3 3 | 3
        // 5.5 5.5; a's rank sum 7 lies 3.5 from its mean 10.5, as do 6 of
        // the 20 ways to draw three of the six (sums 7, 7, 7, 14, 14, 14).
        let tied = mann_whitney(&[1.0, 2.0, 2.0], &[2.0, 3.0, 3.0]).unwrap();
        assert!(tied.exact && tied.u == 1.0);
        assert!(close(tied.p_value, 0.3, 1e-12), "{}", tied.p_value);
        // The normal approximation, for sets too large to enumerate with a
        // tie: 20 a side, all of a below all of b but one tie. U = 0.5,
        // mean 200, variance 400/12 × (41 − 6/1560) = 1366.54, continuity
        // 0.5: z = 199 / 36.967 = 5.3832, p = 2 × 3.66e-8.
        let low: Vec<f64> = (1..=19).map(f64::from).chain([21.0]).collect();
        let high: Vec<f64> = (21..=40).map(f64::from).collect();
        let approximate = mann_whitney(&low, &high).unwrap();
        assert!(!approximate.exact && approximate.u == 0.5);
        assert!(
            close(approximate.p_value, 7.32e-8, 0.05e-8),
            "{}",
            approximate.p_value
        );
        assert!(mann_whitney(&[], &b).is_none());
    }

    #[test]
    fn the_normal_tail_matches_the_table_of_the_normal_distribution() {
        assert!(close(normal_upper_tail(0.0), 0.5, 1e-7));
        assert!(close(normal_upper_tail(1.959_964), 0.025, 1e-7));
        assert!(close(normal_upper_tail(-1.0), 0.841_344_7, 1e-7));
        assert!(close(normal_upper_tail(3.0), 0.001_349_9, 1e-7));
    }

    #[test]
    fn the_ratio_ci_inverts_the_rank_test() {
        let a = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0];
        let b: Vec<f64> = a.iter().map(|value| value * 0.7).collect();
        let ratio = ratio_ci(&a, &b).unwrap();
        assert!(close(ratio.estimate, 0.7, 1e-9));
        // 36 pairwise ratios, critical U 5: the 6th smallest and the 6th
        // largest. Below 0.7 × 103/100 lie 0.7 × 100/105, 100/104, 101/105,
        // 100/103, 101/104, 102/105: the 6th is 0.7 × 102/105.
        assert!(close(ratio.low, 0.7 * 102.0 / 105.0, 1e-9), "{ratio:?}");
        assert!(close(ratio.high, 0.7 * 105.0 / 102.0, 1e-9), "{ratio:?}");
        assert!(ratio_ci(&a[..3], &b[..3]).is_none(), "3 a side: no interval");
        assert!(ratio_ci(&[0.0; 6], &b).is_none());
    }

    /// Holm (1979); the same figures as R's `p.adjust(c(0.01, 0.04, 0.03,
    /// 0.005), "holm")`: 0.03 0.06 0.06 0.02.
    #[test]
    fn holm_adjusts_step_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        for (actual, expected) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!(close(*actual, expected, 1e-12), "{adjusted:?}");
        }
        assert!(holm(&[]).is_empty());
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
    }

    /// Benjamini and Hochberg (1995), §4.1: the 15 p-values of the
    /// myocardial infarction study; at q = 0.05 the procedure rejects the
    /// four smallest (Bonferroni rejects three). The adjusted values as R's
    /// `p.adjust(…, "BH")` gives them.
    #[test]
    fn benjamini_hochberg_rejects_the_papers_four() {
        let p = [
            0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
            0.6528, 0.7590, 1.0,
        ];
        let adjusted = benjamini_hochberg(&p);
        let rejected = adjusted.iter().filter(|&&q| q <= 0.05).count();
        assert_eq!(rejected, 4, "{adjusted:?}");
        for (index, expected) in [(0, 0.0015), (1, 0.003), (2, 0.0095), (3, 0.035625), (4, 0.0603)] {
            assert!(close(adjusted[index], expected, 1e-12), "{adjusted:?}");
        }
        assert!(close(adjusted[14], 1.0, 1e-12));
        // The order given is kept.
        let reversed: Vec<f64> = p.iter().rev().copied().collect();
        let back = benjamini_hochberg(&reversed);
        assert!(close(back[14], 0.0015, 1e-12), "{back:?}");
        assert!(benjamini_hochberg(&[]).is_empty());
    }
}
