//! The axum router: endpoints, API-key check, body-size limit, per-route metrics.
//!
//! ```text
//!  GET  /                     the chat web page (static, embedded; no CDN)
//!  GET  /health               200 when the model is loaded, 503 while loading
//!  GET  /metrics              Prometheus text
//!  GET  /v1/models[/{id}]     the served model          ┐
//!  POST /v1/chat/completions  chat (JSON or SSE)        ├ Bearer key when one is set
//!  POST /v1/completions       raw text (JSON or SSE)    │
//!  POST /v1/embeddings        sentence vectors          ┘ (with an embedding model installed)
//! ```

use crate::embeddings::{self, EmbeddingRequest, EmbeddingService};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::params::{self, GenParams, RequestLimits};
use crate::respond::{self, Flavor, Meta};
use crate::types::{ChatCompletionRequest, CompletionRequest, ModelCard, ModelList};
use crate::worker::{Job, Queue};
use axum::body::Body;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

/// The model and its worker, once loaded.
pub struct Ready {
    pub(crate) engine: Arc<Engine>,
    pub(crate) queue: Queue,
    pub(crate) worker: Mutex<Option<JoinHandle<()>>>,
}

/// What every handler shares.
pub struct AppState {
    pub(crate) api_key: Option<String>,
    pub(crate) max_body_bytes: usize,
    /// Time a request has to send its body (then 408).
    pub(crate) body_read_timeout: std::time::Duration,
    pub(crate) limits: RequestLimits,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) ready: OnceLock<Ready>,
    /// The encoder behind `/v1/embeddings`, when one is installed.
    pub(crate) embeddings: OnceLock<Arc<EmbeddingService>>,
    pub(crate) started: u64,
    /// Connections open now.
    pub(crate) open_connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl AppState {
    fn ready(&self) -> Result<&Ready, ApiError> {
        self.ready.get().ok_or(ApiError::Loading)
    }
}

/// Builds the router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/", get(page))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/web", get(crate::web_static::redirect))
        .route("/web/", get(crate::web_static::index))
        .route("/web/{*path}", get(crate::web_static::file))
        .merge(v1)
        .fallback(|req: Request| async move {
            ApiError::NotFound(req.uri().path().chars().take(200).collect())
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Counts every response by route and status.
async fn count(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let resp = next.run(req).await;
    s.metrics.count_http(&route, resp.status().as_u16());
    resp
}

/// Compares without an early exit, so response time does not leak how much of the key matched.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Rejects requests without the configured Bearer key.
async fn auth(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(key) = &s.api_key {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same_key(g.as_bytes(), key.as_bytes())) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(req).await
}

/// The chat page: one self-contained HTML file compiled into the binary.
const PAGE: &str = include_str!("web/index.html");

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            // The page may talk to this server only: no CDN, no third-party requests.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        PAGE,
    )
        .into_response()
}

async fn health(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    s.ready()?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})).into_response())
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let open = s
        .open_connections
        .load(std::sync::atomic::Ordering::Relaxed);
    let body = s.metrics.render(s.ready.get().is_some(), open);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The served model's card.
fn card(s: &AppState) -> Result<ModelCard, ApiError> {
    let e = &s.ready()?.engine;
    let c = e.model().config();
    Ok(ModelCard {
        id: e.model_id().to_string(),
        object: "model",
        created: s.started,
        owned_by: "slm",
        context_length: e.n_ctx(),
        architecture: format!("{:?}", c.arch),
        n_params: c.n_params(),
    })
}

/// Every served model's card: the chat model (once loaded) and the embedding model.
fn cards(s: &AppState) -> Result<Vec<ModelCard>, ApiError> {
    let mut data: Vec<ModelCard> = card(s).into_iter().collect();
    if let Some(e) = s.embeddings.get() {
        data.push(e.card(s.started));
    }
    if data.is_empty() {
        return Err(ApiError::Loading);
    }
    Ok(data)
}

async fn models(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    Ok(axum::Json(ModelList {
        object: "list",
        data: cards(&s)?,
    })
    .into_response())
}

async fn model(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let cards = cards(&s)?;
    let served = cards
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join("', '");
    match cards.into_iter().find(|c| c.id == id) {
        Some(card) => Ok(axum::Json(card).into_response()),
        None => Err(ApiError::ModelNotFound {
            id: id.chars().take(200).collect(),
            served,
        }),
    }
}

/// Reads the body (at most `limit` bytes, within `timeout`) and parses it as JSON.
async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<T, ApiError> {
    let mut buf = Vec::new();
    let mut frames = body.into_data_stream();
    let read_all = async {
        while let Some(frame) = frames.next().await {
            let bytes = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            if buf.len() + bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            buf.extend_from_slice(&bytes);
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read_all)
        .await
        .map_err(|_| ApiError::RequestTimeout {
            seconds: timeout.as_secs(),
        })??;
    serde_json::from_slice(&buf)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

/// Runs CPU work (tokenizing) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("tokenizer task failed: {e}")))?
}

async fn chat_completions(
    State(s): State<Arc<AppState>>,
    body: Body,
) -> Result<Response, ApiError> {
    let req: ChatCompletionRequest = read_json(body, s.max_body_bytes, s.body_read_timeout).await?;
    let ready = s.ready()?;
    let (params, messages) = params::chat(&req, &s.limits)?;
    let engine = ready.engine.clone();
    let prompt = blocking(move || engine.encode_chat(&messages)).await?;
    start(ready, prompt, params, Flavor::Chat).await
}

async fn completions(State(s): State<Arc<AppState>>, body: Body) -> Result<Response, ApiError> {
    let req: CompletionRequest = read_json(body, s.max_body_bytes, s.body_read_timeout).await?;
    let ready = s.ready()?;
    let params = params::completion(&req, &s.limits)?;
    let engine = ready.engine.clone();
    let prompt = blocking(move || engine.encode_prompt(&req.prompt)).await?;
    start(ready, prompt, params, Flavor::Completion).await
}

async fn embeddings(State(s): State<Arc<AppState>>, body: Body) -> Result<Response, ApiError> {
    let req: EmbeddingRequest = read_json(body, s.max_body_bytes, s.body_read_timeout).await?;
    let service = s.embeddings.get().cloned().ok_or_else(|| {
        ApiError::invalid(
            "model",
            "this server has no embedding model; start it with `slm serve --embedding-model PATH`",
        )
    })?;
    let value = blocking(move || embeddings::embed(&service, &req)).await?;
    Ok(axum::Json(value).into_response())
}

/// Checks the prompt fits, queues the job and answers (collected or streamed).
async fn start(
    ready: &Ready,
    prompt: Vec<u32>,
    params: GenParams,
    flavor: Flavor,
) -> Result<Response, ApiError> {
    let max_tokens = ready
        .engine
        .completion_budget(prompt.len(), params.max_tokens)?;
    let meta = Meta {
        id: respond::new_id(if flavor == Flavor::Chat {
            "chatcmpl"
        } else {
            "cmpl"
        }),
        created: respond::unix_now(),
        model: ready.engine.model_id().to_string(),
        flavor,
        logprobs: params.logprobs.is_some(),
        include_usage: params.stream && params.include_usage,
    };
    let stream = params.stream;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    ready.queue.submit(Job {
        prompt,
        params,
        max_tokens,
        events: tx,
        enqueued: Instant::now(),
    })?;
    if stream {
        Ok(respond::stream(meta, rx))
    } else {
        respond::collect(meta, rx).await
    }
}
