//! The JPEG decoder comparison behind ddsas's choice of libjpeg-turbo,
//! with zune-jpeg where the build lacks it (BENCHMARKS.md): every decoder
//! on every file of a folder, one thread, thread CPU time, best of N
//! interleaved rounds. Needs the system libjpeg-turbo (Debian:
//! libturbojpeg0-dev; the turbojpeg crate 1.x wants libjpeg-turbo 3, hence
//! 0.5 and the C call for its DCT scaling).
//!
//!     cargo run --release -- DIR [ROUNDS]


fn files(dir: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { stack.push(p) } else if p.extension().map_or(false, |x| x == "JPEG") { out.push(std::fs::read(&p).unwrap()) }
        }
    }
    out
}

fn zune(d: &[u8]) -> usize {
    use zune_core::{colorspace::ColorSpace, options::DecoderOptions};
    let o = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(d, o);
    dec.decode().unwrap().len()
}

fn zune5(d: &[u8]) -> usize {
    use zune_core5::{colorspace::ColorSpace, options::DecoderOptions, bytestream::ZCursor};
    let o = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = zune_jpeg5::JpegDecoder::new_with_options(ZCursor::new(d), o);
    dec.decode().unwrap().len()
}

fn image_crate(d: &[u8]) -> usize {
    image::load_from_memory_with_format(d, image::ImageFormat::Jpeg).unwrap().to_rgb8().len()
}

fn jd(d: &[u8], denom: u16) -> usize {
    let mut dec = jpeg_decoder::Decoder::new(d);
    dec.read_info().unwrap();
    let i = dec.info().unwrap();
    if denom > 1 { dec.scale(i.width / denom, i.height / denom).unwrap(); }
    dec.decode().unwrap().len()
}

fn tj(dec: &mut turbojpeg::Decompressor, d: &[u8], denom: usize) -> usize {
    let h = dec.read_header(d).unwrap();
    let (w, hh) = ((h.width + denom - 1) / denom, (h.height + denom - 1) / denom);
    let mut px = vec![0u8; w * hh * 3];
    if denom == 1 {
        let img = turbojpeg::Image { pixels: &mut px[..], width: w, pitch: w * 3, height: hh, format: turbojpeg::PixelFormat::RGB };
        dec.decompress(d, img).unwrap();
    } else {
        // turbojpeg 0.5 has no scaling factor: the C call picks the DCT
        // scaling that fits the asked size.
        unsafe {
            let hd = TJ.with(|t| *t);
            let r = turbojpeg::raw::tjDecompress2(hd, d.as_ptr(), d.len() as _, px.as_mut_ptr(), w as _, (w * 3) as _, hh as _, turbojpeg::raw::TJPF_TJPF_RGB as _, 0);
            assert_eq!(r, 0);
        }
    }
    px.len()
}

thread_local! { static TJ: turbojpeg::raw::tjhandle = unsafe { turbojpeg::raw::tjInitDecompress() }; }

type Dec<'a> = (&'static str, Box<dyn FnMut(&[u8]) -> usize + 'a>);

fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let rounds: usize = std::env::args().nth(2).map_or(7, |r| r.parse().unwrap());
    let data = files(&dir);
    let mb: usize = data.iter().map(|d| d.len()).sum();
    println!("{} files, {:.1} MB, one thread, thread CPU time, best of {rounds} interleaved rounds", data.len(), mb as f64 / 1e6);
    let mut tjd = turbojpeg::Decompressor::new().unwrap();
    let tjp: *mut turbojpeg::Decompressor = &mut tjd;
    let mut decs: Vec<Dec> = vec![
        ("zune-jpeg 0.4 (full)", Box::new(zune)),
        ("zune-jpeg 0.5 (full)", Box::new(zune5)),
        ("image 0.25 (zune backend)", Box::new(image_crate)),
        ("jpeg-decoder 0.3 (full)", Box::new(|d| jd(d, 1))),
        ("jpeg-decoder 0.3 (1/2)", Box::new(|d| jd(d, 2))),
        ("jpeg-decoder 0.3 (1/4)", Box::new(|d| jd(d, 4))),
        ("turbojpeg 0.5 (full)", Box::new(move |d| tj(unsafe { &mut *tjp }, d, 1))),
        ("turbojpeg 0.5 (1/2)", Box::new(move |d| tj(unsafe { &mut *tjp }, d, 2))),
        ("turbojpeg 0.5 (1/4)", Box::new(move |d| tj(unsafe { &mut *tjp }, d, 4))),
        ("turbojpeg 0.5 (1/8)", Box::new(move |d| tj(unsafe { &mut *tjp }, d, 8))),
    ];
    let mut best = vec![f64::INFINITY; decs.len()];
    for _ in 0..rounds {
        for (k, (_, f)) in decs.iter_mut().enumerate() {
            let t = cpu();
            let mut s = 0;
            for d in &data { s += f(d); }
            std::hint::black_box(s);
            best[k] = best[k].min(cpu() - t);
        }
    }
    for ((name, _), b) in decs.iter().zip(best) {
        println!("{name:<28} {:8.0} images/s  ({:.2} ms/image)", data.len() as f64 / b, b * 1e3 / data.len() as f64);
    }
}

fn cpu() -> f64 {
    let mut ts = turbojpeg::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { turbojpeg::libc::clock_gettime(turbojpeg::libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
