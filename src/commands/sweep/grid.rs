//! The grid of a sweep: every `-P` with its values, the Cartesian product of them, and a
//! reproducible random sample of it (`--random N --seed S`).

use std::collections::BTreeSet;

use super::{SweepError, values};

/// Most trials one sweep may plan.
const MAX_TRIALS: u128 = 100_000;

/// The swept parameters in the order given, each with its values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    /// Name and values; a parameter with one value is fixed.
    pub(crate) axes: Vec<(String, Vec<String>)>,
}

/// One point of the grid: a value for every parameter, in the grid's order.
pub(crate) type Point = Vec<(String, String)>;

impl Grid {
    /// Parse `-P NAME=VALUES` arguments; a name given twice is an error.
    pub(crate) fn parse(args: &[String]) -> Result<Grid, SweepError> {
        let mut axes: Vec<(String, Vec<String>)> = Vec::with_capacity(args.len());
        for arg in args {
            let Some((name, text)) = arg.split_once('=').filter(|(n, _)| !n.is_empty()) else {
                return Err(SweepError::ParamWithoutValue { arg: arg.clone() });
            };
            if axes.iter().any(|(n, _)| n == name) {
                return Err(SweepError::RepeatedParam { name: name.to_string() });
            }
            axes.push((name.to_string(), values::parse(name, text)?));
        }
        Ok(Grid { axes })
    }

    /// The names of the parameters with more than one value.
    pub(crate) fn varying(&self) -> Vec<String> {
        self.axes.iter().filter(|(_, v)| v.len() > 1).map(|(n, _)| n.clone()).collect()
    }

    /// How many points the grid has.
    fn size(&self) -> u128 {
        self.axes.iter().map(|(_, v)| v.len() as u128).product()
    }

    /// The point with this index; the last parameter changes fastest.
    fn point(&self, mut index: u128) -> Point {
        let mut point = vec![(String::new(), String::new()); self.axes.len()];
        for (slot, (name, values)) in point.iter_mut().zip(&self.axes).rev() {
            let n = values.len() as u128;
            *slot = (name.clone(), values[(index % n) as usize].clone());
            index /= n;
        }
        point
    }

    /// Every point, or `random` of them drawn with `seed`, in the grid's order.
    pub(crate) fn points(&self, random: Option<usize>, seed: u64) -> Result<Vec<Point>, SweepError> {
        let size = self.size();
        let indices: Vec<u128> = match random {
            Some(k) if (k as u128) < size => sample(size, k, seed),
            _ if size > MAX_TRIALS => return Err(SweepError::TooManyTrials { trials: size, max: MAX_TRIALS }),
            _ => (0..size).collect(),
        };
        Ok(indices.into_iter().map(|i| self.point(i)).collect())
    }
}

/// `k` distinct indices below `n`, sorted (Floyd's algorithm: no list of all `n`).
fn sample(n: u128, k: usize, seed: u64) -> Vec<u128> {
    let mut rng = SplitMix64(seed);
    let mut chosen = BTreeSet::new();
    for j in (n - k as u128)..n {
        let t = rng.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// A small, fixed generator: the same seed draws the same trials on every machine and
/// version, which a general-purpose RNG crate does not promise.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform below `bound` (the modulo bias is below 2^-64 for grids this size).
    fn below(&mut self, bound: u128) -> u128 {
        ((u128::from(self.next()) << 64) | u128::from(self.next())) % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(args: &[&str]) -> Grid {
        Grid::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn show(points: &[Point]) -> Vec<String> {
        points.iter().map(|p| p.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")).collect()
    }

    #[test]
    fn the_grid_is_the_cartesian_product_in_the_order_given() {
        let g = grid(&["a=1,2", "seed=7", "b=x,y,z"]);
        assert_eq!(g.varying(), ["a", "b"]);
        let points = g.points(None, 0).unwrap();
        assert_eq!(
            show(&points),
            [
                "a=1 seed=7 b=x",
                "a=1 seed=7 b=y",
                "a=1 seed=7 b=z",
                "a=2 seed=7 b=x",
                "a=2 seed=7 b=y",
                "a=2 seed=7 b=z"
            ]
        );
        assert_eq!(grid(&[]).points(None, 0).unwrap().len(), 1, "no -P: one trial of the defaults");
    }

    #[test]
    fn random_samples_are_distinct_and_reproducible() {
        let g = grid(&["a=range(0,10,1)", "b=range(0,10,1)"]);
        let one = g.points(Some(7), 42).unwrap();
        assert_eq!(one, g.points(Some(7), 42).unwrap(), "the same seed, the same trials");
        assert_ne!(one, g.points(Some(7), 43).unwrap());
        assert_eq!(show(&one).into_iter().collect::<BTreeSet<_>>().len(), 7);
        assert_eq!(g.points(Some(500), 1).unwrap().len(), 100, "more than the grid: the whole grid");
        let huge = grid(&["a=range(0,1000,1)", "b=range(0,1000,1)", "c=range(0,1000,1)"]);
        assert_eq!(huge.points(Some(3), 9).unwrap().len(), 3, "a sample of a grid too large to list");
    }

    #[test]
    fn bad_grids_are_refused() {
        let parse = |args: &[&str]| Grid::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(parse(&["a"]), Err(SweepError::ParamWithoutValue { .. })));
        assert!(matches!(parse(&["=1"]), Err(SweepError::ParamWithoutValue { .. })));
        assert!(matches!(parse(&["a=1", "a=2"]), Err(SweepError::RepeatedParam { .. })));
        let huge = grid(&["a=range(0,1000,1)", "b=range(0,1000,1)"]);
        assert!(matches!(huge.points(None, 0), Err(SweepError::TooManyTrials { trials: 1_000_000, .. })));
    }
}
