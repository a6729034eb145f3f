//! The recipe's image transforms, on one decoded image, torchvision's
//! semantics in plain Rust:
//!
//! - training: `RandomResizedCrop(crop)` (scale 0.08-1, ratio 3/4-4/3, ten
//!   attempts then the centre fallback), `RandomHorizontalFlip()`,
//!   `ColorJitter(0.4, 0.4, 0.4, 0.2)` (the four adjustments in a random
//!   order, on floats in [0, 1], clamped after each, as on tensors);
//! - evaluation: `Resize(crop * 256 / 224)` (shorter side) then
//!   `CenterCrop(crop)`;
//! - both: `ToTensor()` and `Normalize(MEAN, STD)`, written channel-major
//!   straight into the batch.
//!
//! The crop rectangle is placed from the image's size alone (a [`Source`]:
//! a JPEG's frame header), then the pixels are asked for at the largest
//! reduction (1/2, 1/4, 1/8) that leaves the rectangle at least the
//! output's size on both sides, which libjpeg-turbo decodes directly
//! ([`super::Jpeg`]). Resampling is bilinear from the rectangle to the
//! output, so the resized image is never built whole. Where the rectangle
//! is still at least twice the output in both directions (a build without
//! libjpeg-turbo, a file it leaves to zune-jpeg, or a reduction beyond
//! 1/8), it is first shrunk by whole-pixel box averaging (what a
//! DCT-scaled decode gives, and the antialiasing torchvision's PIL resize
//! does), which keeps large crops cheap and free of aliasing. Either way
//! bilinear resampling is left less than 2x to shrink (e.g. 1.75x after a
//! 1/2 decode of a crop 3.5x the output, 1.17x after a box of 3 without
//! it), so the two builds' pixels differ slightly (BENCHMARKS.md). Reduced
//! or not, the random draws are the same, in the same order.

use std::borrow::Cow;

use rand::seq::SliceRandom;
use rand::Rng;

use super::Rgb;

/// An image the transforms read: its size first, to place the crop, then
/// its pixels at the largest reduction the crop allows, so that a JPEG
/// need not be decoded whole for a small crop ([`super::Jpeg`]).
pub trait Source {
    /// Width and height in pixels.
    fn dimensions(&self) -> (usize, usize);

    /// The pixels reduced by some `k` of 1, 2, 4 or 8 at most `most`
    /// (pixel `(x, y)` standing for the whole image's `k x k` block at
    /// `(k x, k y)`), and that `k`; the error says why there are none.
    fn reduced(&self, most: usize) -> Result<(Cow<'_, Rgb>, usize), String>;
}

/// A decoded image is its own source, at full size.
impl Source for Rgb {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn reduced(&self, _most: usize) -> Result<(Cow<'_, Rgb>, usize), String> {
        Ok((Cow::Borrowed(self), 1))
    }
}

/// ImageNet's per-channel mean (RGB, on [0, 1]), as torchvision's recipe.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB, on [0, 1]).
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Colour jitter strengths, torchvision's `ColorJitter` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorJitter {
    /// Brightness factor drawn from [max(0, 1 - b), 1 + b].
    pub brightness: f32,
    /// Contrast factor drawn likewise.
    pub contrast: f32,
    /// Saturation factor drawn likewise.
    pub saturation: f32,
    /// Hue shift drawn from [-h, h] (turns of the colour wheel, h <= 0.5).
    pub hue: f32,
}

impl ColorJitter {
    /// The recipe's jitter (DARTS-family ImageNet training).
    pub const RECIPE: ColorJitter = ColorJitter {
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
        hue: 0.2,
    };
}

/// The recipe's transforms that a config may change besides the crop's
/// size: the jitter, the flip, the normalisation and the evaluation
/// resize. [`Transforms::RECIPE`] is torchvision's ImageNet recipe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transforms {
    /// Colour jitter of training images (`None`: none).
    pub jitter: Option<ColorJitter>,
    /// Whether training images are mirrored with probability 1/2.
    pub flip: bool,
    /// Per-channel (RGB) mean subtracted from pixels on [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation they are divided by.
    pub std: [f32; 3],
    /// Shorter side of the evaluation resize before the centre crop;
    /// `None`: `crop * 256 / 224` (256 at 224, as the recipe).
    pub eval_resize: Option<usize>,
}

impl Transforms {
    /// The recipe: jitter (0.4, 0.4, 0.4, 0.2), flips, ImageNet's mean
    /// and standard deviation, resize 256 for a 224 crop.
    pub const RECIPE: Transforms = Transforms {
        jitter: Some(ColorJitter::RECIPE),
        flip: true,
        mean: MEAN,
        std: STD,
        eval_resize: None,
    };

    /// The evaluation resize's shorter side for a crop of `crop`.
    fn resize_for(&self, crop: usize) -> usize {
        self.eval_resize.unwrap_or(super::eval_resize_for(crop))
    }
}

/// A rectangle of the source image, in pixels (fractional for the
/// evaluation resize).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Writes one training image: random resized crop, flip (if `t` flips)
/// and jitter drawn from `rng` in that order, normalised, `[3, crop,
/// crop]` into `out`; the error is the source's (an unreadable image).
pub fn train_image(
    src: &impl Source,
    crop: usize,
    t: &Transforms,
    rng: &mut impl Rng,
    out: &mut [f32],
) -> Result<(), String> {
    let (width, height) = src.dimensions();
    let rect = random_resized_crop(width, height, rng);
    let flip = t.flip && rng.gen_bool(0.5);
    let (img, rect) = pixels_for(src, rect, crop)?;
    with_scratch(|hwc| {
        resample_into(&img, rect, crop, flip, hwc);
        if let Some(j) = t.jitter {
            color_jitter(hwc, j, rng);
        }
        normalise(hwc, t, out);
    });
    Ok(())
}

/// Writes one evaluation image: shorter side resized to `t`'s evaluation
/// resize (256 at a 224 crop), centre crop, normalised, `[3, crop, crop]`
/// into `out`; the error is the source's.
pub fn eval_image(
    src: &impl Source,
    crop: usize,
    t: &Transforms,
    out: &mut [f32],
) -> Result<(), String> {
    let (width, height) = src.dimensions();
    let rect = centre_crop(width, height, crop, t.resize_for(crop));
    let (img, rect) = pixels_for(src, rect, crop)?;
    with_scratch(|hwc| {
        resample_into(&img, rect, crop, false, hwc);
        normalise(hwc, t, out);
    });
    Ok(())
}

/// The source's pixels at the largest reduction that still leaves `r` at
/// least `size` pixels on both sides, and `r` in their coordinates.
fn pixels_for<S: Source>(src: &S, r: Rect, size: usize) -> Result<(Cow<'_, Rgb>, Rect), String> {
    let (img, k) = src.reduced(shrink_factor(r, size))?;
    let k = k as f64;
    let r = Rect {
        x: r.x / k,
        y: r.y / k,
        w: r.w / k,
        h: r.h / k,
    };
    Ok((img, r))
}

/// How many times `r` can be shrunk whole and still cover `size x size`.
fn shrink_factor(r: Rect, size: usize) -> usize {
    (r.w / size as f64).min(r.h / size as f64).floor() as usize
}

thread_local! {
    /// Each worker's buffer for the image between resampling and
    /// normalisation: reused, because a fresh 600 kB buffer per image cost
    /// the loader a page fault per 4 kB.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_scratch(f: impl FnOnce(&mut Vec<f32>)) {
    SCRATCH.with(|s| f(&mut s.borrow_mut()));
}

/// torchvision's `RandomResizedCrop.get_params`: up to ten tries of an
/// area fraction in [0.08, 1] and a log-uniform aspect ratio in
/// [3/4, 4/3]; failing those, the largest centred crop within the ratios.
fn random_resized_crop(width: usize, height: usize, rng: &mut impl Rng) -> Rect {
    let (wf, hf) = (width as f64, height as f64);
    let area = wf * hf;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.gen_range(0.08..=1.0);
        let ratio = rng.gen_range(lo..=hi).exp();
        let w = (target * ratio).sqrt().round() as usize;
        let h = (target / ratio).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let y = rng.gen_range(0..=height - h);
            let x = rng.gen_range(0..=width - w);
            return rect(x, y, w, h);
        }
    }
    let in_ratio = wf / hf;
    let (w, h) = if in_ratio < 3.0 / 4.0 {
        (width, ((wf / (3.0 / 4.0)).round() as usize).min(height))
    } else if in_ratio > 4.0 / 3.0 {
        (((hf * (4.0 / 3.0)).round() as usize).min(width), height)
    } else {
        (width, height)
    };
    rect((width - w) / 2, (height - h) / 2, w, h)
}

fn rect(x: usize, y: usize, w: usize, h: usize) -> Rect {
    Rect {
        x: x as f64,
        y: y as f64,
        w: w as f64,
        h: h as f64,
    }
}

/// The source rectangle of torchvision's `Resize(s)` + `CenterCrop(crop)`
/// (`s` at least `crop`): the shorter side becomes `s`, the longer
/// `int(s * long / short)`, the crop's corner is rounded half to even
/// (Python's `round`).
fn centre_crop(width: usize, height: usize, crop: usize, s: usize) -> Rect {
    let (w, h) = if width <= height {
        (s, s * height / width)
    } else {
        (s * width / height, s)
    };
    let (sx, sy) = (width as f64 / w as f64, height as f64 / h as f64);
    let top = ((h as f64 - crop as f64) / 2.0).round_ties_even();
    let left = ((w as f64 - crop as f64) / 2.0).round_ties_even();
    Rect {
        x: left * sx,
        y: top * sy,
        w: crop as f64 * sx,
        h: crop as f64 * sy,
    }
}

/// A source of RGB pixels for bilinear sampling, `u8` (the decoded image)
/// or `f32` (its box-shrunk crop).
struct View<'a, T: Clone> {
    width: usize,
    height: usize,
    pixels: std::borrow::Cow<'a, [T]>,
    /// Value that maps a pixel to [0, 1].
    scale: f32,
}

/// The rectangle `r` of `img` resampled to `size x size`, RGB interleaved
/// on [0, 1], mirrored when `flip`, into `out`.
fn resample_into(img: &Rgb, r: Rect, size: usize, flip: bool, out: &mut Vec<f32>) {
    out.resize(size * size * 3, 0.0);
    let k = shrink_factor(r, size);
    if k >= 2 {
        let (shrunk, r) = box_shrink(img, r, k);
        return bilinear(&shrunk, r, size, flip, out);
    }
    let view = View {
        width: img.width,
        height: img.height,
        pixels: std::borrow::Cow::Borrowed(&img.pixels[..]),
        scale: 1.0 / 255.0,
    };
    bilinear(&view, r, size, flip, out)
}

/// The whole-pixel cover of `r` shrunk `k` times by box averaging (still
/// on 0-255), and `r` in the shrunk image's coordinates.
fn box_shrink(img: &Rgb, r: Rect, k: usize) -> (View<'static, f32>, Rect) {
    let (x0, y0) = (r.x.floor() as usize, r.y.floor() as usize);
    let x1 = ((r.x + r.w).ceil() as usize).min(img.width);
    let y1 = ((r.y + r.h).ceil() as usize).min(img.height);
    let (w, h) = ((x1 - x0) / k, (y1 - y0) / k);
    let mut out = vec![0f32; w * h * 3];
    let norm = 1.0 / (k * k) as f32;
    for (oy, orow) in out.chunks_exact_mut(w * 3).enumerate() {
        for dy in 0..k {
            let start = ((y0 + oy * k + dy) * img.width + x0) * 3;
            let row = &img.pixels[start..start + w * k * 3];
            for (o, block) in orow.chunks_exact_mut(3).zip(row.chunks_exact(3 * k)) {
                for px in block.chunks_exact(3) {
                    o[0] += px[0] as f32;
                    o[1] += px[1] as f32;
                    o[2] += px[2] as f32;
                }
            }
        }
        orow.iter_mut().for_each(|v| *v *= norm);
    }
    let kf = k as f64;
    let shrunk = Rect {
        x: (r.x - x0 as f64) / kf,
        y: (r.y - y0 as f64) / kf,
        w: r.w / kf,
        h: r.h / kf,
    };
    let view = View {
        width: w,
        height: h,
        pixels: std::borrow::Cow::Owned(out),
        scale: 1.0 / 255.0,
    };
    (view, shrunk)
}

/// Per output coordinate: the two source indices and the second's weight
/// (pixel centres aligned, as `align_corners=False`), clamped to the image.
fn taps(start: f64, len: f64, size: usize, limit: usize) -> Vec<(usize, usize, f32)> {
    let step = len / size as f64;
    (0..size)
        .map(|o| {
            let s = (start + (o as f64 + 0.5) * step - 0.5).clamp(0.0, (limit - 1) as f64);
            let lo = s.floor() as usize;
            let hi = (lo + 1).min(limit - 1);
            (lo, hi, (s - lo as f64) as f32)
        })
        .collect()
}

fn bilinear<T: Copy + Into<f32>>(
    v: &View<'_, T>,
    r: Rect,
    size: usize,
    flip: bool,
    out: &mut [f32],
) {
    let cols = taps(r.x, r.w, size, v.width);
    let rows = taps(r.y, r.h, size, v.height);
    let at = |y: usize, x: usize, c: usize| -> f32 { v.pixels[(y * v.width + x) * 3 + c].into() };
    for (orow, &(y0, y1, fy)) in out.chunks_exact_mut(size * 3).zip(&rows) {
        for (ox, o) in orow.chunks_exact_mut(3).enumerate() {
            let (x0, x1, fx) = cols[if flip { size - 1 - ox } else { ox }];
            for (c, o) in o.iter_mut().enumerate() {
                let top = at(y0, x0, c) * (1.0 - fx) + at(y0, x1, c) * fx;
                let bottom = at(y1, x0, c) * (1.0 - fx) + at(y1, x1, c) * fx;
                *o = (top * (1.0 - fy) + bottom * fy) * v.scale;
            }
        }
    }
}

/// torchvision's `ColorJitter.get_params` and `forward`: the order of the
/// four adjustments is a random permutation, then the four factors are
/// drawn (brightness, contrast, saturation, hue), then applied in order.
fn color_jitter(hwc: &mut [f32], j: ColorJitter, rng: &mut impl Rng) {
    let mut order = [0usize, 1, 2, 3];
    order.shuffle(rng);
    let b = factor(j.brightness, rng);
    let c = factor(j.contrast, rng);
    let s = factor(j.saturation, rng);
    let h = rng.gen_range(-j.hue..=j.hue);
    for step in order {
        match step {
            0 => hwc.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 1.0)),
            1 => adjust_contrast(hwc, c),
            2 => adjust_saturation(hwc, s),
            _ => adjust_hue(hwc, h),
        }
    }
}

/// A factor drawn from [max(0, 1 - s), 1 + s].
fn factor(s: f32, rng: &mut impl Rng) -> f32 {
    rng.gen_range((1.0 - s).max(0.0)..=1.0 + s)
}

/// ITU-R 601 luma, as torchvision's `rgb_to_grayscale`.
fn grey(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// Blend with the image's mean grey (torchvision's `adjust_contrast`).
fn adjust_contrast(hwc: &mut [f32], f: f32) {
    let mean = hwc.chunks_exact(3).map(grey).sum::<f32>() / (hwc.len() / 3).max(1) as f32;
    let base = (1.0 - f) * mean;
    hwc.iter_mut()
        .for_each(|v| *v = (f * *v + base).clamp(0.0, 1.0));
}

/// Blend with each pixel's grey (torchvision's `adjust_saturation`).
fn adjust_saturation(hwc: &mut [f32], f: f32) {
    for p in hwc.chunks_exact_mut(3) {
        let g = (1.0 - f) * grey(p);
        p.iter_mut().for_each(|v| *v = (f * *v + g).clamp(0.0, 1.0));
    }
}

/// Rotate the hue by `shift` turns in HSV (torchvision's `adjust_hue`).
fn adjust_hue(hwc: &mut [f32], shift: f32) {
    if shift == 0.0 {
        return;
    }
    for p in hwc.chunks_exact_mut(3) {
        let (h, s, v) = rgb_to_hsv(p[0], p[1], p[2]);
        let rgb = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
        p.copy_from_slice(&rgb);
    }
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let s = if max > 0.0 { d / max } else { 0.0 };
    let h = if d == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / d).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / d + 2.0) / 6.0
    } else {
        ((r - g) / d + 4.0) / 6.0
    };
    (h, s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 % 6 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// HWC on [0, 1] to CHW normalised by `t`'s mean and deviation.
fn normalise(hwc: &[f32], t: &Transforms, out: &mut [f32]) {
    let plane = hwc.len() / 3;
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let (mean, inv) = (t.mean, t.std.map(|s| 1.0 / s));
    for (i, p) in hwc.chunks_exact(3).enumerate() {
        r[i] = (p[0] - mean[0]) * inv[0];
        g[i] = (p[1] - mean[1]) * inv[1];
        b[i] = (p[2] - mean[2]) * inv[2];
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn random_resized_crop_stays_inside_and_within_the_ratios() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (w, h) in [(500, 375), (375, 500), (40, 30), (1000, 100), (7, 7)] {
            for _ in 0..200 {
                let r = random_resized_crop(w, h, &mut rng);
                assert!(r.x >= 0.0 && r.y >= 0.0 && r.w >= 1.0 && r.h >= 1.0);
                assert!(
                    r.x + r.w <= w as f64 && r.y + r.h <= h as f64,
                    "{r:?} in {w}x{h}"
                );
            }
        }
        // A very wide image falls back to the widest 4:3 centre crop.
        let mut never = ChaCha8Rng::seed_from_u64(0);
        let r = random_resized_crop(10_000, 10, &mut never);
        assert!(r.w <= 14.0 && r.h == 10.0, "{r:?}");
    }

    #[test]
    fn evaluation_crops_the_centre_of_the_256_resize() {
        // 500x375 -> 341x256, centre 224: left 58.5 rounded to 58 (even).
        let r = centre_crop(500, 375, 224, Transforms::RECIPE.resize_for(224));
        let s = 375.0 / 256.0;
        assert!((r.y - 16.0 * s).abs() < 1e-9 && (r.h - 224.0 * s).abs() < 1e-9);
        assert!((r.x - 58.0 * 500.0 / 341.0).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn a_flat_grey_image_stays_flat_through_every_transform() {
        let img = Rgb {
            width: 300,
            height: 200,
            pixels: vec![128; 300 * 200 * 3],
        };
        let mut out = vec![0f32; 3 * 32 * 32];
        eval_image(&img, 32, &Transforms::RECIPE, &mut out).unwrap();
        let expect = |c: usize| (128.0 / 255.0 - MEAN[c]) / STD[c];
        for c in 0..3 {
            assert!(out[c * 1024..(c + 1) * 1024]
                .iter()
                .all(|v| (v - expect(c)).abs() < 1e-4));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let hue_only = ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.5,
        };
        let t = Transforms {
            jitter: Some(hue_only),
            ..Transforms::RECIPE
        };
        train_image(&img, 32, &t, &mut rng, &mut out).unwrap();
        assert!((out[0] - expect(0)).abs() < 1e-4, "grey has no hue to turn");
    }

    #[test]
    fn hue_round_trips_and_turns_red_to_green_at_a_third() {
        for rgb in [[0.9, 0.2, 0.1], [0.1, 0.5, 0.7], [0.3, 0.3, 0.3]] {
            let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            let back = hsv_to_rgb(h, s, v);
            assert!(back.iter().zip(rgb).all(|(a, b)| (a - b).abs() < 1e-5));
        }
        let mut px = [1.0, 0.0, 0.0];
        adjust_hue(&mut px, 1.0 / 3.0);
        assert!((px[1] - 1.0).abs() < 1e-5 && px[0].abs() < 1e-5);
    }

    #[test]
    fn a_flipped_crop_is_the_mirror_of_the_unflipped_one() {
        let pixels = (0..64 * 48 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let img = Rgb {
            width: 64,
            height: 48,
            pixels,
        };
        let r = rect(3, 5, 40, 30);
        let resample = |r, size, flip| {
            let mut out = Vec::new();
            resample_into(&img, r, size, flip, &mut out);
            out
        };
        let (a, b) = (resample(r, 16, false), resample(r, 16, true));
        for y in 0..16 {
            for x in 0..16 {
                let (i, j) = ((y * 16 + x) * 3, (y * 16 + 15 - x) * 3);
                assert_eq!(a[i..i + 3], b[j..j + 3]);
            }
        }
        // A crop four times the output goes through the box shrink.
        let big = resample(rect(0, 0, 64, 48), 8, false);
        assert_eq!(big.len(), 8 * 8 * 3);
        assert!(big.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
