//! stub
use super::{Options, Output, ReportError, SweepData};
/// stub
pub async fn render(data: &SweepData, _opts: &Options) -> Result<Output, ReportError> {
    Err(ReportError::cannot("table5", &data.name, "todo", "todo"))
}
