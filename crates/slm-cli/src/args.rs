//! Command-line definitions. Flag names follow llama.cpp's conventions (`-m`, `-t`, `-c`, `-n`,
//! `--temp`) with readable long forms, so users can carry their habits over.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// slm — run, inspect and measure small language models on your own machine.
#[derive(Debug, Parser)]
#[command(name = "slm", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer one prompt, streaming the reply (chat template applied unless --raw).
    #[command(after_help = "Example:\n  slm run \"What is the capital of France?\"\n  slm run -m model.gguf --temp 0 -n 64 --raw \"Once upon a time\"")]
    Run(RunArgs),
    /// Chat interactively, multi-turn (type /exit or Ctrl-D to leave, /reset to start over).
    #[command(after_help = "Example:\n  slm chat --system \"You are a terse assistant.\"")]
    Chat(ChatArgs),
    /// Download a known model into the local cache.
    #[command(after_help = "Example:\n  slm pull smollm2-135m-instruct")]
    Pull(PullArgs),
    /// List known models and which are in the local cache.
    #[command(after_help = "Example:\n  slm list")]
    List,
    /// Show a model's architecture, parameters, tensor types and memory needs.
    #[command(after_help = "Example:\n  slm show\n  slm show -m model.gguf --tensors")]
    Show(ShowArgs),
    /// Measure perplexity on a text file, chunked like llama-perplexity.
    #[command(after_help = "Example:\n  slm perplexity /usr/share/common-licenses/Apache-2.0 -c 256")]
    Perplexity(PerplexityArgs),
    /// Measure prompt-processing and generation speed (llama-bench style).
    #[command(after_help = "Example:\n  slm bench -p 512 -n 128 -t 2")]
    Bench(BenchArgs),
    /// Serve the model over an OpenAI-compatible HTTP API (chat, completions, streaming).
    #[command(after_help = "Example:\n  slm serve --port 8080\n  slm serve model.gguf --host 0.0.0.0 --api-key secret -c 2048")]
    Serve(ServeArgs),
}

/// Which model and how to run it.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model: a GGUF file path or a registry name (see `slm list`). Fetched on first use.
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens (default: 4096, capped at the model's training context).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Prompt batch size: tokens processed per forward pass.
    #[arg(short = 'b', long = "batch", default_value_t = 256)]
    pub batch: usize,
}

/// Sampling settings.
#[derive(Debug, Args, Clone)]
pub struct SamplingArgs {
    /// Maximum tokens to generate.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 512)]
    pub max_tokens: usize,
    /// Temperature; 0 (or below) means greedy.
    #[arg(long = "temperature", visible_alias = "temp", default_value_t = 0.8, allow_negative_numbers = true)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long = "top-k", default_value_t = 40)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability mass reaches P (1 = off).
    #[arg(long = "top-p", default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than P × the most likely one (0 = off).
    #[arg(long = "min-p", default_value_t = 0.05)]
    pub min_p: f32,
    /// Penalise recently seen tokens (1 = off).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    #[arg(long = "repeat-last-n", default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Random seed for reproducible sampling (default: random).
    #[arg(long = "seed")]
    pub seed: Option<u64>,
    /// Stop when this string is generated (repeatable).
    #[arg(long = "stop")]
    pub stop: Vec<String>,
}

/// `slm run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt (read from stdin when absent or "-").
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message for the chat template.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Feed the prompt as-is, without the chat template (plain completion).
    #[arg(long = "raw")]
    pub raw: bool,
    /// Print timing statistics to stderr at the end.
    #[arg(long = "verbose", short = 'v')]
    pub verbose: bool,
}

/// `slm chat`
#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message for the chat template.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Print timing statistics after each answer.
    #[arg(long = "verbose", short = 'v')]
    pub verbose: bool,
}

/// `slm pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Registry name (see `slm list`).
    #[arg(default_value = "smollm2-135m-instruct")]
    pub name: String,
}

/// `slm show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Model: a GGUF file path or a registry name.
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Also list every tensor with its shape and type.
    #[arg(long = "tensors")]
    pub tensors: bool,
    /// Also print every metadata key (long arrays summarised).
    #[arg(long = "metadata")]
    pub metadata: bool,
    /// Context size used for the memory estimate.
    #[arg(short = 'c', long = "ctx", default_value_t = 4096)]
    pub ctx: usize,
}

/// `slm perplexity`
#[derive(Debug, Args)]
pub struct PerplexityArgs {
    /// Text file to evaluate.
    pub file: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Evaluate at most this many chunks.
    #[arg(long = "chunks", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunks: Option<u64>,
    /// Print the result as JSON.
    #[arg(long = "json")]
    pub json: bool,
}

/// `slm bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model: a GGUF file path or a registry name.
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Prompt length for the prompt-processing test (0 = skip).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: usize,
    /// Tokens to generate for the generation test (0 = skip).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: usize,
    /// Threads.
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Repetitions of each test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub repetitions: usize,
    /// Prompt batch size.
    #[arg(short = 'b', long = "batch", default_value_t = 512)]
    pub batch: usize,
    /// Output format: md (table) or json (llama-bench's JSON keys).
    #[arg(short = 'o', long = "output", default_value = "md", value_parser = ["md", "json"])]
    pub output: String,
}

/// `slm serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model: a GGUF file path or a registry name (see `slm list`). Fetched on first use.
    #[arg(default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Address to listen on (127.0.0.1 = this machine only).
    #[arg(long = "host", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port).
    #[arg(long = "port", default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer <KEY>` on /v1/* requests.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
    /// Context size in tokens per request (default: 4096, capped at the model's training context).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Prompt batch size: tokens processed per forward pass.
    #[arg(short = 'b', long = "batch", default_value_t = 256)]
    pub batch: usize,
    /// Requests that may wait while one is generated; more get 503 + Retry-After.
    #[arg(long = "queue", default_value_t = 16)]
    pub queue: usize,
}
