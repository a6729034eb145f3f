//! The bundled UCI handwritten digits (1797 images, 8x8, values 0..16).
//!
//! The CSV is compiled into the binary so the demo and the tests need no
//! data directory. There is no official train/test split of this copy, so
//! one is made here, deterministically: a stratified 80/20 split (each class
//! shuffled with a fixed ChaCha seed, 80% of it to train), then both splits
//! shuffled with the same generator so that any prefix of the train set
//! (the search halves) mixes the classes.

use std::io::Read;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{DataError, RawSplits};

/// Where the embedded file lives in the repository, for messages.
const PATH: &str = "data/digits.csv.gz";
/// The gzip-compressed CSV: 64 pixel values then the label, per line.
const GZ: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"));
/// Pixels per image.
const PIXELS: usize = 64;
/// Share of each class that goes to the train split.
const TRAIN_SHARE: f64 = 0.8;
/// Seed of the split; changing it changes every digits result, so don't.
const SPLIT_SEED: u64 = 0;

pub(super) fn load() -> Result<RawSplits, DataError> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(GZ)
        .read_to_string(&mut text)
        .map_err(|e| DataError::Digits {
            path: PATH,
            line: 0,
            offset: 0,
            detail: format!("cannot decompress it: {e}"),
        })?;
    let (pixels, labels) = parse(&text)?;
    Ok(split(&pixels, &labels))
}

fn bad(line: usize, offset: usize, detail: String) -> DataError {
    DataError::Digits {
        path: PATH,
        line,
        offset: offset as u64,
        detail,
    }
}

/// Parses the CSV: one image per non-empty line, 64 pixels in 0..=16 then a
/// label in 0..=9.
fn parse(text: &str) -> Result<(Vec<u8>, Vec<i64>), DataError> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (lineno, at) = (i + 1, offset);
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != PIXELS + 1 {
            return Err(bad(
                lineno,
                at,
                format!(
                    "{} fields, expected {} (64 pixels and a label)",
                    fields.len(),
                    PIXELS + 1
                ),
            ));
        }
        for (j, f) in fields.iter().enumerate() {
            let (max, what) = if j < PIXELS {
                (16, "pixel")
            } else {
                (9, "label")
            };
            let v: u8 = match f.trim().parse() {
                Ok(v) if v <= max => v,
                _ => {
                    return Err(bad(
                        lineno,
                        at,
                        format!(
                            "field {} ({what}) is {f:?}, expected an integer 0..={max}",
                            j + 1
                        ),
                    ))
                }
            };
            if j < PIXELS {
                pixels.push(v);
            } else {
                labels.push(v as i64);
            }
        }
    }
    if labels.is_empty() {
        return Err(bad(1, 0, "no images in the file".into()));
    }
    Ok((pixels, labels))
}

/// Stratified, seeded 80/20 split; both splits shuffled.
fn split(pixels: &[u8], labels: &[i64]) -> RawSplits {
    let mut rng = ChaCha8Rng::seed_from_u64(SPLIT_SEED);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..10 {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        let k = (idx.len() as f64 * TRAIN_SHARE).round() as usize;
        train.extend_from_slice(&idx[..k]);
        test.extend_from_slice(&idx[k..]);
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    let gather = |idx: &[usize]| {
        let px: Vec<u8> = idx
            .iter()
            .flat_map(|&i| pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied())
            .collect();
        let lb: Vec<i64> = idx.iter().map(|&i| labels[i]).collect();
        (px, lb)
    };
    let (train_pixels, train_labels) = gather(&train);
    let (test_pixels, test_labels) = gather(&test);
    RawSplits {
        train_pixels,
        train_labels,
        test_pixels,
        test_labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_csv_parses() {
        let mut text = String::new();
        flate2::read::GzDecoder::new(GZ)
            .read_to_string(&mut text)
            .unwrap();
        let (px, lb) = parse(&text).unwrap();
        assert_eq!(lb.len(), 1797);
        assert_eq!(px.len(), 1797 * 64);
        let split = split(&px, &lb);
        assert_eq!(split.train_labels.len() + split.test_labels.len(), 1797);
        assert_eq!(split.train_pixels.len(), split.train_labels.len() * 64);
        // Every image lands in exactly one split: the pixel sums add up.
        let sum = |v: &[u8]| v.iter().map(|&p| p as u64).sum::<u64>();
        assert_eq!(sum(&split.train_pixels) + sum(&split.test_pixels), sum(&px));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let good = format!("{},3\n", vec!["0"; 64].join(","));
        let e = parse(&format!("{good}{good}1,2,3\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("3 fields") && e.contains(PATH),
            "{e}"
        );
        assert!(
            e.contains(&format!("byte offset {}", 2 * good.len())),
            "{e}"
        );
        let e = parse(&format!("{good}{},3\n", vec!["17"; 64].join(",")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("pixel"), "{e}");
        let e = parse(&format!("{},x\n", vec!["0"; 64].join(",")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("label"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("no images"), "{e}");
        assert!(parse(&format!("{good}\n{good}")).is_ok());
    }
}
