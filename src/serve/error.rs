//! Why a page of `ddsas serve` cannot be shown, and how that is answered:
//! shared by the HTML pages and the JSON they refresh from.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::report::ReportError;
use crate::store::QueryError;

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such sweep, run or figure.
    NotFound(String),
    /// A question that cannot be asked (a bad `?where=`).
    BadRequest(String),
    /// The database failed.
    Query(QueryError),
    /// A figure that cannot be drawn, or failed.
    Report(ReportError),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::NotFound(m) | PageError::BadRequest(m) => f.write_str(m),
            PageError::Query(e) => e.fmt(f),
            PageError::Report(e) => e.fmt(f),
        }
    }
}

impl From<QueryError> for PageError {
    fn from(e: QueryError) -> Self {
        PageError::Query(e)
    }
}

impl From<ReportError> for PageError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::CannotDraw { .. } | ReportError::UnknownSweep { .. } => {
                PageError::NotFound(e.to_string())
            }
            e => PageError::Report(e),
        }
    }
}

/// The error as a response: `404`, `400` or `500` with its message as text.
pub fn error_page(e: PageError) -> Response {
    let (status, text) = match e {
        PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
        PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        PageError::Query(e @ QueryError::TimedOut { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        PageError::Query(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        PageError::Report(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    (status, text + "\n").into_response()
}
