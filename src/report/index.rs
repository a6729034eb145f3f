//! `index.html` of `ddsas report all`: every figure (its PNGs, each
//! linking to its SVG; the cells have a picture per cell type) with a caption that says which runs, how many seeds and which
//! metric it uses, the tables inline, and what could not be drawn and why.
//! One self-contained file with relative links, so the folder can be copied
//! or served as is.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::data::SweepData;
use super::escape::html as esc;
use super::{write_file, Output, ReportError};

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Writes `out/index.html` for the figures `made` and the `skipped` ones.
pub fn write(
    data: &SweepData,
    made: &[Output],
    skipped: &[(String, String)],
    out: &Path,
) -> Result<PathBuf, ReportError> {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ddsas report: {name}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', sans-serif; max-width: 1280px; margin: 2em auto; padding: 0 1em; color: #222; }}\n\
         figure {{ margin: 2.5em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}\n\
         figcaption {{ margin-top: .5em; line-height: 1.45; }} .files {{ color: #666; font-size: 90%; }}\n\
         .sub {{ margin: .3em 0 1.5em; color: #444; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #bbb; padding: .35em .8em; }}\n\
         </style>\n</head>\n<body>\n<h1>Sweep <code>{name}</code></h1>\n<p>{runs} done run(s) drawn from the run history.{rest}</p>\n",
        name = esc(&data.name),
        runs = data.runs.len(),
        rest = esc(&data.not_done_note()),
    );
    for o in made {
        let files: Vec<String> = o
            .files
            .iter()
            .map(|f| {
                let n = file_name(f);
                format!("<a href=\"{0}\">{0}</a>", esc(&n))
            })
            .collect();
        html.push_str("<figure>\n");
        if let Some(table) = &o.html {
            html.push_str(table);
        }
        for image in &o.images {
            let (w, h) = image.size;
            let _ = writeln!(
                html,
                "<a href=\"{svg}\"><img src=\"{png}\" width=\"{w}\" height=\"{h}\" alt=\"{alt}\"></a>",
                svg = esc(&file_name(&image.svg)),
                png = esc(&file_name(&image.png)),
                alt = esc(image.caption.as_deref().unwrap_or(&o.title))
            );
            if let Some(caption) = &image.caption {
                let _ = writeln!(html, "<p class=\"sub\">{}</p>", esc(caption));
            }
        }
        let _ = writeln!(
            html,
            "<figcaption><b>{}</b>. {}<br><span class=\"files\">{} · rendered in {:.2} s</span></figcaption>\n</figure>",
            esc(&o.title),
            esc(&o.caption),
            files.join(" · "),
            o.seconds
        );
    }
    if !skipped.is_empty() {
        html.push_str("<h2>Not drawn</h2>\n<ul>\n");
        for (fig, why) in skipped {
            let _ = writeln!(html, "<li><b>{}</b>: {}</li>", esc(fig), esc(why));
        }
        html.push_str("</ul>\n");
    }
    html.push_str("</body>\n</html>\n");
    let path = out.join("index.html");
    write_file(&path, &html)?;
    Ok(path)
}
