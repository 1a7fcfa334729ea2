//! The one error type of the HTTP edge and its mapping to statuses and the contract's body:
//! `{"error": {"code", "message", "field"}}`. The match is exhaustive, so a new variant forces
//! a decision about its status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::profile::StoreError;
use crate::validation::{FieldError, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller's input is wrong.
    #[error("{0}")]
    Invalid(Invalid),
    #[error("{0}")]
    NotFound(String),
    /// A known path asked with a method it does not take (the `Allow` header lists those it
    /// does).
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not JSON (`Content-Type` other than `application/json`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The store could not take or give the data; the caller may retry.
    #[error("{0}")]
    StoreUnavailable(StoreError),
    /// A customer took more events within the retry window than the service remembers.
    #[error("{0}")]
    TooManyEvents(StoreError),
    /// The service is up but cannot serve yet (no models loaded, no catalog).
    #[error("{0}")]
    NotReady(String),
    /// A conflict with the state of the service (e.g. a reload already running).
    #[error("{0}")]
    Conflict(String),
    /// The request is well formed but conflicts with what the service holds (a view of a
    /// profile as of a time before events it already holds): `409`.
    #[error("{0}")]
    CannotHonour(FieldError),
    /// A model set that cannot be served (the one in service stays).
    #[error("{0}")]
    InvalidModelSet(String),
    /// The decision log could not do what was asked (an erasure); the caller may retry.
    #[error("{0}")]
    LogUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// No API key, or one not configured: `401`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key may not do this: `403`.
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
}

impl From<crate::auth::Refusal> for ApiError {
    fn from(r: crate::auth::Refusal) -> Self {
        match r {
            crate::auth::Refusal::Unauthenticated(m) => ApiError::Unauthorized(m),
            crate::auth::Refusal::Forbidden {
                code,
                message,
                field,
            } => ApiError::Forbidden {
                code,
                message,
                field,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooManyEvents { .. } => ApiError::TooManyEvents(e),
            StoreError::Unavailable(_)
            | StoreError::Timeout(_)
            | StoreError::Contended(_)
            | StoreError::Corrupt { .. } => ApiError::StoreUnavailable(e),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<crate::decision::service::EraseError> for ApiError {
    fn from(e: crate::decision::service::EraseError) -> Self {
        match e {
            crate::decision::service::EraseError::Store(e) => ApiError::StoreUnavailable(e),
            crate::decision::service::EraseError::Log(e) => ApiError::LogUnavailable(e.to_string()),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(Invalid::one(e))
    }
}

/// The error body of every non-2xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    #[schema(example = "invalid_amount")]
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// JSON path of the offending field, or null.
    #[schema(example = "events[3].amount")]
    pub field: Option<String>,
    /// Every problem found, when there is more than one (first one repeated above).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    fn code(&self) -> &str {
        match self {
            ApiError::Invalid(i) => i.first().code,
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::StoreUnavailable(_) => "store_unavailable",
            ApiError::TooManyEvents(_) => "too_many_events",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidModelSet(_) => "invalid_model_set",
            ApiError::CannotHonour(e) => e.code,
            ApiError::LogUnavailable(_) => "decision_log_unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden { code, .. } => code,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (message, field, details) = match self {
            ApiError::Invalid(i) => {
                let first = i.first();
                let details = if i.0.len() > 1 {
                    i.0.iter()
                        .map(|e| FieldProblem {
                            code: e.code.to_owned(),
                            message: e.message.clone(),
                            field: e.field.clone(),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (first.message.clone(), first.field.clone(), details)
            }
            ApiError::CannotHonour(e) => (e.message.clone(), e.field.clone(), Vec::new()),
            ApiError::Forbidden { message, field, .. } => {
                (message.clone(), field.map(str::to_owned), Vec::new())
            }
            ApiError::NotFound(_)
            | ApiError::MethodNotAllowed(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType(_)
            | ApiError::StoreUnavailable(_)
            | ApiError::TooManyEvents(_)
            | ApiError::NotReady(_)
            | ApiError::Conflict(_)
            | ApiError::InvalidModelSet(_)
            | ApiError::LogUnavailable(_)
            | ApiError::Unauthorized(_)
            | ApiError::Internal(_) => (self.to_string(), None, Vec::new()),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                field,
                details,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::StoreUnavailable(_) | ApiError::NotReady(_) | ApiError::LogUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Conflict(_) | ApiError::CannotHonour(_) => StatusCode::CONFLICT,
            ApiError::TooManyEvents(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::InvalidModelSet(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, status = status.as_u16(), "request failed");
        }
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Store outages are usually short; tell clients when to come back.
            response.insert_header(("Retry-After", "1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(self.body())
    }
}
