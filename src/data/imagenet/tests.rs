//! A small ImageNet-layout folder of real JPEGs, written by the tests from
//! the bundled digits (upscaled and coloured), checks the listing, the
//! decoding and the loader.

use std::path::Path;

use super::*;
use crate::data::{read, DatasetKind};

/// Writes `dir/<split>/<class>/<i>.JPEG`: `per_class` digits of class `c`
/// (as 40x30 RGB photographs of the 8x8 digit) for each named class.
pub(crate) fn write_folder(dir: &Path, split: &str, classes: &[&str], per_class: usize) {
    let digits = read(DatasetKind::Digits, None).unwrap();
    for (c, class) in classes.iter().enumerate() {
        let folder = dir.join(split).join(class);
        std::fs::create_dir_all(&folder).unwrap();
        let of_class = digits
            .train_labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| l as usize == c % 10)
            .map(|(i, _)| i);
        for (n, i) in of_class.take(per_class).enumerate() {
            let px = &digits.train_pixels[i * 64..(i + 1) * 64];
            write_jpeg(&folder.join(format!("{class}_{n}.JPEG")), px, c);
        }
    }
}

/// One 8x8 digit (0..=16) scaled to 40x30 and tinted by its class, saved as
/// a quality-90 JPEG.
fn write_jpeg(path: &Path, digit: &[u8], class: usize) {
    let (w, h) = (40usize, 30usize);
    let tint = [(class * 53 % 256) as u8, (class * 97 % 256) as u8, 200];
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let v = digit[(y * 8 / h) * 8 + x * 8 / w] as u32 * 15;
            rgb.extend(tint.map(|t| ((t as u32 + v) / 2).min(255) as u8));
        }
    }
    jpeg_encoder::Encoder::new_file(path, 90)
        .unwrap()
        .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .unwrap();
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn layout_error(dir: &Path) -> String {
    match Folder::open(dir) {
        Err(e @ DataError::Layout { .. }) => e.to_string(),
        other => panic!("expected a layout error, got {other:?}"),
    }
}

#[test]
fn lists_classes_sorted_and_both_splits() {
    let tmp = tempdir();
    let root = tmp.path().join(FOLDER);
    write_folder(&root, "train", &["n02", "n01", "n03"], 4);
    write_folder(&root, "val", &["n03", "n01", "n02"], 2);
    // Found through the data folder's `imagenet` folder and directly.
    for dir in [tmp.path(), root.as_path()] {
        let f = Folder::open(dir).unwrap();
        assert_eq!(f.root, root);
        assert_eq!(f.classes, ["n01", "n02", "n03"]);
        assert_eq!((f.train.len(), f.val.len()), (12, 6));
        assert_eq!(f.train.labels[..5], [0, 0, 0, 0, 1]);
        assert!(f.train.files[4].ends_with("n02/n02_0.JPEG"));
    }
    assert_eq!(find(tmp.path()).unwrap().folder, root);
}

#[test]
fn missing_folder_says_how_to_get_imagenet() {
    let tmp = tempdir();
    let e = Folder::open(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("ddsas data get imagenet") && e.contains("ILSVRC2012_img_train.tar"),
        "{e}"
    );
}

#[test]
fn train_and_val_classes_must_agree() {
    let tmp = tempdir();
    write_folder(tmp.path(), "train", &["n01", "n02", "n03"], 1);
    write_folder(tmp.path(), "val", &["n01", "n04"], 1);
    let e = layout_error(tmp.path());
    assert!(
        e.contains("only in train (2): n02, n03") && e.contains("only in val (1): n04"),
        "{e}"
    );
}

#[test]
fn a_flat_val_folder_says_how_to_sort_it() {
    let tmp = tempdir();
    write_folder(tmp.path(), "train", &["n01", "n02"], 1);
    write_folder(tmp.path(), "flat", &["n01"], 3);
    let val = tmp.path().join("val");
    std::fs::rename(tmp.path().join("flat/n01"), &val).unwrap();
    let e = layout_error(tmp.path());
    assert!(
        e.contains("is flat: 3 images") && e.contains("valprep.sh") && e.contains("ground truth"),
        "{e}"
    );
}

#[test]
fn an_empty_class_folder_is_named() {
    let tmp = tempdir();
    write_folder(tmp.path(), "train", &["n01", "n02"], 2);
    write_folder(tmp.path(), "val", &["n01"], 1);
    std::fs::create_dir_all(tmp.path().join("val/n02")).unwrap();
    let e = layout_error(tmp.path());
    assert!(
        e.contains(&format!("{}", tmp.path().join("val/n02").display()))
            && e.contains("empty class folder"),
        "{e}"
    );
}

#[cfg(feature = "engine")]
mod engine {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Tensor;

    /// 5 classes x 6 training images, 2 validation images each.
    fn folder(tmp: &Path) -> Folder {
        let classes = ["n01", "n02", "n03", "n04", "n05"];
        write_folder(tmp, "train", &classes, 6);
        write_folder(tmp, "val", &classes, 2);
        Folder::open(tmp).unwrap()
    }

    fn all(batches: impl Iterator<Item = (Tensor, Tensor)>) -> Vec<(Tensor, Tensor)> {
        batches.collect()
    }

    fn same(a: &[(Tensor, Tensor)], b: &[(Tensor, Tensor)]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.0.equal(&y.0) && x.1.equal(&y.1))
    }

    #[test]
    fn decodes_grey_and_cmyk_to_rgb() {
        let tmp = tempdir();
        let grey = tmp.path().join("g.jpg");
        jpeg_encoder::Encoder::new_file(&grey, 95)
            .unwrap()
            .encode(&[100u8; 16 * 8], 16, 8, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let img = decode_rgb(&std::fs::read(&grey).unwrap()).unwrap();
        assert_eq!(
            (img.width, img.height, img.pixels.len()),
            (16, 8, 16 * 8 * 3)
        );
        assert!(img.pixels.iter().all(|&v| v.abs_diff(100) <= 2));
        // Full cyan ink, no black: (0, 255, 255) on screen.
        let cmyk = tmp.path().join("c.jpg");
        let px: Vec<u8> = (0..16 * 8).flat_map(|_| [255u8, 0, 0, 0]).collect();
        jpeg_encoder::Encoder::new_file(&cmyk, 95)
            .unwrap()
            .encode(&px, 16, 8, jpeg_encoder::ColorType::Cmyk)
            .unwrap();
        let img = decode_rgb(&std::fs::read(&cmyk).unwrap()).unwrap();
        let p = &img.pixels[..3];
        assert!(
            p[0] < 30 && p[1] > 225 && p[2] > 225,
            "cyan came out as {p:?}"
        );
    }

    /// A smooth 256x192 photograph-like image (two gradients and a ripple)
    /// as quality-95 JPEG bytes.
    fn smooth_jpeg() -> Vec<u8> {
        smooth_jpeg_of(256, 192)
    }

    /// The same pattern at `w x h`.
    fn smooth_jpeg_of(w: usize, h: usize) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let ripple = 40.0 * ((x as f32 / 9.0).sin() * (y as f32 / 13.0).cos());
                rgb.extend(
                    [
                        x as f32 * 0.8 + 20.0,
                        y as f32 + 30.0 + ripple,
                        180.0 - ripple,
                    ]
                    .map(|v| v.clamp(0.0, 255.0) as u8),
                );
            }
        }
        let mut bytes = Vec::new();
        jpeg_encoder::Encoder::new(&mut bytes, 95)
            .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        bytes
    }

    #[test]
    fn a_reduced_decode_gives_the_whole_images_block_means() {
        let bytes = smooth_jpeg();
        let jpeg = Jpeg::open(&bytes).unwrap();
        assert_eq!((jpeg.width, jpeg.height), (256, 192));
        let whole = decode_rgb(&bytes).unwrap();
        let (small, k) = jpeg.decode(5).unwrap();
        assert_eq!(k, if cfg!(feature = "turbojpeg") { 4 } else { 1 });
        assert_eq!((small.width, small.height), (256 / k, 192 / k));
        let mut worst = 0f32;
        for (i, &v) in small.pixels.iter().enumerate() {
            let (c, x, y) = (i % 3, i / 3 % small.width, i / 3 / small.width);
            let block: f32 = (0..k * k)
                .map(|j| {
                    let (bx, by) = (x * k + j % k, y * k + j / k);
                    whole.pixels[(by * 256 + bx) * 3 + c] as f32
                })
                .sum();
            worst = worst.max((v as f32 - block / (k * k) as f32).abs());
        }
        assert!(
            worst <= 8.0,
            "a reduced pixel is {worst} levels off its block's mean"
        );
    }

    #[test]
    fn a_crop_from_the_reduced_decode_matches_the_whole_decodes() {
        let bytes = smooth_jpeg();
        let jpeg = Jpeg::open(&bytes).unwrap();
        let whole = decode_rgb(&bytes).unwrap();
        let t = Transforms::RECIPE;
        let (mut a, mut b) = (vec![0f32; 3 * 32 * 32], vec![0f32; 3 * 32 * 32]);
        eval_image(&jpeg, 32, &t, &mut a).unwrap();
        eval_image(&whole, 32, &t, &mut b).unwrap();
        let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        // Normalised units: 0.02 is about one grey level in 255.
        assert!(mean < 0.05, "mean difference {mean}");
        let rng = |s| {
            let mut r = ChaCha8Rng::seed_from_u64(s);
            r.set_stream(7);
            r
        };
        train_image(&jpeg, 32, &t, &mut rng(1), &mut a).unwrap();
        train_image(&whole, 32, &t, &mut rng(1), &mut b).unwrap();
        let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        assert!(mean < 0.05, "same draws, mean difference {mean}");
    }

    #[test]
    fn crops_of_an_imagenet_sized_photo_read_reduced_images_to_their_edges() {
        // 500x375 does not divide by 2 or 4: the reduced images are
        // 250x188 and 125x94, and crops that touch the right and bottom
        // edges (RandomResizedCrop at full scale does) stay inside them.
        let bytes = smooth_jpeg_of(500, 375);
        let jpeg = Jpeg::open(&bytes).unwrap();
        for (most, size) in [(2, (250, 188)), (4, (125, 94))] {
            let (img, k) = jpeg.decode(most).unwrap();
            let expect = if k == 1 { (500, 375) } else { size };
            assert_eq!((img.width, img.height), expect);
        }
        let whole = decode_rgb(&bytes).unwrap();
        let t = Transforms::RECIPE;
        let (mut a, mut b) = (vec![0f32; 3 * 24 * 24], vec![0f32; 3 * 24 * 24]);
        for seed in 0..64 {
            let rng = || {
                let mut r = ChaCha8Rng::seed_from_u64(seed);
                r.set_stream(3);
                r
            };
            train_image(&jpeg, 24, &t, &mut rng(), &mut a).unwrap();
            train_image(&whole, 24, &t, &mut rng(), &mut b).unwrap();
            let mean = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
            // Up to 0.07 over these seeds (about 4 grey levels): the two
            // paths low-pass the ripple with different filters.
            assert!(mean < 0.1, "seed {seed}: mean difference {mean}");
        }
    }

    #[test]
    fn frame_headers_that_disagree_are_an_error_not_a_crop_outside_the_image() {
        // A bogus 60000x60000 frame header before the real one: the size
        // that places the crop and the size that decodes must agree.
        let real = smooth_jpeg();
        let bogus = [
            0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03, 0x01, 0x11, 0x00, 0x02,
            0x11, 0x00, 0x03, 0x11, 0x00,
        ];
        let bytes = [&real[..2], &bogus[..], &real[2..]].concat();
        let jpeg = Jpeg::open(&bytes).unwrap();
        let mut out = vec![0f32; 3 * 32 * 32];
        let err = eval_image(&jpeg, 32, &Transforms::RECIPE, &mut out).unwrap_err();
        assert!(!err.is_empty());
        // Stray bytes between segments are not read as a marker (a bogus
        // size); whether the file is readable is the decoders' call
        // (zune-jpeg's strict mode refuses it, libjpeg-turbo warns).
        let stray = [&real[..2], &[0xC0, 0x00, 0x07, 0x08][..], &real[2..]].concat();
        let jpeg = Jpeg::open(&stray).unwrap();
        assert_eq!((jpeg.width, jpeg.height), (256, 192));
        if eval_image(&jpeg, 32, &Transforms::RECIPE, &mut out).is_ok() {
            assert!(out.iter().all(|v| v.is_finite()));
        }
    }

    #[cfg(feature = "turbojpeg")]
    #[test]
    fn libjpeg_turbo_and_zune_jpeg_decode_the_same_pixels() {
        let bytes = smooth_jpeg();
        let turbo = decode_rgb(&bytes).unwrap();
        let opts = zune_core::options::DecoderOptions::default()
            .jpeg_set_out_colorspace(zune_core::colorspace::ColorSpace::RGB);
        let zune = zune_jpeg::JpegDecoder::new_with_options(&bytes[..], opts)
            .decode()
            .unwrap();
        assert_eq!(turbo.pixels.len(), zune.len());
        let worst = turbo
            .pixels
            .iter()
            .zip(&zune)
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(worst <= Some(4), "pixels differ by up to {worst:?} levels");
    }

    #[test]
    fn batches_are_normalised_crops_with_labels() {
        let tmp = tempdir();
        let f = folder(tmp.path());
        let l = ImageNetLoader::new(f.train, 32, 8, 2);
        assert_eq!(l.batches_per_epoch(), 3);
        let batches = all(l.epoch(1));
        assert_eq!(batches.len(), 3);
        let (x, y) = &batches[0];
        assert_eq!(x.size(), [8, 3, 32, 32]);
        assert_eq!(y.kind(), tch::Kind::Int64);
        assert!(y.max().int64_value(&[]) < 5);
        let mean = x.mean(tch::Kind::Float).double_value(&[]);
        assert!(mean.abs() < 3.0 && x.isfinite().all().int64_value(&[]) == 1);
        let v = ImageNetLoader::new(f.val, 32, 4, 2);
        let sizes: Vec<i64> = v.ordered().map(|(x, _)| x.size()[0]).collect();
        assert_eq!(sizes, [4, 4, 2], "every validation image once");
    }

    #[test]
    fn same_seed_same_batches_with_one_and_three_threads() {
        let tmp = tempdir();
        let f = folder(tmp.path());
        let one = all(ImageNetLoader::new(f.train.clone(), 24, 4, 1).epoch(9));
        let three = all(ImageNetLoader::new(f.train.clone(), 24, 4, 3).epoch(9));
        let other = all(ImageNetLoader::new(f.train, 24, 4, 3).epoch(10));
        assert_eq!(one.len(), 7);
        assert!(same(&one, &three));
        assert!(!same(&one, &other));
    }

    #[test]
    fn resuming_at_step_k_gives_the_rest_of_the_epoch() {
        let tmp = tempdir();
        let f = folder(tmp.path());
        let l = ImageNetLoader::new(f.train, 24, 4, 2).with_prefetch(1);
        let whole = all(l.epoch(5));
        let rest = all(l.epoch_from(5, 4));
        assert!(same(&whole[4..], &rest));
        // A pass dropped part-way stops its workers cleanly.
        let mut partial = l.epoch(5);
        assert!(partial.next().is_some());
        drop(partial);
    }

    #[test]
    fn a_truncated_jpeg_is_skipped_and_counted() {
        let tmp = tempdir();
        let f = folder(tmp.path());
        let victim: std::path::PathBuf = f.val.files[3].clone();
        let bytes = std::fs::read(&victim).unwrap();
        std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
        let garbage = f.val.files[6].clone();
        std::fs::write(&garbage, b"not a jpeg at all").unwrap();
        let l = ImageNetLoader::new(f.val.clone(), 32, 4, 2);
        let sizes: Vec<i64> = l.ordered().map(|(x, _)| x.size()[0]).collect();
        assert_eq!(sizes, [3, 3, 2]);
        assert_eq!(l.skipped(), 2);
        // Two batches of five cover all ten images whatever the shuffle.
        let l = ImageNetLoader::new(f.val.clone(), 32, 5, 2);
        let mut epoch = l.epoch(0);
        let images: i64 = epoch.by_ref().map(|(x, _)| x.size()[0]).sum();
        assert_eq!((images, epoch.skipped()), (8, 2));
        // Counted as batches are handed out, not as workers decode ahead:
        // the batches taken before a stop and those of the pass resumed
        // there count each unreadable image once, wherever the stop.
        let l = ImageNetLoader::new(f.val, 32, 2, 2);
        for k in 0..=5 {
            let mut before = l.epoch(7);
            before.by_ref().take(k).for_each(drop);
            std::thread::sleep(std::time::Duration::from_millis(20));
            let counted = before.skipped();
            drop(before);
            let mut after = l.epoch_from(7, k);
            after.by_ref().for_each(drop);
            assert_eq!(counted + after.skipped(), 2, "stopped before batch {k}");
        }
    }

    /// A config's transforms reach the batches: mean 0 and deviation 1
    /// leave pixels on [0, 1], in training and evaluation alike.
    #[test]
    fn the_loaders_transforms_are_the_configs() {
        let tmp = tempdir();
        let f = folder(tmp.path());
        let plain = Transforms {
            jitter: None,
            flip: false,
            mean: [0.0; 3],
            std: [1.0; 3],
            eval_resize: Some(40),
        };
        let l = ImageNetLoader::new(f.train, 32, 8, 2).with_transforms(plain);
        for (x, _) in all(l.epoch(1)).iter().chain(&all(l.ordered())) {
            let (lo, hi) = (x.min().double_value(&[]), x.max().double_value(&[]));
            assert!(
                (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
                "{lo}..{hi}"
            );
        }
        let recipe = ImageNetLoader::new(folder(tmp.path()).train, 32, 8, 2);
        let below = all(recipe.ordered())[0].0.min().double_value(&[]);
        assert!(
            below < 0.0,
            "the recipe's normalisation centres pixels: {below}"
        );
    }
}
