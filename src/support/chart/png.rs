//! PNG encoding of a canvas: 8-bit RGB, one zlib stream (flate2), chunks with their CRC.

use std::io::Write;

use super::raster::Canvas;

/// The PNG file of `canvas`.
pub(crate) fn encode(canvas: &Canvas) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&(canvas.width as u32).to_be_bytes());
    header.extend_from_slice(&(canvas.height as u32).to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &header);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    let row = canvas.width * 3;
    for line in canvas.pixels.chunks(row) {
        // Filter 0 (none): charts are mostly flat colour, which deflate handles well as it is.
        z.write_all(&[0]).and_then(|()| z.write_all(line)).expect("writing to memory cannot fail");
    }
    chunk(&mut out, b"IDAT", &z.finish().expect("writing to memory cannot fail"));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_its_signature_header_and_pixels() {
        let canvas = Canvas { width: 2, height: 1, pixels: vec![255, 0, 0, 0, 0, 255] };
        let png = encode(&canvas);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 2);
        // The IHDR chunk's CRC, as every PNG reader checks it.
        let crc = crc32fast::hash(&png[12..29]);
        assert_eq!(&png[29..33], &crc.to_be_bytes());
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(png[idat - 4..idat].try_into().unwrap()) as usize;
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&png[idat + 4..idat + 4 + len]), &mut raw)
            .unwrap();
        assert_eq!(raw, [0, 255, 0, 0, 0, 0, 255]);
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
    }
}
