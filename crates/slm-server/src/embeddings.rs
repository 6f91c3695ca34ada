//! `POST /v1/embeddings` in OpenAI's shape, served by a BERT-family encoder installed next to the
//! chat model (`slm serve --embedding-model`).
//!
//! Request: `input` (a string or an array of strings, at most [`MAX_INPUTS`], none empty),
//! `model`, `encoding_format` (`float`, or `base64`: little-endian f32 bytes, what the official
//! Python SDK asks for by default), `dimensions` (only the model's own), `user` (ignored). Token-id
//! inputs are refused: ids of another tokenizer would mean nothing to this model. Texts longer
//! than the model's sequence limit are truncated (as sentence-transformers and OpenAI do).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use slm_runtime::embed::{EmbedOptions, Embedder};

use crate::error::ApiError;
use crate::types::ModelCard;

/// Most texts in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The encoder and its id; one request computes at a time.
pub struct EmbeddingService {
    embedder: Mutex<Embedder>,
    model_id: String,
}

impl EmbeddingService {
    /// Wraps a loaded encoder served under `model_id`.
    pub fn new(embedder: Embedder, model_id: impl Into<String>) -> EmbeddingService {
        EmbeddingService {
            embedder: Mutex::new(embedder),
            model_id: model_id.into(),
        }
    }

    /// The id clients put in `model`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The card listed by `GET /v1/models`.
    pub fn card(&self, created: u64) -> ModelCard {
        let (max_len, n_params) = match self.embedder.lock() {
            Ok(e) => (e.tokenizer().max_len(), e.model().config().n_params()),
            Err(p) => (
                p.get_ref().tokenizer().max_len(),
                p.get_ref().model().config().n_params(),
            ),
        };
        ModelCard {
            id: self.model_id.clone(),
            object: "model",
            created,
            owned_by: "slm",
            context_length: max_len,
            architecture: "Bert".into(),
            n_params,
        }
    }
}

/// The request body.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    /// Text or texts.
    pub input: Value,
    /// Model id (checked against the served encoder when given).
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64`.
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Output width; only the model's own is supported.
    #[serde(default)]
    pub dimensions: Option<u64>,
    /// End-user id (accepted, unused).
    #[serde(default)]
    pub user: Option<String>,
}

/// One vector of the response.
#[derive(Debug, Serialize)]
struct EmbeddingData {
    object: &'static str,
    index: usize,
    embedding: Value,
}

/// Token counts of the response.
#[derive(Debug, Serialize)]
struct EmbeddingUsage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// The response body.
#[derive(Debug, Serialize)]
struct EmbeddingResponse {
    object: &'static str,
    data: Vec<EmbeddingData>,
    model: String,
    usage: EmbeddingUsage,
}

/// The texts of `input`, validated.
fn texts(input: &Value) -> Result<Vec<String>, ApiError> {
    let one = |v: &Value| -> Result<String, ApiError> {
        match v {
            Value::String(s) if s.is_empty() => {
                Err(ApiError::invalid("input", "input texts must not be empty"))
            }
            Value::String(s) => Ok(s.clone()),
            Value::Number(_) | Value::Array(_) => Err(ApiError::invalid(
                "input",
                "token-id input is not supported: this model has its own tokenizer; send the text",
            )),
            _ => Err(ApiError::invalid(
                "input",
                "input must be a string or an array of strings",
            )),
        }
    };
    match input {
        Value::Array(items) if items.is_empty() => Err(ApiError::invalid(
            "input",
            "input must not be an empty array",
        )),
        Value::Array(items) if items.len() > MAX_INPUTS => Err(ApiError::invalid(
            "input",
            format!(
                "at most {MAX_INPUTS} inputs per request; {} sent",
                items.len()
            ),
        )),
        Value::Array(items) if items.iter().all(Value::is_number) => Err(ApiError::invalid(
            "input",
            "token-id input is not supported: this model has its own tokenizer; send the text",
        )),
        Value::Array(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Computes the response for `req` (blocking: run it off the async threads).
pub fn embed(service: &Arc<EmbeddingService>, req: &EmbeddingRequest) -> Result<Value, ApiError> {
    if let Some(m) = req
        .model
        .as_deref()
        .filter(|m| !m.is_empty() && *m != service.model_id)
    {
        return Err(ApiError::ModelNotFound {
            id: m.chars().take(200).collect(),
            served: service.model_id.clone(),
        });
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!(
                    "encoding_format '{}' is not supported (float, base64)",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    let texts = texts(&req.input)?;
    let mut embedder = service
        .embedder
        .lock()
        .map_err(|_| ApiError::Internal("the encoder is unusable".into()))?;
    if let Some(d) = req.dimensions {
        if d != embedder.dim() as u64 {
            return Err(ApiError::invalid(
                "dimensions",
                format!(
                    "this model returns {} dimensions; omit 'dimensions' or pass {}",
                    embedder.dim(),
                    embedder.dim()
                ),
            ));
        }
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = embedder
        .embed(&refs, &EmbedOptions::default(), &mut |_| {})
        .map_err(|e| ApiError::Internal(format!("embedding failed: {e}")))?;
    drop(embedder);
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(v)
            };
            EmbeddingData {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let resp = EmbeddingResponse {
        object: "list",
        data,
        model: service.model_id.clone(),
        usage: EmbeddingUsage {
            prompt_tokens: out.n_tokens,
            total_tokens: out.n_tokens,
        },
    };
    serde_json::to_value(resp)
        .map_err(|e| ApiError::Internal(format!("cannot encode the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_shapes() {
        assert_eq!(texts(&json!("hi")).unwrap(), vec!["hi"]);
        assert_eq!(texts(&json!(["a", "b"])).unwrap(), vec!["a", "b"]);
        for bad in [
            json!(""),
            json!([]),
            json!([1, 2]),
            json!([[1, 2]]),
            json!(null),
            json!({"a": 1}),
            json!(["ok", ""]),
        ] {
            assert!(texts(&bad).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..MAX_INPUTS + 1).map(|_| json!("x")).collect();
        assert!(texts(&Value::Array(many)).is_err());
    }
}
