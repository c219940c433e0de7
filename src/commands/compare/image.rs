//! PNG images compared pixel by pixel: both decoded to 8-bit RGBA (whatever their colour
//! types), their dimensions, and how many pixels differ.

use serde::Serialize;

/// Two images, compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDiff {
    /// Width and height of the original.
    pub dimensions_original: (u32, u32),
    /// Width and height of the re-run's.
    pub dimensions_rerun: (u32, u32),
    /// Pixels in each (when the dimensions agree).
    pub pixels: Option<u64>,
    /// Pixels whose RGBA values differ (when the dimensions agree).
    pub differing_pixels: Option<u64>,
}

/// Two PNG images; `None` when either cannot be decoded.
pub fn png(old: &[u8], new: &[u8]) -> Option<ImageDiff> {
    let ((wa, ha, a), (wb, hb, b)) = (rgba(old)?, rgba(new)?);
    let same = (wa, ha) == (wb, hb);
    let differing = a.chunks_exact(4).zip(b.chunks_exact(4)).filter(|(p, q)| p != q).count() as u64;
    Some(ImageDiff {
        dimensions_original: (wa, ha),
        dimensions_rerun: (wb, hb),
        pixels: same.then_some(u64::from(wa) * u64::from(ha)),
        differing_pixels: same.then_some(differing),
    })
}

/// The first frame of a PNG file as width, height and RGBA bytes.
fn rgba(bytes: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return None,
    };
    let (width, height) = (info.width as usize, info.height as usize);
    let mut out = Vec::with_capacity(width * height * 4);
    for line in buf[..info.buffer_size()].chunks_exact(info.line_size) {
        for px in line[..width * channels].chunks_exact(channels) {
            let rgba = match *px {
                [g] => [g, g, g, 255],
                [g, a] => [g, g, g, a],
                [r, g, b] => [r, g, b, 255],
                [r, g, b, a] => [r, g, b, a],
                _ => unreachable!("chunks of 1 to 4 bytes"),
            };
            out.extend_from_slice(&rgba);
        }
    }
    Some((info.width, info.height, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    #[test]
    fn images_compare_pixel_by_pixel_across_colour_types() {
        let gray = encode(3, 2, png::ColorType::Grayscale, &[0, 10, 20, 30, 40, 50]);
        let mut rgb: Vec<u8> = [0u8, 10, 20, 30, 40, 50].iter().flat_map(|&g| [g, g, g]).collect();
        rgb[4 * 3] = 99;
        let rgb = encode(3, 2, png::ColorType::Rgb, &rgb);
        let d = png(&gray, &rgb).unwrap();
        assert_eq!((d.dimensions_original, d.pixels, d.differing_pixels), ((3, 2), Some(6), Some(1)));
        let small = encode(1, 1, png::ColorType::Grayscale, &[0]);
        let d = png(&gray, &small).unwrap();
        assert_eq!((d.dimensions_rerun, d.differing_pixels), ((1, 1), None));
        assert!(png(b"not a png", &gray).is_none());
    }
}
