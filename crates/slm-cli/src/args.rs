//! Command-line definitions. Flag names follow llama.cpp's conventions (`-m`, `-t`, `-c`, `-n`,
//! `--temp`) with readable long forms, so users can carry their habits over.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// slm — run, inspect and measure small language models on your own machine.
#[derive(Debug, Parser)]
#[command(name = "slm", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    /// Keep model weights memory-mapped instead of reading them into huge-page memory (instant
    /// load, pages the OS may evict; generation ~10% slower). Large models are mapped anyway.
    #[arg(long, global = true)]
    pub mmap: bool,
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
    /// Convert between the Hugging Face layout (safetensors + config.json + tokenizer.json) and GGUF.
    #[command(after_help = "Example:\n  slm convert ./SmolLM2-135M-Instruct model-f16.gguf --dtype f16\n  slm convert model.gguf ./hf-model --dtype bf16\n\nIN: a GGUF file or an HF model directory; OUT: a GGUF file or a directory. Quantize afterwards with `slm quantize`.")]
    Convert(ConvertArgs),
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
    /// Convert a model to another precision (F16, Q8_0, Q4_K_M, ...), like llama-quantize.
    #[command(after_help = "Example:\n  slm quantize model-f16.gguf model-q4_k_m.gguf --type Q4_K_M\n  slm quantize in.gguf out.gguf --type Q4_0 --imatrix imatrix.gguf --tensor-type attn_v=q8_0\n\nTypes: F32, F16, BF16, Q8_0, Q6_K, Q5_1, Q5_K_M, Q5_K_S, Q5_0, Q4_1, Q4_K_M (alias Q4_K), Q4_K_S,\n       Q4_0, Q3_K_L, Q3_K_M (alias Q3_K), Q3_K_S, Q2_K, Q2_K_S (llama.cpp's numbers accepted too)")]
    Quantize(QuantizeArgs),
    /// Compare a model with a reference on a text: perplexities, KL divergence, same top token, size, speed.
    #[command(after_help = "Example:\n  slm eval --reference model-f16.gguf -m model-q4_0.gguf -m model-q8_0.gguf /usr/share/common-licenses/GPL-3")]
    Eval(EvalArgs),
    /// Collect an importance matrix (activation statistics) on calibration text for `slm quantize --imatrix`.
    #[command(after_help = "Example:\n  slm imatrix -m model-f16.gguf calibration.txt -o imatrix.gguf")]
    Imatrix(ImatrixArgs),
    /// Prune a model: magnitude or Wanda (unstructured, 2:4) or structured (FFN channels, KV groups, layers), with a report.
    #[command(after_help = "Example:\n  slm prune -m model-f32.gguf -o pruned.gguf --method wanda --sparsity 0.5 --calib calib.txt --eval /usr/share/common-licenses/GPL-3\n  slm prune -m model-f32.gguf -o small.gguf --ffn-keep 1024 --drop-layers 4 --calib calib.txt --eval eval.txt")]
    Prune(crate::cmd::prune::PruneArgs),
    /// Fine-tune a model with a LoRA adapter on instruction data (chat JSONL, prompt/completion or text); the base stays frozen (quantized bases too).
    #[command(after_help = "Example:\n  slm finetune smollm2-135m-instruct --lora --data train.jsonl --out runs/my-adapter --rank 8 --epochs 2\n  slm run -m smollm2-135m-instruct --lora runs/my-adapter/adapter.gguf \"...\"")]
    Finetune(crate::cmd::finetune::FinetuneArgs),
    /// Will a model run on a device? Memory, download size, expected speed, best quantization.
    #[command(after_help = "Example:\n  slm fit --device auto\n  slm fit model.gguf --device raspberry-pi-5 --ctx 2048 -v\n  slm fit --list-devices")]
    Fit(FitArgs),
    /// Suggest the most likely short continuations of a text, with probabilities (typing suggestions).
    #[command(after_help = "Example:\n  slm complete \"Thank you for your email. I will get back to you\" -n 3")]
    Complete(CompleteArgs),
    /// Summarize a text of any length (split to the context window, summarized, combined), streaming the result.
    #[command(after_help = "Example:\n  slm summarize /usr/share/common-licenses/Apache-2.0 --sentences 3\n  cat notes.txt | slm summarize -")]
    Summarize(SummarizeArgs),
    /// Classify texts: zero-shot into given labels (calibrated probabilities), or with a head trained on labelled data.
    #[command(after_help = "Example:\n  slm classify --labels spam,ham \"WIN A FREE CRUISE!!! Click now\"\n  slm classify --labels positive,negative --instruction \"What is the sentiment of this review?\" --jsonl reviews.jsonl\n  slm classify --train spam_train.jsonl -m minilm.gguf -o spam-head.gguf\n  slm classify --head spam-head.gguf --jsonl inbox.jsonl")]
    Classify(ClassifyArgs),
    /// Sentence embeddings with a BERT-family encoder (e.g. all-MiniLM-L6-v2), as JSON, JSON Lines or NPY.
    #[command(after_help = "Example:\n  slm embed -m ./all-MiniLM-L6-v2 \"A man is eating food.\" \"A man eats bread.\"\n  slm embed -m minilm.gguf --file sentences.txt --format npy -o vectors.npy\n\nMODEL: a bert GGUF file (see `slm convert`) or a Hugging Face directory (config.json, model.safetensors, tokenizer.json).")]
    Embed(EmbedArgs),
    /// Cosine similarity between texts, or the lines of a file ranked against a query (semantic search).
    #[command(after_help = "Example:\n  slm similarity -m minilm.gguf \"How do I reset my password?\" \"I forgot my login\"\n  slm similarity -m minilm.gguf \"refund policy\" --file faq.txt --top 3")]
    Similarity(SimilarityArgs),
    /// Train a small Llama-style model on text files on the CPU (from scratch or from a GGUF).
    #[command(visible_alias = "distill", after_help = "Example:\n  slm tokenizer train --data texts/ --vocab-size 2048 --out tokenizer.json\n  slm train --config model.toml --data texts/ --out run/ --tokenizer tokenizer.json\n  slm train --config model.toml --data texts/ --out run/ --resume\n  slm distill --config student.toml --data texts/ --out run/ --teacher smollm2-135m-instruct --distill-temperature 1\n  slm run -m run/model.gguf --raw \"Once upon a time\"\n\nFiles in --out: checkpoint.gguf, model.gguf, metrics.jsonl, loss.svg, report.json, tokenizer.gguf, config.toml (+ teacher-cache.gguf)")]
    Train(TrainArgs),
    /// Tokenizer tools: train a byte-level BPE tokenizer on text.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// LoRA adapter tools: merge adapters into a model, convert between PEFT and GGUF.
    #[command(subcommand)]
    Lora(crate::cmd::lora::LoraCommand),
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

/// LoRA adapters applied at run time.
#[derive(Debug, Args, Clone, Default)]
pub struct LoraArgs {
    /// LoRA adapter to apply: a llama.cpp GGUF adapter or a PEFT directory, with an optional
    /// scale (default 1). Repeat for several adapters.
    #[arg(long = "lora", value_name = "FILE[:SCALE]")]
    pub lora: Vec<String>,
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

/// Constrained output for `slm run` / `slm chat`.
#[derive(Debug, Args)]
pub struct ConstrainArgs {
    /// Answer with one JSON object (constrained decoding: only tokens that keep the JSON valid).
    #[arg(long = "json", conflicts_with = "json_schema")]
    pub json: bool,
    /// Answer with JSON valid under the JSON schema in FILE (constrained decoding).
    #[arg(long = "json-schema", value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
}

/// `slm run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt (read from stdin when absent or "-").
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub lora: LoraArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message for the chat template.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Feed the prompt as-is, without the chat template (plain completion).
    #[arg(long = "raw")]
    pub raw: bool,
    #[command(flatten)]
    pub constrain: ConstrainArgs,
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
    pub lora: LoraArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// System message for the chat template.
    #[arg(long = "system")]
    pub system: Option<String>,
    #[command(flatten)]
    pub constrain: ConstrainArgs,
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
    #[command(flatten)]
    pub lora: LoraArgs,
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
    /// Sequences generated together in the generation test (continuous batching, as `slm serve
    /// --slots N` does): t/s is then the total over all of them.
    #[arg(long = "parallel", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Output format: md (table) or json (llama-bench's JSON keys).
    #[arg(short = 'o', long = "output", default_value = "md", value_parser = ["md", "json"])]
    pub output: String,
}

/// `slm convert`
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Input: a GGUF file or a Hugging Face model directory (config.json + model.safetensors or shards).
    pub input: PathBuf,
    /// Output: a GGUF file (from a directory) or a directory (from a GGUF file); files are written atomically.
    pub output: PathBuf,
    /// Output format: gguf or hf (default: the other one of the input's).
    #[arg(long = "to")]
    pub to: Option<String>,
    /// Floating-point type of the output tensors: f32, f16 or bf16.
    #[arg(long = "dtype", default_value = "f32")]
    pub dtype: String,
}

/// `slm quantize`
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// Input model: a GGUF file path or a registry name.
    pub input: String,
    /// Output GGUF file (written atomically; an existing file is replaced only when done).
    pub output: PathBuf,
    /// Target preset, e.g. Q4_K_M, Q4_0, Q8_0, F16.
    #[arg(long = "type", short = 'q')]
    pub ftype: String,
    /// Re-encode tensors that are already quantized (each re-encoding loses quality).
    #[arg(long = "allow-requantize")]
    pub allow_requantize: bool,
    /// Use the preset's type for every matrix: no higher-precision mix for sensitive tensors.
    #[arg(long = "pure")]
    pub pure: bool,
    /// Keep output.weight in its current type.
    #[arg(long = "leave-output-tensor")]
    pub leave_output: bool,
    /// Type for output.weight (and for tied token embeddings).
    #[arg(long = "output-tensor-type")]
    pub output_type: Option<String>,
    /// Type for token_embd.weight.
    #[arg(long = "token-embedding-type")]
    pub embedding_type: Option<String>,
    /// Per-tensor type: PATTERN=TYPE, the pattern a regex searched in tensor names (repeatable).
    #[arg(long = "tensor-type", value_name = "PATTERN=TYPE")]
    pub tensor_types: Vec<String>,
    /// Importance matrix (from `slm imatrix` or llama-imatrix) to weight rounding errors.
    #[arg(long = "imatrix")]
    pub imatrix: Option<PathBuf>,
    /// Show the plan (types and sizes) without writing anything.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Print every tensor's conversion.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Threads for encoding (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
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
    /// Require `Authorization: Bearer <KEY>` on /v1/* requests (or set SLM_API_KEY, which `ps` does not show).
    #[arg(long = "api-key", value_name = "KEY", env = "SLM_API_KEY", hide_env_values = true)]
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
    /// Requests that may wait while all slots are generating; more get 503 + Retry-After.
    #[arg(long = "queue", default_value_t = 16)]
    pub queue: usize,
    /// Requests generated at once, and conversations whose KV cache is kept (each slot costs one
    /// context's KV memory; see `slm show`). Requests in flight share every decode step
    /// (continuous batching); a request continues in the free slot sharing its longest prompt prefix.
    #[arg(long = "slots", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub slots: u16,
    /// Also serve POST /v1/embeddings with this encoder (a bert GGUF or a Hugging Face directory).
    #[arg(long = "embedding-model")]
    pub embedding_model: Option<String>,
    #[command(flatten)]
    pub lora: LoraArgs,
}

/// `slm eval`
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Text file to evaluate on.
    pub file: PathBuf,
    /// The reference model (e.g. the F16/F32 source of a quantized candidate).
    #[arg(long = "reference", short = 'r')]
    pub reference: String,
    /// Candidate model(s); repeat -m to compare several against one reference run.
    #[arg(short = 'm', long = "model", required = true)]
    pub models: Vec<String>,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Tokens per chunk (like llama-perplexity's -c).
    #[arg(short = 'c', long = "ctx", default_value_t = 512)]
    pub ctx: usize,
    /// Prompt batch size.
    #[arg(short = 'b', long = "batch", default_value_t = 512)]
    pub batch: usize,
    /// Evaluate at most this many chunks.
    #[arg(long = "chunks", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunks: Option<u64>,
    /// Print the result as JSON.
    #[arg(long = "json")]
    pub json: bool,
}

/// `slm imatrix`
#[derive(Debug, Args)]
pub struct ImatrixArgs {
    /// Calibration text.
    pub file: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output file (GGUF imatrix layout, readable by llama-quantize too).
    #[arg(short = 'o', long = "output", default_value = "imatrix.gguf")]
    pub output: PathBuf,
    /// Process at most this many chunks.
    #[arg(long = "chunks", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunks: Option<u64>,
}

/// `slm fit`
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Model: a GGUF file path or a registry name.
    #[arg(default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Device: `auto` (measure this machine), a built-in profile name, or a profile JSON file.
    #[arg(long = "device", short = 'd', default_value = "auto")]
    pub device: String,
    /// Context length to budget for.
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Prompt batch size.
    #[arg(short = 'b', long = "batch", default_value_t = 256)]
    pub batch: usize,
    /// Predict for the model converted to this type (e.g. Q4_K_M).
    #[arg(long = "quant", short = 'q')]
    pub quant: Option<String>,
    /// Prompt length for the speed estimate.
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    pub n_prompt: usize,
    /// Generated tokens for the speed estimate.
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    pub n_gen: usize,
    /// Threads (for `--device auto`).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Print the result as JSON.
    #[arg(long = "json")]
    pub json: bool,
    /// Also print every quantization's prediction.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// List the built-in device profiles.
    #[arg(long = "list-devices")]
    pub list_devices: bool,
    /// With `--device auto`: skip calibrating the kernel probe on the model's own speed.
    #[arg(long = "no-calibrate")]
    pub no_calibrate: bool,
    /// Write the device profile used (e.g. the measured `auto` one) to this JSON file.
    #[arg(long = "save-profile")]
    pub save_profile: Option<PathBuf>,
}

/// `slm train`
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's TOML file ([model], [train], [optim], [schedule]).
    #[arg(long = "config")]
    pub config: PathBuf,
    /// Training text: a file, or a folder of .txt/.md files (one document per file).
    #[arg(long = "data")]
    pub data: PathBuf,
    /// Output folder (checkpoint, final model, metrics, plot).
    #[arg(long = "out")]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out (bit-for-bit the same as an uninterrupted run).
    #[arg(long = "resume")]
    pub resume: bool,
    /// Train this many steps in total instead of the config's `steps`.
    #[arg(long = "steps")]
    pub steps: Option<u64>,
    /// Tokenizer for a new model: a tokenizer.json (e.g. from `slm tokenizer train`) or a GGUF
    /// model whose vocabulary to use.
    #[arg(long = "tokenizer", conflicts_with = "init")]
    pub tokenizer: Option<PathBuf>,
    /// Fine-tune this GGUF model (its shape and tokenizer) instead of starting from scratch.
    #[arg(long = "init")]
    pub init: Option<PathBuf>,
    /// Threads (results are reproducible for a given thread count).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub distill: crate::cmd::distill::DistillArgs,
}

/// `slm tokenizer ...`
#[derive(Debug, Subcommand)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE tokenizer (GPT-2/SmolLM2 style) and write tokenizer.json.
    #[command(after_help = "Example:\n  slm tokenizer train --data texts/ --vocab-size 2048 --out tokenizer.json")]
    Train(TokenizerTrainArgs),
}

/// `slm tokenizer train`
#[derive(Debug, Args)]
pub struct TokenizerTrainArgs {
    /// Text: a file, or a folder of .txt/.md files.
    #[arg(long = "data")]
    pub data: PathBuf,
    /// Vocabulary size, special tokens included.
    #[arg(long = "vocab-size")]
    pub vocab_size: usize,
    /// Where to write tokenizer.json (tokenizer_config.json goes beside it).
    #[arg(long = "out")]
    pub out: PathBuf,
    /// Special tokens, comma-separated; the first ends documents.
    #[arg(long = "special-tokens", value_delimiter = ',', default_value = "<|endoftext|>,<|im_start|>,<|im_end|>")]
    pub special_tokens: Vec<String>,
    /// Pairs seen fewer times are not merged.
    #[arg(long = "min-frequency", default_value_t = 2)]
    pub min_frequency: u64,
}

/// `slm complete`
#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The text to continue (used as is: no chat template).
    pub text: String,
    /// Model: a GGUF file path or a registry name.
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Number of suggestions.
    #[arg(short = 'n', long = "suggestions", default_value_t = 3)]
    pub n: usize,
    /// Tokens per suggestion at most (a suggestion also ends at a line break or the end of a sentence).
    #[arg(long = "max-tokens", default_value_t = 5)]
    pub max_tokens: usize,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens.
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Print the result as JSON.
    #[arg(long = "json")]
    pub json: bool,
}

/// `slm summarize`
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Text file to summarize (`-` or nothing: standard input).
    pub file: Option<String>,
    /// Model: a GGUF file path or a registry name.
    #[arg(short = 'm', long = "model", default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Target length in sentences.
    #[arg(short = 's', long = "sentences", default_value_t = 3)]
    pub sentences: usize,
    /// Upper bound on tokens of each (partial and final) summary.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 160)]
    pub max_tokens: usize,
    /// Context size in tokens (the chunk size follows from it).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Temperature; 0 means greedy.
    #[arg(long = "temperature", visible_alias = "temp", default_value_t = 0.0)]
    pub temperature: f32,
    /// Penalise repeated tokens (1 = off).
    #[arg(long = "repeat-penalty", default_value_t = 1.15)]
    pub repeat_penalty: f32,
}

/// `slm classify`
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Texts to classify.
    pub texts: Vec<String>,
    /// Zero-shot: comma-separated labels (2 or more).
    #[arg(short = 'l', long = "labels")]
    pub labels: Option<String>,
    /// Zero-shot: the task, said to the model before the text.
    #[arg(long = "instruction", default_value = "Classify the following text.")]
    pub instruction: String,
    /// JSON Lines input, one object with a "text" (and optional "id") per line; prints one JSON line each.
    #[arg(long = "jsonl")]
    pub jsonl: Option<PathBuf>,
    /// Print JSON lines for positional texts too.
    #[arg(long = "json")]
    pub json: bool,
    /// Model: zero-shot, a GGUF chat model or registry name (default smollm2-135m-instruct); with
    /// --train/--head, the encoder (a bert GGUF or HF directory; default: the one the head was trained on).
    #[arg(short = 'm', long = "model")]
    pub model: Option<String>,
    /// Zero-shot with LoRA adapters applied (e.g. one trained by `slm finetune --lora` on labelled answers).
    #[command(flatten)]
    pub lora: LoraArgs,
    /// Trained mode: classify with this head (made by --train).
    #[arg(long = "head", conflicts_with_all = ["labels", "train"])]
    pub head: Option<PathBuf>,
    /// Train a head on labelled data (JSONL {"text","label"} or CSV/TSV with text,label columns); needs -m ENCODER and -o.
    #[arg(long = "train", conflicts_with = "labels")]
    pub train: Option<PathBuf>,
    /// Where --train writes the head (GGUF); its loss curves go next to it as .svg.
    #[arg(short = 'o', long = "out")]
    pub out: Option<PathBuf>,
    /// --train: hidden width of the head (0 = logistic regression).
    #[arg(long = "hidden", default_value_t = 256)]
    pub hidden: usize,
    /// --train: most epochs (early stopping on the validation split ends sooner).
    #[arg(long = "epochs", default_value_t = 100)]
    pub epochs: usize,
    /// --train: share of the data held out for validation / early stopping.
    #[arg(long = "val", default_value_t = 0.1)]
    pub val: f32,
    /// --train: learning rate.
    #[arg(long = "lr", default_value_t = 1e-3)]
    pub lr: f32,
    /// --train: seed of initialisation, split and shuffles.
    #[arg(long = "seed", default_value_t = 1)]
    pub seed: u64,
    /// Zero-shot: context size (longer texts keep their beginning).
    #[arg(short = 'c', long = "ctx", default_value_t = 1024)]
    pub ctx: usize,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}

/// Output format of `slm embed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedFormat {
    /// One JSON object: `{"model", "dim", "data": [{"index", "embedding"}]}`.
    Json,
    /// One JSON object per line: `{"index", "text", "embedding"}`.
    Jsonl,
    /// A NumPy `.npy` float32 array `[texts][dim]` (needs -o).
    Npy,
}

/// `slm embed`
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed.
    pub texts: Vec<String>,
    /// Encoder: a bert GGUF file or a Hugging Face model directory.
    #[arg(short = 'm', long = "model")]
    pub model: String,
    /// More texts, one per line (`-` reads standard input); blank lines are skipped.
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Output format.
    #[arg(long = "format", value_enum, default_value_t = EmbedFormat::Jsonl)]
    pub format: EmbedFormat,
    /// Write to this file (atomically) instead of standard output.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Texts per forward pass.
    #[arg(short = 'b', long = "batch", default_value_t = 32)]
    pub batch: usize,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Pooling: mean or cls (default: the model's).
    #[arg(long = "pooling")]
    pub pooling: Option<String>,
    /// Do not L2-normalise the vectors.
    #[arg(long = "no-normalize")]
    pub no_normalize: bool,
    /// Print timing as one JSON line on standard error: {"texts","tokens","seconds","texts_per_s"} (seconds exclude loading).
    #[arg(long = "stats-json")]
    pub stats_json: bool,
}

/// `slm similarity`
#[derive(Debug, Args)]
pub struct SimilarityArgs {
    /// Two or more texts (a matrix for more than two), or one query with --file.
    pub texts: Vec<String>,
    /// Encoder: a bert GGUF file or a Hugging Face model directory.
    #[arg(short = 'm', long = "model")]
    pub model: String,
    /// Rank this file's lines against the query.
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// How many ranked lines to print.
    #[arg(long = "top", default_value_t = 10)]
    pub top: usize,
    /// Threads for compute (default: number of cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
}
