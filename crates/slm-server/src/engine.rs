//! [`Engine`]: the model being served with its tokenizer, chat template and thread pool, and the
//! prompt preparation every request goes through (tokenizing, context-size check), and the
//! token table for constrained decoding (`response_format`), built once at load.

use crate::error::{ApiError, ServerError};
use crate::params::GenParams;
use crate::types::PromptField;
use slm_kernels::Pool;
use slm_model::Model;
use slm_runtime::{encode_chat, ChatMessage, ChatTemplate, Constraint, TokenEnv, Tokenizer};
use std::sync::{Arc, OnceLock};

/// Most contexts one worker keeps (each costs a full KV cache).
pub const MAX_SLOTS: usize = 64;

/// Sizes and names for an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The id reported as `model` (usually the file stem).
    pub model_id: String,
    /// Context window in tokens (prompt + completion).
    pub n_ctx: usize,
    /// Prompt tokens per forward pass.
    pub n_batch: usize,
    /// Contexts kept by the worker (each with its own KV cache, `n_ctx` tokens): a request goes
    /// to the one sharing the longest prompt prefix, so several conversations keep their caches.
    pub n_slots: usize,
}

/// Everything needed to generate: shared by the HTTP handlers (tokenizing) and the worker.
pub struct Engine {
    pub(crate) model: Arc<Model>,
    pub(crate) tokenizer: Arc<Tokenizer>,
    pub(crate) template: ChatTemplate,
    pub(crate) pool: Arc<Pool>,
    pub(crate) opts: EngineOptions,
    /// End-of-generation token ids (masked out for `ignore_eos`).
    pub(crate) eog_ids: Vec<u32>,
    /// The vocabulary as the grammar engine sees it, or why this tokenizer cannot be
    /// constrained (built by the first request that asks for a `response_format`).
    pub(crate) token_env: OnceLock<Result<TokenEnv, String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Bundles a loaded model for serving. `n_ctx` must be at least 2 (a prompt token and an
    /// answer token) and `n_batch` at least 1.
    pub fn new(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        template: ChatTemplate,
        pool: Arc<Pool>,
        opts: EngineOptions,
    ) -> Result<Engine, ServerError> {
        if opts.n_ctx < 2 {
            return Err(ServerError::Config(format!(
                "context size {} is too small; use at least 2 tokens",
                opts.n_ctx
            )));
        }
        if opts.n_slots == 0 || opts.n_slots > MAX_SLOTS {
            return Err(ServerError::Config(format!(
                "{} slots requested; use 1 to {MAX_SLOTS}",
                opts.n_slots
            )));
        }
        if opts.n_batch == 0 {
            return Err(ServerError::Config("batch size must be at least 1".into()));
        }
        let n_vocab = u32::try_from(model.config().n_vocab).unwrap_or(u32::MAX);
        let eog_ids = (0..n_vocab).filter(|&id| tokenizer.is_eog(id)).collect();
        Ok(Engine {
            model,
            tokenizer,
            template,
            pool,
            opts,
            eog_ids,
            token_env: OnceLock::new(),
        })
    }

    /// The request's output constraint compiled for this vocabulary (`None`: free text).
    /// A spec the grammar engine rejects is a 400 on `response_format`.
    pub fn constraint(&self, params: &GenParams) -> Result<Option<Constraint>, ApiError> {
        let Some(spec) = &params.constraint else {
            return Ok(None);
        };
        // Built on first use (~0.1 s for a 49k vocabulary), so that start-up does not wait for
        // it. A tokenizer the grammar engine cannot use only disables `response_format`.
        let env = self.token_env.get_or_init(|| {
            TokenEnv::new(self.tokenizer.clone(), self.model.config().n_vocab)
                .map_err(|e| e.to_string())
        });
        let env = env.as_ref().map_err(|reason| {
            ApiError::invalid(
                "response_format",
                format!("this model's tokenizer cannot be used for constrained output: {reason}"),
            )
        })?;
        Ok(Some(Constraint::new(env, spec)?))
    }

    /// The served model's id.
    pub fn model_id(&self) -> &str {
        &self.opts.model_id
    }

    /// Context window in tokens.
    pub fn n_ctx(&self) -> usize {
        self.opts.n_ctx
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Renders and tokenizes a conversation; user text never becomes control tokens.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ApiError> {
        Ok(encode_chat(
            &self.tokenizer,
            &self.template,
            messages,
            true,
        )?)
    }

    /// Tokenizes a legacy completion prompt (text is tokenized without parsing control tokens;
    /// token ids are checked against the vocabulary).
    pub fn encode_prompt(&self, prompt: &PromptField) -> Result<Vec<u32>, ApiError> {
        let one = |n: usize| {
            if n == 1 {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    "prompt",
                    format!("a batch of {n} prompts was sent; send exactly one prompt per request"),
                ))
            }
        };
        let ids = match prompt {
            PromptField::Text(t) => self.tokenizer.encode_prompt(t, false)?,
            PromptField::Texts(v) => {
                one(v.len())?;
                self.tokenizer
                    .encode_prompt(v.first().map_or("", String::as_str), false)?
            }
            PromptField::Tokens(ids) => self.checked_ids(ids)?,
            PromptField::TokenLists(v) => {
                one(v.len())?;
                self.checked_ids(v.first().map_or(&[][..], Vec::as_slice))?
            }
        };
        Ok(ids)
    }

    fn checked_ids(&self, ids: &[u32]) -> Result<Vec<u32>, ApiError> {
        let v = self.model.config().n_vocab;
        match ids.iter().find(|&&id| id as usize >= v) {
            Some(id) => Err(ApiError::invalid(
                "prompt",
                format!("token id {id} is out of range: the vocabulary has {v} tokens"),
            )),
            None => Ok(ids.to_vec()),
        }
    }

    /// How many tokens the request may generate: its `max_tokens`, or what is left of the
    /// context. A prompt (plus an explicit `max_tokens`) that does not fit is a 400 — never
    /// silently truncated.
    pub fn completion_budget(
        &self,
        n_prompt: usize,
        max_tokens: Option<usize>,
    ) -> Result<usize, ApiError> {
        let n_ctx = self.opts.n_ctx;
        let overflow = |message: String| ApiError::InvalidRequest {
            message,
            param: Some("messages".into()),
            code: Some("context_length_exceeded"),
        };
        if n_prompt == 0 {
            return Err(ApiError::invalid(
                "prompt",
                "the prompt is empty; send some text",
            ));
        }
        if n_prompt >= n_ctx {
            return Err(overflow(format!(
                "This model's maximum context length is {n_ctx} tokens, but the prompt has {n_prompt} tokens (and at least one more is needed for the answer). Shorten the prompt, or start the server with a larger --ctx."
            )));
        }
        match max_tokens {
            Some(m) if n_prompt + m > n_ctx => Err(overflow(format!(
                "This model's maximum context length is {n_ctx} tokens, but {} were requested ({n_prompt} in the prompt, {m} for the completion). Lower max_tokens to at most {} or shorten the prompt.",
                n_prompt + m,
                n_ctx - n_prompt
            ))),
            Some(m) => Ok(m),
            None => Ok(n_ctx - n_prompt),
        }
    }
}
