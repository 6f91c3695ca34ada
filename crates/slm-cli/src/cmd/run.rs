//! `slm run`: one prompt, one streamed answer.

use super::{generate_options, open_session, print_stats};
use crate::args::{ConstrainArgs, RunArgs};
use crate::load::Loaded;
use crate::sink::StdoutSink;
use anyhow::{bail, Context, Result};
use slm_runtime::constrain::MAX_SPEC_BYTES;
use slm_runtime::{encode_chat, ChatMessage, Constraint, ConstraintSpec, TokenEnv};
use std::io::Read;

/// What `--json` / `--json-schema` ask for: the model's token table and the spec (`None`: free text).
pub(crate) fn output_constraint(args: &ConstrainArgs, loaded: &Loaded) -> Result<Option<(TokenEnv, ConstraintSpec)>> {
    let spec = match (&args.json_schema, args.json) {
        (Some(path), _) => {
            let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
            if len > MAX_SPEC_BYTES as u64 {
                bail!("{} is {len} bytes; a JSON schema may have at most {MAX_SPEC_BYTES}", path.display());
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let spec = ConstraintSpec::json_schema_str(&text).with_context(|| format!("in {}", path.display()))?;
            spec.validate().with_context(|| format!("in {}", path.display()))?;
            spec
        }
        (None, true) => ConstraintSpec::JsonObject,
        (None, false) => return Ok(None),
    };
    let env = TokenEnv::new(loaded.tokenizer.clone(), loaded.model.config().n_vocab)?;
    Ok(Some((env, spec)))
}

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
    let opts = generate_options(&args.sampling);
    let stats = match output_constraint(&args.constrain, &loaded)? {
        Some((env, spec)) => {
            let mut c = Constraint::new(&env, &spec)?;
            session.generate_constrained(&ids, &opts, Some(&mut c), &mut StdoutSink::new())?
        }
        None => session.generate(&ids, &opts, &mut StdoutSink::new())?,
    };
    outln!();
    if args.verbose {
        print_stats(&stats);
    }
    Ok(())
}
