//! API errors and their HTTP status codes (DESIGN.md, "Admin API").
//!
//! Every error answer is `{"error": "<message>"}`. Internal causes (SQLite, I/O) are logged and
//! replaced by a generic message: callers learn that the request failed, not how the server is
//! built.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use super::types::ErrorBody;
use crate::publish::PublishError;
use crate::publish::RollRefusal;
use crate::record::RecordError;
use crate::store::{self, Refusal, StorageFault};

/// The cause of an internal error: logged, never shown to the caller.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request cannot be read (bad JSON, bad header or query syntax).
    #[error("{0}")]
    Malformed(String),
    /// 401: no token, or not a valid one.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 403: the token's scope does not cover this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the zone's data.
    #[error("{0}")]
    Conflict(String),
    /// 412: `If-Match` does not match.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 422: readable, but a value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// 500: the cause is logged; the caller gets a generic message.
    #[error("internal error")]
    Internal(#[source] Cause),
    /// 503.
    #[error("{0}")]
    Unavailable(String),
    /// 507: the disk under the store is full.
    #[error("{0}")]
    InsufficientStorage(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(
                cause = &**cause as &dyn std::error::Error,
                "api request failed"
            );
        }
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<RecordError> for ApiError {
    fn from(e: RecordError) -> Self {
        Self::Invalid(e.to_string())
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e.fault() {
            Some(fault) => Self::storage(fault),
            None => Self::Internal(e.into()),
        }
    }
}

impl ApiError {
    /// 507 for a full disk, 503 for one that cannot be written: nothing was written.
    fn storage(fault: StorageFault) -> Self {
        match fault {
            StorageFault::Full => Self::InsufficientStorage(
                "the disk holding the store is full; nothing was written, and DNS answers from \
                 the last publish until space returns"
                    .into(),
            ),
            StorageFault::Unwritable => Self::Unavailable(
                "the store cannot be written (read-only or failing disk); nothing was written, \
                 and DNS answers from the last publish"
                    .into(),
            ),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownZone(_) | Refusal::NoSuchNode(_) | Refusal::NoSuchRollout(_) => {
                Self::NotFound(r.to_string())
            }
            Refusal::SeqMismatch { .. } | Refusal::Unmet { .. } | Refusal::SerialMoved { .. } => {
                Self::PreconditionFailed(r.to_string())
            }
            Refusal::Denied { .. } | Refusal::Overlap { .. } | Refusal::RolloutState { .. } => {
                Self::Conflict(r.to_string())
            }
            Refusal::EmptyRollout => Self::Invalid(r.to_string()),
            // `Refusal` is non-exhaustive: a new kind is a conflict until it says otherwise.
            #[allow(unreachable_patterns)]
            _ => Self::Conflict(r.to_string()),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::UnknownZone(_) => Self::NotFound(e.to_string()),
            PublishError::StaticName(_) => Self::Conflict(e.to_string()),
            PublishError::Refused(r) => r.into(),
            PublishError::Stopped => Self::Unavailable("the server is shutting down".into()),
            PublishError::Roll(r @ (RollRefusal::Running { .. } | RollRefusal::NotWaiting)) => {
                Self::Conflict(r.to_string())
            }
            PublishError::Roll(r) => Self::Invalid(r.to_string()),
            PublishError::Failed(w) => match w.fault() {
                Some(fault) => Self::storage(fault),
                None => Self::Internal(PublishError::Failed(w).into()),
            },
            other => Self::Internal(other.into()),
        }
    }
}
