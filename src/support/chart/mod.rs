//! Charts drawn by lockstep itself: data series in, an SVG document (or a PNG image) out, with
//! axes on nice ticks, a legend, and long series thinned to what the pixels can show.

mod downsample;
mod font;
mod layout;
mod png;
mod raster;
mod svg;
mod ticks;

use layout::Scene;

/// One named series of (x, y) points; non-finite values are left out when drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The name the legend shows.
    pub(crate) name: String,
    /// The points, in any order (lines are drawn in the order of x).
    pub(crate) points: Vec<(f64, f64)>,
}

/// How the points of a series are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A line through the points, in the order of x (metric curves).
    Line,
    /// A dot per point (a metric against a parameter's values).
    Dots,
}

/// A chart to draw.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// The title above the plot.
    pub(crate) title: String,
    /// The x axis's label.
    pub(crate) x_label: String,
    /// The y axis's label.
    pub(crate) y_label: String,
    /// Names of x's categories, when x is an index into them (a parameter's text values).
    pub(crate) x_categories: Option<Vec<String>>,
    /// How points are drawn.
    pub(crate) mark: Mark,
    /// The series, coloured in the order given.
    pub(crate) series: Vec<Series>,
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
}

/// The colours of series, in order (then again from the first).
pub(crate) const PALETTE: [&str; 8] =
    ["#1f6fd1", "#e4572e", "#29a35a", "#9b51e0", "#e8a317", "#17a2b8", "#c2185b", "#6d6d6d"];

impl Chart {
    /// A chart of lines, 640 by 320 pixels.
    pub(crate) fn lines(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Chart {
        Chart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            x_categories: None,
            mark: Mark::Line,
            series,
            width: 640,
            height: 320,
        }
    }

    /// The chart as a standalone SVG document.
    pub(crate) fn svg(&self) -> String {
        svg::render(&Scene::lay_out(self))
    }

    /// The chart as a PNG image (at twice the size, for sharp text).
    pub(crate) fn png(&self) -> Vec<u8> {
        png::encode(&raster::draw(&Scene::lay_out(self), 2))
    }
}
