//! `slm chat`: an interactive multi-turn conversation. The whole history is re-rendered through
//! the chat template each turn; the session reuses the KV cache of the common prefix, so only the
//! new turn is processed.

use super::run::output_constraint;
use super::{generate_options, open_session, print_stats};
use crate::args::ChatArgs;
use crate::sink::StdoutSink;
use anyhow::Result;
use slm_runtime::{encode_chat, ChatMessage, Constraint, RuntimeError, StringSink, TokenSink};
use std::io::{BufRead, IsTerminal, Write};

/// Streams to stdout and keeps a copy for the history.
struct TeeSink {
    out: StdoutSink,
    copy: StringSink,
}

impl TokenSink for TeeSink {
    fn on_token(&mut self, text: &str) -> Result<bool, RuntimeError> {
        self.copy.on_token(text)?;
        self.out.on_token(text)
    }
}

/// Runs the command.
pub fn run(args: ChatArgs) -> Result<()> {
    let (loaded, mut session) = open_session(&args.model, &args.lora.lora)?;
    let opts = generate_options(&args.sampling);
    let constrained = output_constraint(&args.constrain, &loaded)?;
    let interactive = std::io::stdin().is_terminal();
    let system: Vec<ChatMessage> = args.system.iter().map(|s| ChatMessage::new("system", s.clone())).collect();
    let mut messages = system.clone();
    if interactive {
        eprintln!("Chatting with {} — /reset starts over, /exit or Ctrl-D leaves.", loaded.path.display());
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush().ok();
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let input = line.trim();
        match input {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = system.clone();
                session.reset();
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", input));
        let ids = match encode_chat(&loaded.tokenizer, &loaded.template, &messages, true) {
            Ok(ids) if ids.len() < session.n_ctx() => ids,
            Ok(ids) => {
                eprintln!("The conversation ({} tokens) no longer fits the context of {}; use /reset.", ids.len(), session.n_ctx());
                messages.pop();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut sink = TeeSink { out: StdoutSink::new(), copy: StringSink::default() };
        let stats = match &constrained {
            // Every answer is one value of the schema.
            Some((env, spec)) => {
                let mut c = Constraint::new(env, spec)?;
                session.generate_constrained(&ids, &opts, Some(&mut c), &mut sink)?
            }
            None => session.generate(&ids, &opts, &mut sink)?,
        };
        outln!();
        if args.verbose {
            print_stats(&stats);
        }
        messages.push(ChatMessage::new("assistant", sink.copy.text.trim().to_string()));
    }
    Ok(())
}
