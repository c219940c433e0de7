//! Axis ticks on "nice" values (1, 2 or 5 times a power of ten) and their labels, as short as
//! the step between them allows.

/// About how many ticks an axis gets.
const TARGET_TICKS: f64 = 5.0;

/// The range an axis covers and its ticks: `lo` and `hi` are widened to whole steps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Axis {
    /// The start of the axis.
    pub(crate) lo: f64,
    /// The end of the axis.
    pub(crate) hi: f64,
    /// The tick values, from `lo` to `hi`.
    pub(crate) ticks: Vec<f64>,
    /// The step between ticks.
    pub(crate) step: f64,
}

impl Axis {
    /// An axis covering `min..=max` (a single value, or none, gets a range around it).
    pub(crate) fn covering(min: f64, max: f64) -> Axis {
        let (min, max) = match (min.is_finite(), max.is_finite()) {
            (true, true) if max > min => (min, max),
            (true, true) => (min - 0.5 * min.abs().max(1.0), min + 0.5 * min.abs().max(1.0)),
            _ => (0.0, 1.0),
        };
        let step = nice_step((max - min) / TARGET_TICKS);
        let lo = (min / step).floor() * step;
        let hi = (max / step).ceil() * step;
        let n = ((hi - lo) / step).round() as usize;
        let ticks = (0..=n).map(|i| clean(lo + i as f64 * step, step)).collect();
        Axis { lo, hi, ticks, step }
    }

    /// Where `v` falls on the axis, from 0 (at `lo`) to 1 (at `hi`).
    pub(crate) fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// The label of tick `v`.
    pub(crate) fn label(&self, v: f64) -> String {
        label(v, self.step)
    }
}

/// The nice step at or above `rough`.
fn nice_step(rough: f64) -> f64 {
    let magnitude = 10f64.powf(rough.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0].into_iter().find(|m| m * magnitude >= rough * (1.0 - 1e-9)).unwrap_or(10.0);
    nice * magnitude
}

/// `v` rounded to the step's precision, so that 0.1 * 3 shows as 0.3 and -0 as 0.
fn clean(v: f64, step: f64) -> f64 {
    let r = (v / step).round() * step;
    if r.abs() < step * 1e-9 { 0.0 } else { r }
}

/// A tick label: as many decimals as the step needs, or an exponent for very large and very
/// small values.
fn label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-4..1e6).contains(&a) {
        let digits = ((a.log10().floor() - step.log10().floor()) as usize).min(6);
        return format!("{v:.digits$e}");
    }
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fall_on_nice_steps_covering_the_data() {
        let a = Axis::covering(0.13, 0.92);
        assert_eq!(a.step, 0.2);
        assert_eq!(a.ticks.iter().map(|t| a.label(*t)).collect::<Vec<_>>(), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let b = Axis::covering(0.0, 9999.0);
        assert_eq!((b.lo, b.hi, b.step), (0.0, 10000.0, 2000.0));
        assert_eq!(b.label(4000.0), "4000");
        assert_eq!(Axis::covering(-3.0, 7.0).ticks, [-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]);
    }

    #[test]
    fn one_value_or_none_still_makes_an_axis() {
        let one = Axis::covering(5.0, 5.0);
        assert!(one.lo < 5.0 && one.hi > 5.0);
        let none = Axis::covering(f64::INFINITY, f64::NEG_INFINITY);
        assert_eq!((none.lo, none.hi), (0.0, 1.0));
        assert!((0.0..=1.0).contains(&one.fraction(5.0)));
    }

    #[test]
    fn labels_of_extreme_values_use_exponents() {
        assert_eq!(label(2.5e-6, 5e-7), "2.5e-6");
        assert_eq!(label(2e-6, 1e-6), "2e-6");
        assert_eq!(label(3e7, 1e7), "3e7");
        assert_eq!(label(-0.25, 0.05), "-0.25");
    }
}
