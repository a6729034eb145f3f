//! JPEG decoding to 8-bit RGB with zune-jpeg.
//!
//! Why zune-jpeg: measured on the benchmark folder of 500x375 photographs
//! at quality 90 (BENCHMARKS.md, one thread, CPU time), a full-size decode
//! took 0.72 ms with zune-jpeg 0.4, 0.76 ms with jpeg-decoder (the `image`
//! crate's old backend; its rayon threads uncounted, see below), 0.80 ms
//! with `image` 0.25 and 0.64 ms with the system's libjpeg-turbo 2.1.5
//! through the `turbojpeg` crate (0.49 ms at 1/2 scale). libjpeg-turbo
//! is about 12 % faster, but it is a C library
//! that every engine build would have to find (the maintained `turbojpeg`
//! 1.x needs libjpeg-turbo 3, which Debian 12 does not ship, or cmake and
//! nasm to build it), and decoding is about a quarter of the pipeline's
//! cost per image, so it would buy about 3 %.
//!
//! Decoding at a reduced scale (the IDCT at 1/2, 1/4 or 1/8) was built
//! with jpeg-decoder, the one pure-Rust crate that can, and measured
//! (session 16, BENCHMARKS.md): on one thread without its rayon pool
//! (which the earlier figure above had counted only in part), it takes
//! 1.35 ms at full size, 1.14 ms at 1/2 and 0.73 ms at 1/4, against
//! zune-jpeg's 0.80 ms at full size (its entropy decoding, the same work
//! at any scale, is the slower part), and the whole pipeline at crop 64,
//! where the crop allows 1/4, ran 4-15 % slower with it. So
//! every image is decoded whole by zune-jpeg and large crops are shrunk
//! cheaply by box averaging before resampling ([`super::transform`]),
//! which is what a DCT-scaled decode would give. Only libjpeg-turbo's
//! scaled decode is faster (0.36-0.49 ms), with the C library above.
//! At the recipe's 224 px a reduced scale rarely applies anyway: a
//! RandomResizedCrop of an ImageNet-sized photograph must be at least 448
//! px on both sides for 1/2, and the 256 px evaluation resize of a
//! 500x375 image never can. Swapping the decoder is this one function.
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
