//! A scene drawn into pixels, for PNG charts: rectangles, lines of some thickness, dots, and
//! text in lockstep's own bitmap font. No anti-aliasing: the image is drawn at twice the
//! scene's size instead.

use super::font;
use super::layout::{Anchor, Scene, Shape, TEXT_COLOR};

/// An RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Canvas {
    /// Width in pixels.
    pub(crate) width: usize,
    /// Height in pixels.
    pub(crate) height: usize,
    /// Rows of RGB triples, top to bottom.
    pub(crate) pixels: Vec<u8>,
}

/// `scene` drawn at `scale` pixels per scene pixel.
pub(crate) fn draw(scene: &Scene, scale: usize) -> Canvas {
    let s = scale as f64;
    let (width, height) = ((scene.width * s).round() as usize, (scene.height * s).round() as usize);
    let mut c = Canvas { width, height, pixels: vec![255; width * height * 3] };
    for shape in &scene.shapes {
        match shape {
            Shape::Rect { x, y, w, h, fill, .. } => c.rect(x * s, y * s, w * s, h * s, rgb(fill)),
            Shape::Line { x1, y1, x2, y2, stroke, .. } => c.line((x1 * s, y1 * s), (x2 * s, y2 * s), s, rgb(stroke)),
            Shape::Polyline { points, stroke, .. } => {
                for w in points.windows(2) {
                    c.line((w[0].0 * s, w[0].1 * s), (w[1].0 * s, w[1].1 * s), 1.6 * s, rgb(stroke));
                }
            }
            Shape::Dot { x, y, fill, .. } => c.dot(x * s, y * s, 3.5 * s, rgb(fill)),
            Shape::Text { x, y, text, size, anchor, vertical, .. } => {
                c.text(x * s, y * s, text, size * s, *anchor, *vertical, rgb(TEXT_COLOR))
            }
        }
    }
    c
}

/// `#rrggbb` as bytes.
fn rgb(hex: &str) -> [u8; 3] {
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0);
    [byte(1), byte(3), byte(5)]
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = (y as usize * self.width + x as usize) * 3;
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, color: [u8; 3]) {
        for py in y.round() as i64..(y + h).round() as i64 {
            for px in x.round() as i64..(x + w).round() as i64 {
                self.set(px, py, color);
            }
        }
    }

    fn dot(&mut self, cx: f64, cy: f64, r: f64, color: [u8; 3]) {
        let ri = r.ceil() as i64;
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if ((dx * dx + dy * dy) as f64) <= r * r {
                    self.set(cx.round() as i64 + dx, cy.round() as i64 + dy, color);
                }
            }
        }
    }

    /// A line `width` pixels thick: a square of that size stamped along it.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), width: f64, color: [u8; 3]) {
        let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().max(1.0) as usize;
        let half = (width / 2.0).max(0.5);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            self.rect(x - half, y - half, 2.0 * half, 2.0 * half, color);
        }
    }

    /// Text with its baseline at `y`; a glyph cell is a tenth of the size, rounded.
    #[allow(clippy::too_many_arguments)]
    fn text(&mut self, x: f64, y: f64, text: &str, size: f64, anchor: Anchor, vertical: bool, color: [u8; 3]) {
        let cell = (size / 10.0).round().max(1.0) as i64;
        let advance = 6 * cell;
        let length = text.chars().count() as i64 * advance - cell;
        let start = match anchor {
            Anchor::Start => 0,
            Anchor::Middle => -length / 2,
            Anchor::End => -length,
        };
        let (x0, y0) = (x.round() as i64, y.round() as i64);
        for (i, ch) in text.chars().enumerate() {
            let along = start + i as i64 * advance;
            for (row, bits) in font::glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) == 0 {
                        continue;
                    }
                    // Glyph coordinates: u along the text, v up from the baseline.
                    let (u, v) = (along + col * cell, (7 - row as i64) * cell);
                    for dy in 0..cell {
                        for dx in 0..cell {
                            match vertical {
                                false => self.set(x0 + u + dx, y0 - v + dy, color),
                                true => self.set(x0 - v + dy, y0 - u - dx, color),
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::chart::{Chart, Series};

    #[test]
    fn lines_and_text_leave_their_colours_on_a_white_canvas() {
        let series = Series { name: "loss".into(), points: vec![(0.0, 1.0), (10.0, 0.0)] };
        let canvas = draw(&Scene::lay_out(&Chart::lines("loss", "step", "loss", vec![series])), 2);
        assert_eq!((canvas.width, canvas.height), (1280, 640));
        let count = |c: [u8; 3]| canvas.pixels.chunks(3).filter(|p| *p == c).count();
        assert!(count(rgb(super::super::PALETTE[0])) > 1000, "the line is drawn");
        assert!(count(rgb("#222222")) > 200, "the text is drawn");
        assert!(count([255, 255, 255]) > canvas.width * canvas.height / 2, "mostly background");
        assert_eq!(rgb("#1f6fd1"), [0x1f, 0x6f, 0xd1]);
    }
}
