//! `slm run`: one prompt, one streamed answer.

use super::{generate_options, open_session, print_stats};
use crate::args::RunArgs;
use crate::sink::StdoutSink;
use anyhow::{Context, Result};
use slm_runtime::{encode_chat, ChatMessage};
use std::io::Read;

/// Runs the command.
pub fn run(args: RunArgs) -> Result<()> {
    let prompt = match args.prompt.as_deref() {
        Some(p) if p != "-" => p.to_string(),
        _ => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the prompt from stdin")?;
            s
        }
    };
    let (loaded, mut session) = open_session(&args.model, &args.lora.lora)?;
    let ids = if args.raw {
        loaded.tokenizer.encode_prompt(&prompt, false)?
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new("system", system.clone()));
        }
        messages.push(ChatMessage::new("user", prompt));
        encode_chat(&loaded.tokenizer, &loaded.template, &messages, true)?
    };
    let stats = session.generate(&ids, &generate_options(&args.sampling), &mut StdoutSink::new())?;
    outln!();
    if args.verbose {
        print_stats(&stats);
    }
    Ok(())
}
