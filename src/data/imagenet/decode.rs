//! JPEG decoding to 8-bit RGB: the system's libjpeg-turbo where the build
//! has the `turbojpeg` feature, zune-jpeg otherwise.
//!
//! Measured on the benchmark folder of 500x375 photographs at quality 90
//! (BENCHMARKS.md "Decoders again", one thread, CPU time): a whole decode
//! takes 0.71 ms with libjpeg-turbo 2.1.5 (the `turbojpeg` crate), 0.80 ms
//! with zune-jpeg 0.4, 0.90 ms with zune-jpeg 0.5 and 1.35 ms with
//! jpeg-decoder (the `image` crate's old backend). Only libjpeg-turbo and
//! jpeg-decoder can decode at a reduced scale (the IDCT at 1/2, 1/4 or
//! 1/8); libjpeg-turbo then takes 0.56 / 0.50 / 0.43 ms, while
//! jpeg-decoder at 1/4 (0.73 ms) is barely faster than zune-jpeg whole,
//! its entropy decoding (the same work at any scale) being the slow part,
//! and made the whole pipeline slower (session 16). So libjpeg-turbo is
//! the decoder, and the scale is chosen per image once the crop is known
//! ([`Jpeg::decode`]). It is a C library (Debian's libturbojpeg0-dev),
//! which not every machine has, so it is a cargo feature that the
//! README's set-up turns on where it can install it; without it zune-jpeg
//! decodes every image whole and large crops are shrunk by box averaging
//! ([`super::transform`]), nearly the same pixels more slowly.
//!
//! At the recipe's 224 px a reduced scale rarely applies: a
//! RandomResizedCrop of an ImageNet-sized photograph must be at least 448
//! px on both sides for 1/2, and the 256 px evaluation resize of a
//! 500x375 image never can. Small crops (`crop_size` 64 to 128, the sizes
//! of quick experiments) decode at 1/2 to 1/4 most of the time.
//!
//! Greyscale and CMYK (a few hundred ImageNet files) come out as RGB too
//! (libjpeg-turbo cannot convert CMYK, so zune-jpeg decodes those, and any
//! file libjpeg-turbo rejects or warns about). A truncated file is an
//! error, although both decoders would fill the missing rows with grey:
//! walking the file's markers must reach the end-of-image marker (bytes
//! after it, which some encoders add, are ignored).

use std::borrow::Cow;

use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::transform::Source;

/// The decoder this build uses, for what benchmarks print.
pub const DECODER: &str = if cfg!(feature = "turbojpeg") {
    "libjpeg-turbo"
} else {
    "zune-jpeg"
};

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

/// A JPEG file that is complete and whose size is known, not yet decoded:
/// the transforms choose the crop from the size first, then ask for the
/// pixels at the scale the crop allows.
#[derive(Debug, Clone, Copy)]
pub struct Jpeg<'a> {
    bytes: &'a [u8],
    /// Width in pixels (of the frame header).
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl<'a> Jpeg<'a> {
    /// Checks that `bytes` are a whole JPEG file and reads its size; the
    /// error says why they are not.
    pub fn open(bytes: &'a [u8]) -> Result<Jpeg<'a>, String> {
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            return Err("not a JPEG file (no start-of-image marker)".into());
        }
        let (width, height) = walk_markers(bytes)?;
        Ok(Jpeg {
            bytes,
            width,
            height,
        })
    }

    /// The image shrunk by `k`, the largest of 1, 2, 4 and 8 that is at
    /// most `most` and that this build's decoder can produce (1 without
    /// libjpeg-turbo), and that `k`. At 1/k the image is `ceil(width / k)
    /// x ceil(height / k)`, its pixel `(x, y)` covering the whole image's
    /// pixels `(k x .. k x + k, k y .. k y + k)`.
    ///
    /// The size is checked against the frame header's, which placed the
    /// crop: a file whose decoder finds another frame is an error.
    pub fn decode(&self, most: usize) -> Result<(Rgb, usize), String> {
        let (rgb, k) = match turbo::decode(self, most) {
            Some(done) => done,
            None => (decode_whole(self.bytes)?, 1),
        };
        let expected = (self.width.div_ceil(k), self.height.div_ceil(k));
        if (rgb.width, rgb.height) != expected {
            return Err(format!(
                "its frame header says {}x{} but it decodes to {}x{} at 1/{k}",
                self.width, self.height, rgb.width, rgb.height
            ));
        }
        Ok((rgb, k))
    }
}

impl Source for Jpeg<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn reduced(&self, most: usize) -> Result<(Cow<'_, Rgb>, usize), String> {
        self.decode(most).map(|(rgb, k)| (Cow::Owned(rgb), k))
    }
}

/// Decodes a JPEG file's bytes whole to RGB; the error says why it could
/// not.
pub fn decode_rgb(bytes: &[u8]) -> Result<Rgb, String> {
    Jpeg::open(bytes)?.decode(1).map(|(rgb, _)| rgb)
}

/// zune-jpeg's whole decode, of a file [`Jpeg::open`] accepted.
fn decode_whole(bytes: &[u8]) -> Result<Rgb, String> {
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

/// libjpeg-turbo's decode, one decompressor per loader thread.
#[cfg(feature = "turbojpeg")]
mod turbo {
    use std::cell::RefCell;

    use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

    use super::{Jpeg, Rgb};

    thread_local! {
        static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    }

    /// The image at 1/k, `k` the largest of 1, 2, 4 and 8 that is at most
    /// `most`, and `k`; `None` where libjpeg-turbo cannot decode it cleanly
    /// (CMYK, which it cannot convert to RGB; a warning about corrupt data,
    /// which zune-jpeg may read or explain), so that zune-jpeg decodes it
    /// whole instead.
    pub(super) fn decode(jpeg: &Jpeg<'_>, most: usize) -> Option<(Rgb, usize)> {
        let k = [8, 4, 2].into_iter().find(|&k| k <= most).unwrap_or(1);
        DECOMPRESSOR.with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_none() {
                *slot = Some(Decompressor::new().ok()?);
            }
            let dec = slot.as_mut()?;
            let header = dec.read_header(jpeg.bytes).ok()?;
            if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK)
                || (header.width, header.height) != (jpeg.width, jpeg.height)
            {
                return None;
            }
            let (width, height) = (jpeg.width.div_ceil(k), jpeg.height.div_ceil(k));
            let mut pixels = vec![0u8; width * height * 3];
            let out = Image {
                pixels: &mut pixels[..],
                width,
                pitch: width * 3,
                height,
                format: PixelFormat::RGB,
            };
            dec.decompress(jpeg.bytes, out).ok()?;
            Some((
                Rgb {
                    width,
                    height,
                    pixels,
                },
                k,
            ))
        })
    }
}

/// Without libjpeg-turbo every image is zune-jpeg's to decode whole.
#[cfg(not(feature = "turbojpeg"))]
mod turbo {
    use super::{Jpeg, Rgb};

    pub(super) fn decode(_: &Jpeg<'_>, _most: usize) -> Option<(Rgb, usize)> {
        None
    }
}

/// Walks the markers after start-of-image: each segment by its length,
/// each scan's entropy-coded data up to the next marker (0xFF followed by
/// neither a stuffed 0x00 nor a restart marker), until end-of-image. Stray
/// bytes between segments are skipped up to the next 0xFF, as both
/// decoders skip them. The first frame header's width and height; the
/// error says why there are none (the bytes end first, or no frame
/// header gives a size).
fn walk_markers(b: &[u8]) -> Result<(usize, usize), String> {
    let truncated = || {
        format!(
            "truncated: its {} bytes end before the JPEG end-of-image marker",
            b.len()
        )
    };
    let mut size = None;
    let mut i = 2;
    loop {
        while b.get(i).is_some_and(|&x| x != 0xFF) {
            i += 1;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *b.get(i).ok_or_else(truncated)?;
        i += 1;
        match marker {
            0xD9 => return size.ok_or_else(|| "no frame header with a width and height".into()),
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = b.get(i..i + 2).ok_or_else(truncated)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        if is_frame_header(marker) && size.is_none() && len >= 8 {
            size = frame_size(b.get(i + 2..i + 7).ok_or_else(truncated)?);
        }
        i += len;
        if marker == 0xDA {
            i = entropy_end(b, i).ok_or_else(truncated)?;
        }
    }
}

/// Start-of-frame markers (every coding process): 0xC0-0xCF but DHT
/// (0xC4), JPG (0xC8) and DAC (0xCC).
fn is_frame_header(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Width and height from a frame header's precision, height and width
/// bytes; `None` if either is 0 (a height defined later by a DNL marker,
/// which no photograph collection uses).
fn frame_size(f: &[u8]) -> Option<(usize, usize)> {
    let height = u16::from_be_bytes([f[1], f[2]]) as usize;
    let width = u16::from_be_bytes([f[3], f[4]]) as usize;
    (width > 0 && height > 0).then_some((width, height))
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
