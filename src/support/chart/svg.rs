//! A scene as an SVG document: every text escaped, every shape with its role as a class.

use std::fmt::Write;

use super::layout::{Anchor, Scene, Shape, TEXT_COLOR};
use crate::support::text::xml_escape as escape;

/// The SVG document of `scene`.
pub(crate) fn render(scene: &Scene) -> String {
    let (w, h) = (scene.width, scene.height);
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" role="img"><title>{}</title>"#,
        escape(&scene.title)
    );
    for shape in &scene.shapes {
        match shape {
            Shape::Rect { x, y, w, h, fill, class } => {
                let _ = write!(
                    out,
                    r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"/>"#
                );
            }
            Shape::Line { x1, y1, x2, y2, stroke, class } => {
                let _ = write!(
                    out,
                    r#"<line class="{class}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}"/>"#
                );
            }
            Shape::Polyline { points, stroke, series } => {
                let _ = write!(
                    out,
                    r#"<polyline class="series" data-series="{}" fill="none" stroke="{stroke}" stroke-width="1.6" stroke-linejoin="round" points=""#,
                    escape(series)
                );
                for (x, y) in points {
                    let _ = write!(out, "{x:.1},{y:.1} ");
                }
                out.push_str(r#""/>"#);
            }
            Shape::Dot { x, y, fill, series } => {
                let _ = write!(
                    out,
                    r#"<circle class="dot" data-series="{}" cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{fill}"/>"#,
                    escape(series)
                );
            }
            Shape::Text { x, y, text, size, anchor, vertical, class } => {
                let anchor = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let turn = if *vertical { format!(r#" transform="rotate(-90 {x:.1} {y:.1})""#) } else { String::new() };
                let _ = write!(
                    out,
                    r#"<text class="{class}" x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{TEXT_COLOR}"{turn}>{}</text>"#,
                    escape(text)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use crate::support::chart::{Chart, Series};

    #[test]
    fn names_are_escaped_and_each_series_is_one_polyline() {
        let series = |name: &str| Series { name: name.into(), points: vec![(0.0, 1.0), (1.0, 0.5), (2.0, 0.25)] };
        let svg = Chart::lines("<loss> & co", "step", "loss", vec![series("a\"b"), series("c")]).svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(svg.contains("<title>&lt;loss&gt; &amp; co</title>"));
        assert!(svg.contains(r#"data-series="a&quot;b""#));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(r#"class="axis x""#) && svg.contains(r#"class="tick y""#));
        assert!(!svg.contains("NaN"));
    }
}
