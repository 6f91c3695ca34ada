//! Turning the worker's events into OpenAI responses: one JSON body (collected), or server-sent
//! events where every `data:` line is a JSON chunk and the stream ends with `data: [DONE]`.

use crate::error::{ApiError, ErrorEnvelope};
use crate::generate::TokenLogprob;
use crate::types::{
    ChatChoice, ChatChunkChoice, ChatCompletion, ChatCompletionChunk, ChatDelta, ChatLogprobs,
    ChatTokenLogprob, Completion, CompletionChoice, CompletionLogprobs, ResponseMessage,
    TopLogprob, Usage,
};
use crate::worker::Event;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::UnboundedReceiver;

/// Which endpoint is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// What every response of one request carries.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `chatcmpl-...` / `cmpl-...`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The served model id.
    pub model: String,
    /// The endpoint.
    pub flavor: Flavor,
    /// Log-probabilities were asked for.
    pub logprobs: bool,
    /// A usage chunk was asked for (streaming).
    pub include_usage: bool,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh response id: unique within the process, unpredictable enough across restarts.
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 of time and counter: ids do not reveal the request count.
    let mut z = nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{prefix}-{:016x}{n:x}", z ^ (z >> 31))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn chat_logprobs(lps: &[TokenLogprob]) -> ChatLogprobs {
    ChatLogprobs {
        content: lps
            .iter()
            .map(|t| ChatTokenLogprob {
                token: lossy(&t.bytes),
                logprob: t.logprob,
                bytes: t.bytes.clone(),
                top_logprobs: t
                    .top
                    .iter()
                    .map(|(b, lp)| TopLogprob {
                        token: lossy(b),
                        logprob: *lp,
                        bytes: b.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Legacy-completion logprobs; `offset` is the byte offset of the first token in the text.
fn completion_logprobs(lps: &[TokenLogprob], offset: &mut usize) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for t in lps {
        out.tokens.push(lossy(&t.bytes));
        out.token_logprobs.push(t.logprob);
        out.top_logprobs
            .push(t.top.iter().map(|(b, lp)| (lossy(b), *lp)).collect());
        out.text_offset.push(*offset);
        *offset += t.bytes.len();
    }
    out
}

/// Waits for the whole generation and answers one JSON body.
pub async fn collect(meta: Meta, mut rx: UnboundedReceiver<Event>) -> Result<Response, ApiError> {
    let mut text = String::new();
    let mut lps = Vec::new();
    let (finish, usage) = loop {
        match rx.recv().await {
            Some(Event::Text(t, l)) => {
                text.push_str(&t);
                lps.extend(l);
            }
            Some(Event::Done(f, u)) => break (f, u),
            Some(Event::Error(e)) => return Err(e),
            None => {
                return Err(ApiError::Internal(
                    "the worker stopped before finishing the request".into(),
                ))
            }
        }
    };
    let finish_reason = finish.openai_name();
    let resp = match meta.flavor {
        Flavor::Chat => axum::Json(ChatCompletion {
            id: meta.id,
            object: "chat.completion",
            created: meta.created,
            model: meta.model,
            choices: vec![ChatChoice {
                index: 0,
                message: ResponseMessage {
                    role: "assistant",
                    content: text,
                },
                logprobs: meta.logprobs.then(|| chat_logprobs(&lps)),
                finish_reason,
            }],
            usage,
        })
        .into_response(),
        Flavor::Completion => axum::Json(Completion {
            id: meta.id,
            object: "text_completion",
            created: meta.created,
            model: meta.model,
            choices: vec![CompletionChoice {
                index: 0,
                text,
                logprobs: meta.logprobs.then(|| completion_logprobs(&lps, &mut 0)),
                finish_reason: Some(finish_reason),
            }],
            usage: Some(usage),
        })
        .into_response(),
    };
    Ok(resp)
}

fn data<T: serde::Serialize>(value: &T) -> SseEvent {
    match serde_json::to_string(value) {
        Ok(s) => SseEvent::default().data(s),
        Err(e) => SseEvent::default().data(format!(
            "{{\"error\":{{\"message\":\"serializing a chunk: {e}\",\"type\":\"server_error\"}}}}"
        )),
    }
}

/// Builds the SSE chunks of one response.
struct Chunker {
    meta: Meta,
    offset: usize,
}

impl Chunker {
    /// A chunk with new text (or the final chunk when `finish` is set).
    fn chunk(
        &mut self,
        text: Option<String>,
        lps: &[TokenLogprob],
        finish: Option<&'static str>,
        role: bool,
    ) -> SseEvent {
        let m = &self.meta;
        match m.flavor {
            Flavor::Chat => data(&ChatCompletionChunk {
                id: m.id.clone(),
                object: "chat.completion.chunk",
                created: m.created,
                model: m.model.clone(),
                choices: vec![ChatChunkChoice {
                    index: 0,
                    delta: ChatDelta {
                        role: role.then_some("assistant"),
                        content: text,
                    },
                    logprobs: (m.logprobs && !lps.is_empty()).then(|| chat_logprobs(lps)),
                    finish_reason: finish,
                }],
                usage: m.include_usage.then_some(None),
            }),
            Flavor::Completion => {
                let logprobs = (m.logprobs && !lps.is_empty())
                    .then(|| completion_logprobs(lps, &mut self.offset));
                data(&Completion {
                    id: m.id.clone(),
                    object: "text_completion",
                    created: m.created,
                    model: m.model.clone(),
                    choices: vec![CompletionChoice {
                        index: 0,
                        text: text.unwrap_or_default(),
                        logprobs,
                        finish_reason: finish,
                    }],
                    usage: None,
                })
            }
        }
    }

    fn usage(&self, usage: Usage) -> SseEvent {
        let m = &self.meta;
        match m.flavor {
            Flavor::Chat => data(&ChatCompletionChunk {
                id: m.id.clone(),
                object: "chat.completion.chunk",
                created: m.created,
                model: m.model.clone(),
                choices: Vec::new(),
                usage: Some(Some(usage)),
            }),
            Flavor::Completion => data(&Completion {
                id: m.id.clone(),
                object: "text_completion",
                created: m.created,
                model: m.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
            }),
        }
    }

    /// The SSE events for one worker event; `None` once the stream is over.
    fn events(&mut self, event: Option<Event>) -> (Vec<SseEvent>, bool) {
        let done = || SseEvent::default().data("[DONE]");
        match event {
            Some(Event::Text(t, lps)) => (vec![self.chunk(Some(t), &lps, None, false)], false),
            Some(Event::Done(finish, usage)) => {
                let text = (self.meta.flavor == Flavor::Completion).then(String::new);
                let mut v = vec![self.chunk(text, &[], Some(finish.openai_name()), false)];
                if self.meta.include_usage {
                    v.push(self.usage(usage));
                }
                v.push(done());
                (v, true)
            }
            Some(Event::Error(e)) => (vec![data(&ErrorEnvelope { error: e.body() }), done()], true),
            None => {
                let e =
                    ApiError::Internal("the worker stopped before finishing the request".into());
                (vec![data(&ErrorEnvelope { error: e.body() }), done()], true)
            }
        }
    }
}

/// Answers with server-sent events as the worker produces text. Dropping the response (client
/// gone) drops `rx`, which the worker notices before its next step.
pub fn stream(meta: Meta, rx: UnboundedReceiver<Event>) -> Response {
    let mut chunker = Chunker { meta, offset: 0 };
    let first = match chunker.meta.flavor {
        Flavor::Chat => vec![chunker.chunk(Some(String::new()), &[], None, true)],
        Flavor::Completion => Vec::new(),
    };
    let rest = stream::unfold(
        (rx, chunker, false),
        |(mut rx, mut chunker, over)| async move {
            if over {
                return None;
            }
            let (events, over) = chunker.events(rx.recv().await);
            Some((stream::iter(events), (rx, chunker, over)))
        },
    )
    .flatten();
    let all = stream::iter(first).chain(rest).map(Ok::<_, Infallible>);
    Sse::new(all).into_response()
}
