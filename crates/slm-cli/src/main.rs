//! The `slm` command-line tool: parses arguments, calls the libraries, prints results.
//! Nothing else lives here.

// First, so its `outln!` macro is visible in every module below.
#[macro_use]
mod output;
mod args;
mod cmd;
mod load;
mod progress;
mod sink;

use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.mmap {
        load::set_residency(slm_format::Residency::Mapped);
    }
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Chat(a) => cmd::chat::run(a),
        Command::Pull(a) => cmd::models::pull(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::List => cmd::models::list(),
        Command::Show(a) => cmd::show::run(a),
        Command::Perplexity(a) => cmd::perplexity::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Quantize(a) => cmd::quantize::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Imatrix(a) => cmd::imatrix::run(a),
        Command::Prune(a) => cmd::prune::run(a),
        Command::Finetune(a) => cmd::finetune::run(a),
        Command::Fit(a) => cmd::fit::run(a),
        Command::Complete(a) => cmd::complete::run(a),
        Command::Summarize(a) => cmd::summarize::run(a),
        Command::Classify(a) => cmd::classify::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Similarity(a) => cmd::embed::similarity(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Tokenizer(args::TokenizerCommand::Train(a)) => cmd::tokenizer::train(a),
        Command::Lora(c) => cmd::lora::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`slm ... | head`): not an error.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
