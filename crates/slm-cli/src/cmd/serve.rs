//! `slm serve`: the OpenAI-compatible HTTP server. Binds first (so `/health` answers 503 while
//! the model loads), loads the model, then serves until Ctrl-C / SIGTERM, letting requests in
//! flight finish.

use crate::args::ServeArgs;
use crate::load;
use anyhow::{Context as _, Result};
use slm_server::{Engine, EngineOptions, Server, ServerConfig};

/// Runs the command.
pub fn run(args: ServeArgs) -> Result<()> {
    // An IPv6 literal needs brackets in `host:port`.
    let addr = if args.host.contains(':') {
        format!("[{}]:{}", args.host, args.port)
    } else {
        format!("{}:{}", args.host, args.port)
    };
    let config = ServerConfig {
        addr,
        api_key: args.api_key.clone(),
        queue_capacity: args.queue.max(1),
        handle_signals: true,
        ..ServerConfig::default()
    };
    let server = Server::start(config)?;
    let url = format!("http://{}", server.local_addr());
    if args.api_key.is_none() && !server.local_addr().ip().is_loopback() {
        eprintln!("warning: listening on a non-loopback address without --api-key; anyone who can reach {url} can use the model");
    }
    eprintln!("slm serve: listening on {url} (loading {} ...)", args.model);
    let loaded = load::load_with_adapters(&args.model, &args.lora.lora)?;
    let n_ctx = load::context_size(args.ctx, &loaded.model)?;
    let model_id = loaded
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.model.clone());
    let engine = Engine::new(
        loaded.model,
        loaded.tokenizer,
        loaded.template,
        load::pool(args.threads)?,
        EngineOptions {
            model_id: model_id.clone(),
            n_ctx,
            n_batch: args.batch.max(1),
            n_slots: usize::from(args.slots),
        },
    )
    .context("preparing the model for serving")?;
    server.install(engine, args.queue.max(1))?;
    if let Some(path) = &args.embedding_model {
        let embedder = slm_runtime::embed::Embedder::open(std::path::Path::new(path), load::threads(args.threads))
            .with_context(|| format!("loading the embedding model {path}"))?;
        let id = super::embed::model_name(path);
        eprintln!("embeddings: model '{id}' ({} dimensions) at {url}/v1/embeddings", embedder.dim());
        server.install_embeddings(slm_server::EmbeddingService::new(embedder, id))?;
    }
    eprintln!(
        "ready: model '{model_id}', context {n_ctx} tokens; OpenAI API at {url}/v1 — Ctrl-C stops"
    );
    server.wait()?;
    eprintln!("slm serve: stopped");
    Ok(())
}
