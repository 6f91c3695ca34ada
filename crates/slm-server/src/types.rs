//! The OpenAI wire format: request bodies (deserialized leniently — unknown fields are ignored, as
//! clients send many) and response bodies (serialized exactly as the official clients expect).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// A single stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the token counts.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// Fields shared by both completion endpoints (flattened into each request).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SamplingFields {
    /// Ignored beyond echoing: the server serves one model.
    #[serde(default)]
    pub model: Option<String>,
    /// Upper bound on generated tokens.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Softmax temperature, 0..=2 (0 = greedy).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0..=1.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Keep the k most likely tokens (0 disables).
    #[serde(default)]
    pub top_k: Option<u64>,
    /// Drop tokens below min_p × the top probability.
    #[serde(default)]
    pub min_p: Option<f64>,
    /// PRNG seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default)]
    pub stop: Option<StopField>,
    /// Number of choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<u64>,
    /// -2..=2.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2..=2.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// Stream with server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// `{"type": "text" | "json_object" | "json_schema"}`.
    #[serde(default)]
    pub response_format: Option<serde_json::Value>,
    /// llama.cpp extension: never end at an end-of-text token (benchmarks, load tests).
    #[serde(default)]
    pub ignore_eos: Option<bool>,
    /// Tool definitions (not supported yet: rejected when non-empty).
    #[serde(default)]
    pub tools: Option<serde_json::Value>,
}

/// The content of a chat message: a string or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts (`{"type": "text", "text": ...}`).
    Parts(Vec<ContentPart>),
}

/// One part of a message's content.
#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    /// `text` (other types are rejected).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// One message of a chat request.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// The text (null for an assistant turn that only called tools).
    #[serde(default)]
    pub content: Option<MessageContent>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletionRequest {
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Newer name of `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Return log-probabilities of the sampled tokens.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// How many alternatives per position (0..=20); needs `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<u64>,
    /// The sampling fields.
    #[serde(flatten)]
    pub common: SamplingFields,
}

/// `prompt` of a legacy completion: text or token ids, single or batched (batches of one only).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptField {
    /// Text.
    Text(String),
    /// A batch of texts.
    Texts(Vec<String>),
    /// Token ids.
    Tokens(Vec<u32>),
    /// A batch of token-id lists.
    TokenLists(Vec<Vec<u32>>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The text to continue.
    pub prompt: PromptField,
    /// Top log-probabilities per position (0..=5); absent = none.
    #[serde(default)]
    pub logprobs: Option<u64>,
    /// Echo the prompt (not supported).
    #[serde(default)]
    pub echo: Option<bool>,
    /// Text after the completion (not supported).
    #[serde(default)]
    pub suffix: Option<String>,
    /// Server-side best-of (only 1).
    #[serde(default)]
    pub best_of: Option<u64>,
    /// The sampling fields.
    #[serde(flatten)]
    pub common: SamplingFields,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Their sum.
    pub total_tokens: usize,
}

/// One alternative token at a position.
#[derive(Debug, Clone, Serialize)]
pub struct TopLogprob {
    /// The token's text (lossy UTF-8).
    pub token: String,
    /// Natural-log probability.
    pub logprob: f32,
    /// The token's bytes.
    pub bytes: Vec<u8>,
}

/// The log-probability of one generated token, with alternatives.
#[derive(Debug, Clone, Serialize)]
pub struct ChatTokenLogprob {
    /// The token's text (lossy UTF-8).
    pub token: String,
    /// Natural-log probability under the model.
    pub logprob: f32,
    /// The token's bytes.
    pub bytes: Vec<u8>,
    /// The most likely tokens at this position.
    pub top_logprobs: Vec<TopLogprob>,
}

/// `logprobs` of a chat choice.
#[derive(Debug, Clone, Serialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<ChatTokenLogprob>,
}

/// `logprobs` of a legacy completion choice.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompletionLogprobs {
    /// Token texts.
    pub tokens: Vec<String>,
    /// Their log-probabilities.
    pub token_logprobs: Vec<f32>,
    /// Alternatives per position.
    pub top_logprobs: Vec<BTreeMap<String, f32>>,
    /// Byte offset of each token in the generated text.
    pub text_offset: Vec<usize>,
}

/// An assistant message in a response.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The generated text.
    pub content: String,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    /// Always 0 (n = 1).
    pub index: u32,
    /// The answer.
    pub message: ResponseMessage,
    /// Log-probabilities, when asked for.
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model.
    pub model: String,
    /// Exactly one choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
}

/// The `delta` of a streamed chat chunk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatDelta {
    /// `assistant` in the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a streamed chat chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: ChatDelta,
    /// Log-probabilities of the tokens behind this delta.
    pub logprobs: Option<ChatLogprobs>,
    /// Set in the last chunk.
    pub finish_reason: Option<&'static str>,
}

/// A streamed chat chunk (`chat.completion.chunk`).
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletionChunk {
    /// Same for every chunk of one response.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model.
    pub model: String,
    /// One choice, or none in the usage chunk.
    pub choices: Vec<ChatChunkChoice>,
    /// Present (null until the last chunk) when `stream_options.include_usage` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

/// One choice of a legacy completion (streamed or not).
#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    /// Always 0.
    pub index: u32,
    /// The generated text (or the new piece of it, when streaming).
    pub text: String,
    /// Log-probabilities, when asked for.
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop`/`length` at the end, else null.
    pub finish_reason: Option<&'static str>,
}

/// A legacy completion (`text_completion`), also the shape of its stream chunks.
#[derive(Debug, Clone, Serialize)]
pub struct Completion {
    /// `cmpl-...`.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model.
    pub model: String,
    /// One choice (none in the usage chunk).
    pub choices: Vec<CompletionChoice>,
    /// Token counts (non-streamed, or the usage chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The model id clients put in `model`.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix seconds (server start).
    pub created: u64,
    /// `slm`.
    pub owned_by: &'static str,
    /// Context window in tokens.
    pub context_length: usize,
    /// Architecture name.
    pub architecture: String,
    /// Parameter count.
    pub n_params: u64,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The served model.
    pub data: Vec<ModelCard>,
}
