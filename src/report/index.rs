//! stub
use std::path::{Path, PathBuf};
use super::{Output, ReportError, SweepData};
/// stub
pub fn write(_data: &SweepData, _made: &[Output], _skipped: &[(String, String)], out: &Path) -> Result<PathBuf, ReportError> {
    Ok(out.join("index.html"))
}
