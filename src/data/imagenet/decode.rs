//! JPEG decoding to 8-bit RGB with zune-jpeg.
//!
//! Why zune-jpeg: measured on the benchmark folder of 500x375 photographs
//! at quality 90 (BENCHMARKS.md), one thread, it decoded a full-size image
//! in 1.21 ms, against 1.63 ms for jpeg-decoder (the `image` crate's old
//! backend), 1.81 ms for `image` 0.25 itself and 1.69 ms for libjpeg-turbo
//! 2.1.5 through the `turbojpeg` crate. libjpeg-turbo's DCT scaling wins
//! when a crop may be decoded at 1/2 or less (1.19 ms), but at 224 px a
//! RandomResizedCrop of an ImageNet-sized photograph almost never allows
//! it (the crop's side must be at least twice 224), nor does the 256 px
//! evaluation resize; zune-jpeg is pure Rust (no system library to find at
//! build time) and the crop step shrinks large crops cheaply instead
//! ([`super::transform`]).
//!
//! Greyscale and CMYK (a few hundred ImageNet files) come out as RGB too.
//! A truncated file is an error, although zune-jpeg would fill the missing
//! rows with grey: walking the file's markers must reach the end-of-image
//! marker (bytes after it, which some encoders add, are ignored).

use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// A decoded image: `width * height` pixels, RGB interleaved, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

/// Decodes a JPEG file's bytes to RGB; the error says why it could not.
pub fn decode_rgb(bytes: &[u8]) -> Result<Rgb, String> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG file (no start-of-image marker)".into());
    }
    if !reaches_end_marker(bytes) {
        return Err(format!(
            "truncated: its {} bytes end before the JPEG end-of-image marker",
            bytes.len()
        ));
    }
    let opts = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = JpegDecoder::new_with_options(bytes, opts);
    let pixels = dec
        .decode()
        .map_err(|e| format!("not a readable JPEG: {e:?}"))?;
    let (width, height) = dec
        .dimensions()
        .ok_or_else(|| "a JPEG without dimensions".to_owned())?;
    let channels = dec
        .get_output_colorspace()
        .map_or(3, |c| c.num_components());
    to_rgb(pixels, width, height, channels)
}

/// Walks the markers after start-of-image: each segment by its length,
/// each scan's entropy-coded data up to the next marker (0xFF followed by
/// neither a stuffed 0x00 nor a restart marker), until end-of-image.
fn reaches_end_marker(b: &[u8]) -> bool {
    let mut i = 2;
    loop {
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Some(len) = b.get(i..i + 2) else {
            return false;
        };
        i += u16::from_be_bytes([len[0], len[1]]) as usize;
        if marker == 0xDA {
            i = match entropy_end(b, i) {
                Some(at) => at,
                None => return false,
            };
        }
    }
}

/// Where the entropy-coded data starting at `i` ends: the 0xFF of the next
/// real marker.
fn entropy_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let next = *b.get(i + 1)?;
        if b[i] == 0xFF && next != 0x00 && next != 0xFF && !(0xD0..=0xD7).contains(&next) {
            return Some(i);
        }
        i += 1;
    }
}

/// The decoder's output as RGB: kept as it is, or grey repeated, or CMYK
/// (Adobe's inverted convention, as zune-jpeg returns it) multiplied out.
fn to_rgb(pixels: Vec<u8>, width: usize, height: usize, channels: usize) -> Result<Rgb, String> {
    let n = width * height;
    if pixels.len() != n * channels {
        return Err(format!(
            "decoded {} bytes for {width}x{height} pixels of {channels} channels",
            pixels.len()
        ));
    }
    let pixels = match channels {
        3 => pixels,
        1 => pixels.iter().flat_map(|&g| [g, g, g]).collect(),
        4 => pixels
            .chunks_exact(4)
            .flat_map(|p| {
                let k = p[3] as u32;
                [0, 1, 2].map(|i| ((p[i] as u32 * k + 127) / 255) as u8)
            })
            .collect(),
        c => return Err(format!("{c} colour channels (expected 1, 3 or 4)")),
    };
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}
