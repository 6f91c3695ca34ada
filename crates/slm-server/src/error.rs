//! [`ApiError`]: every error a request can meet, rendered in the OpenAI error JSON shape
//! (`{"error": {"message", "type", "param", "code"}}`) with a 4xx status for client errors and a
//! 5xx status for the server's own failures, so official clients raise their typed exceptions.
//! [`ServerError`]: failures of starting or running the server itself.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to one request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or asks for something out of range (400).
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong and what to do.
        message: String,
        /// The offending field, when there is one.
        param: Option<String>,
        /// A machine-readable code (e.g. `context_length_exceeded`), when there is one.
        code: Option<&'static str>,
    },
    /// Missing or wrong API key (401).
    #[error("invalid API key: send the server's key as 'Authorization: Bearer <key>'")]
    Unauthorized,
    /// No such route (404).
    #[error(
        "unknown endpoint {0}; see GET /v1/models, POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings"
    )]
    NotFound(String),
    /// `GET /v1/models/{id}` for another model (404).
    #[error("model '{id}' does not exist here; this server serves '{served}'")]
    ModelNotFound {
        /// The id asked for.
        id: String,
        /// The served model's id.
        served: String,
    },
    /// The route exists but not with this method (405).
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The body is larger than the configured limit (413).
    #[error("request body exceeds the limit of {limit} bytes; send a shorter request")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body did not arrive in time (408).
    #[error("the request body was not received within {seconds} s; send it in one go")]
    RequestTimeout {
        /// The time allowed, in seconds.
        seconds: u64,
    },
    /// The model is still loading (503).
    #[error("the model is still loading; retry shortly")]
    Loading,
    /// The request queue is full (503 with `Retry-After`).
    #[error(
        "the server is busy ({capacity} requests already waiting); retry after {retry_after_s} s"
    )]
    Busy {
        /// Queue capacity.
        capacity: usize,
        /// Suggested wait in seconds.
        retry_after_s: u64,
    },
    /// The server is shutting down (503).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A failure inside the server (500); not the client's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 for `param` with `message`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
            code: None,
        }
    }

    /// A 400 not tied to one field.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Loading | ApiError::Busy { .. } | ApiError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The OpenAI error `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. }
            | ApiError::PayloadTooLarge { .. }
            | ApiError::RequestTimeout { .. }
            | ApiError::MethodNotAllowed => "invalid_request_error",
            ApiError::NotFound(_) | ApiError::ModelNotFound { .. } => "not_found_error",
            ApiError::Unauthorized => "authentication_error",
            ApiError::Loading | ApiError::Busy { .. } | ApiError::ShuttingDown => {
                "server_busy_error"
            }
            ApiError::Internal(_) => "server_error",
        }
    }

    /// The error object (the value of the top-level `error` key).
    pub fn body(&self) -> ErrorBody {
        let (param, code) = match self {
            ApiError::InvalidRequest { param, code, .. } => {
                (param.clone(), code.map(str::to_string))
            }
            ApiError::Unauthorized => (None, Some("invalid_api_key".to_string())),
            ApiError::ModelNotFound { .. } => (
                Some("model".to_string()),
                Some("model_not_found".to_string()),
            ),
            _ => (None, None),
        };
        ErrorBody {
            message: self.to_string(),
            kind: self.kind(),
            param,
            code,
        }
    }
}

/// The OpenAI error object.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// Error type (`invalid_request_error`, `authentication_error`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The offending parameter, if any.
    pub param: Option<String>,
    /// Machine-readable code, if any.
    pub code: Option<String>,
}

/// `{"error": ...}`.
#[derive(Serialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status(),
            axum::Json(ErrorEnvelope { error: self.body() }),
        )
            .into_response();
        if let ApiError::Busy { retry_after_s, .. } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        }
        if matches!(self, ApiError::Loading) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        }
        resp
    }
}

impl From<slm_runtime::RuntimeError> for ApiError {
    fn from(e: slm_runtime::RuntimeError) -> ApiError {
        use slm_runtime::RuntimeError as R;
        match e {
            // Caused by what the client sent (template exceptions, sampler ranges, bad ids).
            R::TemplateRender { .. }
            | R::InvalidSamplerConfig { .. }
            | R::InvalidRequest(_)
            | R::TokenOutOfRange { .. } => ApiError::bad_request(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<slm_runtime::ConstraintError> for ApiError {
    fn from(e: slm_runtime::ConstraintError) -> ApiError {
        use slm_runtime::ConstraintError as C;
        match e {
            // The client's spec: rejected, too big, or too costly to follow step by step.
            C::InvalidSpec { .. } | C::SpecTooLarge { .. } | C::SpecTooDeep { .. } | C::Step(_) => {
                ApiError::invalid("response_format", e.to_string())
            }
            C::TokenEnv(_) | C::VocabMismatch { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<slm_model::ModelError> for ApiError {
    fn from(e: slm_model::ModelError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

/// Failures of the server as a whole (binding, runtime, loading).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {reason}; pick another --port or stop the program using it")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error (in the message, not a `source`, so it is not printed twice).
        reason: std::io::Error,
    },
    /// The async runtime or a thread could not be started.
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
    /// A setting is out of range.
    #[error("invalid server setting: {0}")]
    Config(String),
    /// The engine was installed twice.
    #[error("the model is already installed in this server")]
    AlreadyLoaded,
    /// The model could not be prepared for serving.
    #[error(transparent)]
    Model(#[from] slm_model::ModelError),
    /// The tokenizer or template could not be prepared.
    #[error(transparent)]
    Tokenizer(#[from] slm_runtime::RuntimeError),
}
