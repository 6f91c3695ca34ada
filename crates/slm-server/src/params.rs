//! Validating requests: every field is checked against a stated range and turned into the
//! engine's own settings ([`GenParams`]), so nothing out of bounds reaches the worker.

use crate::error::ApiError;
use crate::types::{
    ChatCompletionRequest, CompletionRequest, MessageContent, SamplingFields, StopField,
};
use slm_runtime::{ChatMessage, ConstraintSpec, SamplerConfig};

/// Size limits on requests (beyond the body size, which the router enforces).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Most messages in one chat request.
    pub max_messages: usize,
    /// Most stop strings.
    pub max_stop: usize,
    /// Longest stop string in bytes.
    pub max_stop_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            max_messages: 4096,
            max_stop: 4,
            max_stop_bytes: 256,
        }
    }
}

/// Largest `top_logprobs` of a chat request (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u64 = 20;
/// Largest `logprobs` of a legacy completion (OpenAI's limit).
pub const MAX_COMPLETION_LOGPROBS: u64 = 5;
/// Largest accepted `max_tokens` before the context check (which is usually stricter).
pub const MAX_TOKENS_LIMIT: u64 = 1 << 20;

/// What the engine needs to serve one request, validated.
#[derive(Debug, Clone)]
pub struct GenParams {
    /// The client's `max_tokens`, if given (checked against the context later).
    pub max_tokens: Option<usize>,
    /// Sampling settings.
    pub sampler: SamplerConfig,
    /// Stop strings.
    pub stop: Vec<String>,
    /// `Some(k)`: return the sampled token's log-probability and the `k` most likely alternatives.
    pub logprobs: Option<usize>,
    /// Answer as server-sent events.
    pub stream: bool,
    /// With `stream`: a last chunk with the token counts.
    pub include_usage: bool,
    /// Never sample end-of-text tokens (generate exactly `max_tokens` unless a stop string hits).
    pub ignore_eos: bool,
    /// `response_format` json_object / json_schema: the output must match this (checked to
    /// compile; the engine compiles it for its vocabulary per request).
    pub constraint: Option<ConstraintSpec>,
}

fn float_in(field: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<Option<f32>, ApiError> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(Some(x as f32)),
        Some(x) => Err(ApiError::invalid(
            field,
            format!("{field} = {x} is out of range: it must be between {lo} and {hi}"),
        )),
    }
}

/// The fields both endpoints share.
fn common(c: &SamplingFields, limits: &RequestLimits) -> Result<GenParams, ApiError> {
    match c.n {
        None | Some(1) => {}
        Some(n) => {
            return Err(ApiError::invalid(
                "n",
                format!("n = {n} is not supported: this server returns exactly one choice (n = 1)"),
            ))
        }
    }
    let constraint = match &c.response_format {
        None => None,
        Some(rf) => response_format(rf)?,
    };
    if c.tools
        .as_ref()
        .is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(ApiError::invalid(
            "tools",
            "tool calling is not supported by this server yet; send the request without 'tools'",
        ));
    }
    let defaults = SamplerConfig::default();
    let mut sampler = SamplerConfig {
        seed: c.seed.map(|s| s as u64),
        ..defaults
    };
    if let Some(t) = float_in("temperature", c.temperature, 0.0, 2.0)? {
        sampler.temperature = t;
    }
    if let Some(p) = float_in("top_p", c.top_p, 0.0, 1.0)? {
        sampler.top_p = p;
    }
    if let Some(p) = float_in("min_p", c.min_p, 0.0, 1.0)? {
        sampler.min_p = p;
    }
    if let Some(p) = float_in("presence_penalty", c.presence_penalty, -2.0, 2.0)? {
        sampler.presence_penalty = p;
    }
    if let Some(p) = float_in("frequency_penalty", c.frequency_penalty, -2.0, 2.0)? {
        sampler.frequency_penalty = p;
    }
    if let Some(k) = c.top_k {
        // Larger than any vocabulary we serve; the stage clamps to the vocabulary anyway.
        if k > 1_000_000 {
            return Err(ApiError::invalid(
                "top_k",
                format!("top_k = {k} is out of range: use 0 (disabled) to 1000000"),
            ));
        }
        sampler.top_k = k as usize;
    }
    let max_tokens = match c.max_tokens {
        None => None,
        Some(0) => {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens must be at least 1",
            ))
        }
        Some(m) if m > MAX_TOKENS_LIMIT => {
            return Err(ApiError::invalid(
                "max_tokens",
                format!("max_tokens = {m} is out of range (at most {MAX_TOKENS_LIMIT})"),
            ))
        }
        Some(m) => Some(m as usize),
    };
    let stop = match &c.stop {
        None => Vec::new(),
        Some(StopField::One(s)) => vec![s.clone()],
        Some(StopField::Many(v)) => v.clone(),
    };
    if stop.len() > limits.max_stop {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "{} stop strings given; at most {} are allowed",
                stop.len(),
                limits.max_stop
            ),
        ));
    }
    if let Some(s) = stop.iter().find(|s| s.len() > limits.max_stop_bytes) {
        return Err(ApiError::invalid(
            "stop",
            format!(
                "a stop string is {} bytes; at most {} are allowed",
                s.len(),
                limits.max_stop_bytes
            ),
        ));
    }
    sampler
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(GenParams {
        max_tokens,
        sampler,
        stop,
        logprobs: None,
        stream: c.stream.unwrap_or(false),
        include_usage: c
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        ignore_eos: c.ignore_eos.unwrap_or(false),
        constraint,
    })
}

/// Parses OpenAI's `response_format`: `{"type": "text"}`, `{"type": "json_object"}` or
/// `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` (the schema is always
/// enforced; `strict` changes nothing). llama.cpp's `{"type": "json_object", "schema": {..}}`
/// is accepted too. The spec is compiled once here so a bad schema is a 400 naming its field.
fn response_format(rf: &serde_json::Value) -> Result<Option<ConstraintSpec>, ApiError> {
    const FIELD: &str = "response_format";
    let kind = rf.get("type").and_then(|t| t.as_str()).ok_or_else(|| {
        ApiError::invalid(
            FIELD,
            "response_format needs a string 'type': 'text', 'json_object' or 'json_schema'",
        )
    })?;
    let (spec, field) = match kind {
        "text" => return Ok(None),
        "json_object" => match rf.get("schema") {
            Some(schema) => (
                ConstraintSpec::JsonSchema(schema.clone()),
                "response_format.schema",
            ),
            None => (ConstraintSpec::JsonObject, FIELD),
        },
        "json_schema" => {
            let Some(js) = rf.get("json_schema").filter(|v| v.is_object()) else {
                return Err(ApiError::invalid(
                    "response_format.json_schema",
                    "response_format type 'json_schema' needs a 'json_schema' object: {\"name\": ..., \"schema\": {...}}",
                ));
            };
            if js.get("name").is_some_and(|n| !n.is_string()) {
                return Err(ApiError::invalid(
                    "response_format.json_schema.name",
                    "response_format.json_schema.name must be a string",
                ));
            }
            match js.get("schema") {
                Some(schema) => (
                    ConstraintSpec::JsonSchema(schema.clone()),
                    "response_format.json_schema.schema",
                ),
                // OpenAI treats a missing schema as "any JSON object".
                None => (ConstraintSpec::JsonObject, "response_format.json_schema"),
            }
        }
        other => {
            return Err(ApiError::invalid(
                FIELD,
                format!("response_format type '{other}' is not supported; use 'text', 'json_object' or 'json_schema'"),
            ))
        }
    };
    spec.validate()
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
    Ok(Some(spec))
}

/// Validates a chat request: its parameters and its messages (roles, text-only content).
pub fn chat(
    req: &ChatCompletionRequest,
    limits: &RequestLimits,
) -> Result<(GenParams, Vec<ChatMessage>), ApiError> {
    let mut p = common(&req.common, limits)?;
    if let Some(m) = req.max_completion_tokens {
        let fields = SamplingFields {
            max_tokens: Some(m),
            ..SamplingFields::default()
        };
        p.max_tokens = common(&fields, limits)
            .map_err(|_| {
                ApiError::invalid(
                    "max_completion_tokens",
                    format!(
                        "max_completion_tokens = {m} is out of range (1 to {MAX_TOKENS_LIMIT})"
                    ),
                )
            })?
            .max_tokens;
    }
    let top = req.top_logprobs.unwrap_or(0);
    if top > MAX_TOP_LOGPROBS {
        return Err(ApiError::invalid(
            "top_logprobs",
            format!("top_logprobs = {top} is out of range (0 to {MAX_TOP_LOGPROBS})"),
        ));
    }
    match req.logprobs {
        Some(true) => p.logprobs = Some(top as usize),
        _ if req.top_logprobs.is_some_and(|t| t > 0) => {
            return Err(ApiError::invalid(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ));
        }
        _ => {}
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "messages is empty; send at least one message",
        ));
    }
    if req.messages.len() > limits.max_messages {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "{} messages given; at most {} are allowed",
                req.messages.len(),
                limits.max_messages
            ),
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "developer" => "system",
            r @ ("system" | "user" | "assistant") => r,
            other => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].role"),
                    format!(
                        "role '{other}' is not supported; use system, developer, user or assistant"
                    ),
                ))
            }
        };
        let content = match &m.content {
            None => String::new(),
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => {
                let mut text = String::new();
                for (j, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(ApiError::invalid(
                                format!("messages[{i}].content[{j}]"),
                                format!("content part of type '{kind}' is not supported; this model reads text parts only"),
                            ))
                        }
                    }
                }
                text
            }
        };
        messages.push(ChatMessage::new(role, content));
    }
    Ok((p, messages))
}

/// Validates a legacy completion request's parameters (the prompt is tokenized by the engine).
pub fn completion(req: &CompletionRequest, limits: &RequestLimits) -> Result<GenParams, ApiError> {
    let mut p = common(&req.common, limits)?;
    if req.echo == Some(true) {
        return Err(ApiError::invalid(
            "echo",
            "echo is not supported; send the request without it",
        ));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid(
            "suffix",
            "suffix (fill-in-the-middle) is not supported",
        ));
    }
    if req.best_of.is_some_and(|b| b != 1) {
        return Err(ApiError::invalid(
            "best_of",
            "best_of must be 1 (one choice per request)",
        ));
    }
    if let Some(k) = req.logprobs {
        if k > MAX_COMPLETION_LOGPROBS {
            return Err(ApiError::invalid(
                "logprobs",
                format!("logprobs = {k} is out of range (0 to {MAX_COMPLETION_LOGPROBS})"),
            ));
        }
        p.logprobs = Some(k as usize);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_req(json: serde_json::Value) -> Result<(GenParams, Vec<ChatMessage>), ApiError> {
        let req: ChatCompletionRequest =
            serde_json::from_value(json).map_err(|e| ApiError::bad_request(e.to_string()))?;
        chat(&req, &RequestLimits::default())
    }

    fn param_of(e: ApiError) -> Option<String> {
        match e {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn ranges_are_enforced_per_field() {
        let base = serde_json::json!({"messages": [{"role": "user", "content": "hi"}]});
        for (field, value) in [
            ("temperature", serde_json::json!(2.5)),
            ("temperature", serde_json::json!(-0.1)),
            ("top_p", serde_json::json!(1.5)),
            ("min_p", serde_json::json!(-1)),
            ("presence_penalty", serde_json::json!(3)),
            ("frequency_penalty", serde_json::json!(-2.01)),
            ("top_k", serde_json::json!(10_000_000u64)),
            ("max_tokens", serde_json::json!(0)),
            ("n", serde_json::json!(2)),
            ("top_logprobs", serde_json::json!(21)),
        ] {
            let mut req = base.clone();
            req[field] = value.clone();
            if field == "top_logprobs" {
                req["logprobs"] = serde_json::json!(true);
            }
            let err = chat_req(req).expect_err(&format!("{field} = {value} must be rejected"));
            assert_eq!(param_of(err).as_deref(), Some(field), "{field} = {value}");
        }
    }

    #[test]
    fn valid_request_maps_to_sampler_settings() {
        let (p, m) = chat_req(serde_json::json!({
            "messages": [{"role": "developer", "content": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}]},
                         {"role": "user", "content": "hi"}],
            "temperature": 0, "top_k": 5, "seed": -1, "stop": "x", "max_completion_tokens": 7,
            "logprobs": true, "top_logprobs": 3, "stream": true, "stream_options": {"include_usage": true}
        }))
        .unwrap();
        assert_eq!(m[0], ChatMessage::new("system", "be brief"));
        assert_eq!(p.sampler.temperature, 0.0);
        assert_eq!(p.sampler.top_k, 5);
        assert_eq!(p.sampler.seed, Some(u64::MAX));
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.max_tokens, Some(7));
        assert_eq!(p.logprobs, Some(3));
        assert!(p.stream && p.include_usage);
    }

    #[test]
    fn unsupported_features_are_refused_not_ignored() {
        let msgs = serde_json::json!([{"role": "user", "content": "hi"}]);
        for extra in [
            serde_json::json!({"response_format": {"type": "grammar"}}),
            serde_json::json!({"tools": [{"type": "function"}]}),
            serde_json::json!({"top_logprobs": 2}),
            serde_json::json!({"stop": ["a", "b", "c", "d", "e"]}),
        ] {
            let mut req = extra.clone();
            req["messages"] = msgs.clone();
            assert!(chat_req(req).is_err(), "{extra} must be rejected");
        }
        let bad_role = serde_json::json!({"messages": [{"role": "tool", "content": "x"}]});
        assert_eq!(
            param_of(chat_req(bad_role).unwrap_err()).as_deref(),
            Some("messages[0].role")
        );
        let image =
            serde_json::json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]});
        assert!(chat_req(image).is_err());
        assert!(chat_req(serde_json::json!({"messages": []})).is_err());
    }

    #[test]
    fn response_format_becomes_a_constraint() {
        let msgs = serde_json::json!([{"role": "user", "content": "hi"}]);
        let with = |rf: serde_json::Value| {
            chat_req(serde_json::json!({"messages": msgs, "response_format": rf}))
                .map(|(p, _)| p.constraint)
        };
        let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]});
        assert_eq!(with(serde_json::json!({"type": "text"})).unwrap(), None);
        assert_eq!(
            with(serde_json::json!({"type": "json_object"})).unwrap(),
            Some(ConstraintSpec::JsonObject)
        );
        assert_eq!(
            with(serde_json::json!({"type": "json_schema",
                "json_schema": {"name": "n", "schema": schema, "strict": true}}))
            .unwrap(),
            Some(ConstraintSpec::JsonSchema(schema.clone()))
        );
        // llama.cpp's variant: a schema inside json_object.
        assert_eq!(
            with(serde_json::json!({"type": "json_object", "schema": schema})).unwrap(),
            Some(ConstraintSpec::JsonSchema(schema))
        );
        // No schema: any JSON object, as OpenAI does.
        assert_eq!(
            with(serde_json::json!({"type": "json_schema", "json_schema": {"name": "n"}})).unwrap(),
            Some(ConstraintSpec::JsonObject)
        );
    }

    #[test]
    fn bad_response_formats_name_their_field() {
        let msgs = serde_json::json!([{"role": "user", "content": "hi"}]);
        let mut deep = serde_json::json!({"type": "integer"});
        for _ in 0..40 {
            deep = serde_json::json!({"type": "array", "items": deep});
        }
        for (rf, field) in [
            (serde_json::json!({"type": "grammar"}), "response_format"),
            (
                serde_json::json!({"kind": "json_object"}),
                "response_format",
            ),
            (
                serde_json::json!({"type": "json_schema"}),
                "response_format.json_schema",
            ),
            (
                serde_json::json!({"type": "json_schema", "json_schema": {"name": 3, "schema": {}}}),
                "response_format.json_schema.name",
            ),
            (
                serde_json::json!({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "no-such-type"}}}),
                "response_format.json_schema.schema",
            ),
            (
                serde_json::json!({"type": "json_schema", "json_schema": {"name": "n", "schema": [1]}}),
                "response_format.json_schema.schema",
            ),
            (
                serde_json::json!({"type": "json_schema", "json_schema": {"name": "n", "schema": deep}}),
                "response_format.json_schema.schema",
            ),
            (
                serde_json::json!({"type": "json_object", "schema": {"type": "string", "pattern": "("}}),
                "response_format.schema",
            ),
        ] {
            let err = chat_req(serde_json::json!({"messages": msgs, "response_format": rf}))
                .expect_err(&format!("{rf} must be rejected"));
            assert_eq!(param_of(err).as_deref(), Some(field), "{rf}");
        }
    }
}
