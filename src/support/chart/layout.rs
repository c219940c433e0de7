//! A chart laid out as shapes in pixels: the plot area, grid, axes, tick labels, legend and
//! the series' lines or dots. The SVG and PNG renderers draw the same scene.

use super::ticks::Axis;
use super::{Chart, Mark, PALETTE, downsample};

/// Where a text's x is: its start, middle or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// x is where the text starts.
    Start,
    /// x is the text's middle.
    Middle,
    /// x is where the text ends.
    End,
}

/// One thing to draw; `class` names its role (the SVG keeps it, tests look for it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A filled rectangle.
    Rect { x: f64, y: f64, w: f64, h: f64, fill: &'static str, class: &'static str },
    /// A straight line.
    Line { x1: f64, y1: f64, x2: f64, y2: f64, stroke: &'static str, class: &'static str },
    /// A line through points: one series.
    Polyline { points: Vec<(f64, f64)>, stroke: &'static str, series: String },
    /// A dot of a series.
    Dot { x: f64, y: f64, fill: &'static str, series: String },
    /// Text; `vertical` turns it a quarter to the left (the y axis's label).
    Text { x: f64, y: f64, text: String, size: f64, anchor: Anchor, vertical: bool, class: &'static str },
}

/// A laid-out chart.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scene {
    /// Width in pixels.
    pub(crate) width: f64,
    /// Height in pixels.
    pub(crate) height: f64,
    /// The title, for the SVG's `<title>`.
    pub(crate) title: String,
    /// The shapes, back to front.
    pub(crate) shapes: Vec<Shape>,
}

const FONT: f64 = 12.0;
const TITLE_FONT: f64 = 14.0;
/// How wide a character of the label font is, about: layout needs no font metrics.
const CHAR_WIDTH: f64 = 0.6;
const AXIS_COLOR: &str = "#444444";
const GRID_COLOR: &str = "#e4e4e4";
/// The colour of every text.
pub(crate) const TEXT_COLOR: &str = "#222222";

/// The width of `text` at `size`, about.
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * CHAR_WIDTH
}

impl Scene {
    /// Lay out `chart`.
    pub(crate) fn lay_out(chart: &Chart) -> Scene {
        let (width, height) = (f64::from(chart.width.max(120)), f64::from(chart.height.max(90)));
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let all = || chart.series.iter().flat_map(|s| s.points.iter().filter(finite));
        let (xmin, xmax) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
        let (ymin, ymax) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
        let x_axis = match &chart.x_categories {
            Some(c) => category_axis(c.len()),
            None => Axis::covering(xmin, xmax),
        };
        let y_axis = Axis::covering(ymin, ymax);
        let y_labels: Vec<String> = y_axis.ticks.iter().map(|t| y_axis.label(*t)).collect();
        let widest = y_labels.iter().map(|l| text_width(l, FONT)).fold(0.0, f64::max);

        let mut shapes =
            vec![Shape::Rect { x: 0.0, y: 0.0, w: width, h: height, fill: "#ffffff", class: "background" }];
        shapes.push(text(width / 2.0, 18.0, &chart.title, TITLE_FONT, Anchor::Middle, "title"));
        let legend = legend(chart, width);
        let top = 30.0 + legend.1;
        shapes.extend(legend.0);
        let left = 22.0 + widest + 8.0;
        let (right, bottom) = (width - 16.0, height - 38.0);
        let (plot_w, plot_h) = ((right - left).max(10.0), (bottom - top).max(10.0));
        let px = |x: f64| left + x_axis.fraction(x) * plot_w;
        let py = |y: f64| bottom - y_axis.fraction(y) * plot_h;

        for (t, label) in y_axis.ticks.iter().zip(&y_labels) {
            let y = py(*t);
            shapes.push(Shape::Line { x1: left, y1: y, x2: right, y2: y, stroke: GRID_COLOR, class: "grid" });
            shapes.push(Shape::Line { x1: left - 4.0, y1: y, x2: left, y2: y, stroke: AXIS_COLOR, class: "tick" });
            shapes.push(text(left - 6.0, y + FONT * 0.35, label, FONT, Anchor::End, "tick y"));
        }
        let x_labels: Vec<(f64, String)> = match &chart.x_categories {
            Some(names) => names.iter().enumerate().map(|(i, n)| (i as f64, n.clone())).collect(),
            None => x_axis.ticks.iter().map(|t| (*t, x_axis.label(*t))).collect(),
        };
        for (t, label) in &x_labels {
            let x = px(*t);
            shapes.push(Shape::Line { x1: x, y1: top, x2: x, y2: bottom, stroke: GRID_COLOR, class: "grid" });
            shapes.push(Shape::Line { x1: x, y1: bottom, x2: x, y2: bottom + 4.0, stroke: AXIS_COLOR, class: "tick" });
            shapes.push(text(x, bottom + 16.0, label, FONT, Anchor::Middle, "tick x"));
        }
        shapes.push(Shape::Line { x1: left, y1: bottom, x2: right, y2: bottom, stroke: AXIS_COLOR, class: "axis x" });
        shapes.push(Shape::Line { x1: left, y1: top, x2: left, y2: bottom, stroke: AXIS_COLOR, class: "axis y" });
        shapes.push(text((left + right) / 2.0, height - 8.0, &chart.x_label, FONT, Anchor::Middle, "label x"));
        shapes.push(Shape::Text {
            x: 14.0,
            y: (top + bottom) / 2.0,
            text: chart.y_label.clone(),
            size: FONT,
            anchor: Anchor::Middle,
            vertical: true,
            class: "label y",
        });

        for (i, series) in chart.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let mut points: Vec<(f64, f64)> =
                series.points.iter().filter(finite).map(|&(x, y)| (px(x), py(y))).collect();
            match chart.mark {
                // A line through one point is invisible: it gets a dot.
                Mark::Line if points.len() == 1 => {
                    let (x, y) = points[0];
                    shapes.push(Shape::Dot { x, y, fill: color, series: series.name.clone() });
                }
                Mark::Line => {
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let points = downsample::per_pixel_column(&points);
                    shapes.push(Shape::Polyline { points, stroke: color, series: series.name.clone() });
                }
                Mark::Dots => shapes.extend(points.into_iter().map(|(x, y)| Shape::Dot {
                    x,
                    y,
                    fill: color,
                    series: series.name.clone(),
                })),
            }
        }
        Scene { width, height, title: chart.title.clone(), shapes }
    }
}

/// An axis with one slot per category, at 0, 1, ...: the categories sit inside its ends.
fn category_axis(n: usize) -> Axis {
    let hi = n.max(1) as f64 - 0.5;
    Axis { lo: -0.5, hi, ticks: (0..n).map(|i| i as f64).collect(), step: 1.0 }
}

fn text(x: f64, y: f64, s: &str, size: f64, anchor: Anchor, class: &'static str) -> Shape {
    Shape::Text { x, y, text: s.to_string(), size, anchor, vertical: false, class }
}

/// The legend under the title (only when there is more than one series): a swatch and a name
/// per series, wrapped into rows; and the height it takes.
fn legend(chart: &Chart, width: f64) -> (Vec<Shape>, f64) {
    if chart.series.len() < 2 {
        return (Vec::new(), 0.0);
    }
    let (mut shapes, mut x, mut y) = (Vec::new(), 16.0, 30.0);
    for (i, s) in chart.series.iter().enumerate() {
        let w = 18.0 + text_width(&s.name, FONT) + 14.0;
        if x + w > width - 8.0 && x > 16.0 {
            x = 16.0;
            y += 16.0;
        }
        let fill = PALETTE[i % PALETTE.len()];
        shapes.push(Shape::Rect { x, y: y + 2.0, w: 12.0, h: 8.0, fill, class: "swatch" });
        shapes.push(text(x + 16.0, y + 10.0, &s.name, FONT, Anchor::Start, "legend"));
        x += w;
    }
    (shapes, y - 30.0 + 18.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::chart::Series;

    #[test]
    fn a_long_series_is_thinned_and_stays_inside_the_plot() {
        let points = (0..10_000).map(|i| (i as f64, (i as f64 / 500.0).sin())).collect();
        let chart = Chart::lines("loss", "step", "loss", vec![Series { name: "a".into(), points }]);
        let scene = Scene::lay_out(&chart);
        let lines: Vec<&Vec<(f64, f64)>> = scene
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Polyline { points, .. } => Some(points),
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].len() < 4 * 640, "{} points", lines[0].len());
        assert!(lines[0].iter().all(|(x, y)| (0.0..=640.0).contains(x) && (0.0..=320.0).contains(y)));
        let texts = scene.shapes.iter().filter(|s| matches!(s, Shape::Text { class: "tick x", .. })).count();
        assert!(texts >= 3, "the x axis has ticks");
        assert!(
            !scene.shapes.iter().any(|s| matches!(s, Shape::Rect { class: "swatch", .. })),
            "one series: no legend"
        );
        let one = Chart::lines("rmse", "step", "rmse", vec![Series { name: "a".into(), points: vec![(0.0, 0.5)] }]);
        let dots = Scene::lay_out(&one).shapes.into_iter().filter(|s| matches!(s, Shape::Dot { .. })).count();
        assert_eq!(dots, 1, "a line of one point shows as a dot");
    }

    #[test]
    fn categories_and_dots_place_one_slot_per_value() {
        let mut chart = Chart::lines(
            "rmse by alpha",
            "alpha",
            "rmse",
            vec![
                Series { name: "rmse".into(), points: vec![(0.0, 1.0), (1.0, 2.0), (f64::NAN, 3.0)] },
                Series { name: "r2".into(), points: vec![(1.0, 0.5)] },
            ],
        );
        chart.x_categories = Some(vec!["low".into(), "high".into()]);
        chart.mark = Mark::Dots;
        let scene = Scene::lay_out(&chart);
        assert_eq!(scene.shapes.iter().filter(|s| matches!(s, Shape::Dot { .. })).count(), 3, "NaN left out");
        let labels: Vec<&str> = scene
            .shapes
            .iter()
            .filter_map(|s| match s {
                Shape::Text { class: "tick x", text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(labels, ["low", "high"]);
        assert_eq!(scene.shapes.iter().filter(|s| matches!(s, Shape::Rect { class: "swatch", .. })).count(), 2);
    }
}
