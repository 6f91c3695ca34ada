//! `slm run` and `slm chat` against llama.cpp's greedy continuations of the real model.

use crate::common::{assert_greedy_matches, first_chars, golden_greedy_text, golden_greedy_tokens, slm, slm_stdin, NEAR_TIE};
use std::path::Path;
use crate::model_or_skip;

const QUESTION: &str = "What is the capital of France?";

/// stdout without the final newline the CLI prints after the answer.
fn answer(stdout: &str) -> &str {
    stdout.strip_suffix('\n').unwrap_or(stdout)
}

#[test]
fn run_greedy_chat_matches_llama_cpp() {
    let m = model_or_skip!();
    // The CLI applies the chat template with the model's default system prompt: exactly the text
    // of the golden "chat" case.
    let golden = golden_greedy_tokens(Path::new(&m), "chat");
    let out = slm(&["run", "-m", &m, "--temp", "0", "-n", "24", "-c", "256", QUESTION]).ok();
    let matched = assert_greedy_matches(answer(&out.stdout), &golden);
    // Everything before llama.cpp's first near-tie must be reproduced.
    let first_tie = golden.iter().position(|(_, m)| *m < NEAR_TIE).unwrap_or(golden.len());
    assert!(matched >= first_tie, "only {matched} of the {first_tie} tokens before the first near-tie match");
    let text = golden_greedy_text("chat");
    assert!(out.stdout.starts_with(first_chars(&text, 12)), "{:?}", out.stdout);
    assert!(out.stdout.ends_with('\n'), "answer not newline-terminated: {:?}", out.stdout);
}

#[test]
fn run_raw_continues_prose() {
    let m = model_or_skip!();
    let golden = golden_greedy_tokens(Path::new(&m), "prose");
    let prompt = "The old lighthouse stood at the edge of the cliff, its white paint peeling in long strips. Every evening the keeper";
    let out = slm(&["run", "-m", &m, "--raw", "--temp", "0", "-n", "8", "-c", "128", prompt]).ok();
    let got = answer(&out.stdout);
    assert!(!got.trim().is_empty(), "raw mode produced nothing");
    // Raw mode feeds the prompt without a template: the same tokens as the golden "prose" case.
    let matched = assert_greedy_matches(got, &golden[..8]);
    assert!(matched >= 1, "raw continuation {got:?} does not start like llama.cpp's");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let m = model_or_skip!();
    let args = ["run", "-m", &m, "--seed", "7", "--temp", "0.8", "-n", "16", "-c", "128", "Tell me a story."];
    let a = slm(&args).ok();
    let b = slm(&args).ok();
    assert!(!answer(&a.stdout).trim().is_empty(), "sampling produced nothing");
    assert_eq!(a.stdout, b.stdout, "the same seed gave different output");
}

#[test]
fn stop_string_cuts_the_output_before_it() {
    let m = model_or_skip!();
    let args = ["run", "-m", m.as_str(), "--temp", "0", "-n", "24", "-c", "256"];
    let full = slm(&[&args[..], &[QUESTION]].concat()).ok();
    let full = answer(&full.stdout);
    // The third word of the greedy answer (cut where it first occurs).
    let stop = full.split_whitespace().nth(2).unwrap_or_else(|| panic!("greedy answer too short: {full:?}"));
    let at = full.find(stop).unwrap();
    let out = slm(&[&args[..], &["--stop", stop, QUESTION]].concat()).ok();
    let got = answer(&out.stdout);
    assert!(!got.contains(stop), "stop string {stop:?} was printed: {got:?}");
    assert_eq!(got, &full[..at], "output does not end right before the stop string {stop:?}");
    // Several stop strings: the earliest one wins.
    let first = full.split_whitespace().nth(1).unwrap();
    let out = slm(&[&args[..], &["--stop", stop, "--stop", first, QUESTION]].concat()).ok();
    assert_eq!(answer(&out.stdout), &full[..full.find(first).unwrap()]);
}

#[test]
fn prompt_from_stdin() {
    let m = model_or_skip!();
    let args = ["run", "-m", m.as_str(), "--temp", "0", "-n", "8", "-c", "128"];
    let from_arg = slm(&[&args[..], &[QUESTION]].concat()).ok();
    let out = slm_stdin(&[&args[..], &["-"]].concat(), QUESTION).ok();
    assert!(!answer(&out.stdout).is_empty(), "no answer for a prompt on stdin");
    assert_eq!(out.stdout, from_arg.stdout, "stdin prompt answered differently from the same prompt as an argument");
    // No prompt argument at all also reads stdin.
    let bare = slm_stdin(&args, QUESTION).ok();
    assert_eq!(bare.stdout, out.stdout);
}

#[test]
fn verbose_prints_statistics_to_stderr_only() {
    let m = model_or_skip!();
    let out = slm(&["run", "-m", &m, "--temp", "0", "-n", "4", "-c", "128", "-v", QUESTION]).ok();
    assert!(out.stderr.contains("prompt: 37 tokens"), "stats missing or wrong prompt length:\n{}", out.stderr);
    assert!(out.stderr.contains("generated: 4 tokens"), "stats missing:\n{}", out.stderr);
    assert!(!out.stdout.contains("tok/s"), "stats leaked into stdout:\n{}", out.stdout);
}

#[test]
fn generation_stops_cleanly_when_the_context_is_full() {
    let m = model_or_skip!();
    // The chat prompt is 37 tokens; a context of 40 leaves room for only a few.
    let out = slm(&["run", "-m", &m, "--temp", "0", "-n", "100", "-c", "40", "-v", QUESTION]).ok();
    assert!(out.stderr.contains("ContextFull"), "finish reason not reported:\n{}", out.stderr);
    let golden = golden_greedy_tokens(Path::new(&m), "chat");
    let got = answer(&out.stdout);
    assert!(!got.is_empty(), "nothing generated");
    assert!(assert_greedy_matches(got, &golden) <= 4, "more tokens than the context allows: {got:?}");
}

#[test]
fn chat_non_interactive_answers_each_line_and_resets() {
    let m = model_or_skip!();
    let args = ["chat", "-m", &m, "--temp", "0", "-n", "16", "-c", "256"];
    let out = slm_stdin(&args, "Hello\n/reset\nHi\n").ok();
    let answers: Vec<&str> = out.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(answers.len(), 2, "expected two answers:\n{}", out.stdout);
    // Not interactive: no prompt characters or banner on stderr.
    assert!(!out.stderr.contains("> "), "prompt shown although stdin is not a terminal:\n{}", out.stderr);
    // After /reset the second answer must be what a fresh conversation says to "Hi".
    let fresh = slm_stdin(&args, "Hi\n").ok();
    assert_eq!(answers[1], fresh.stdout.trim_end(), "/reset did not clear the conversation");
    // /exit ends the conversation; later lines are ignored.
    let exited = slm_stdin(&args, "Hello\n/exit\nHi\n").ok();
    let n = exited.stdout.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(n, 1, "lines after /exit were answered:\n{}", exited.stdout);
}

#[test]
fn chat_reports_a_conversation_that_outgrows_the_context() {
    let m = model_or_skip!();
    let out = slm_stdin(
        &["chat", "-m", &m, "--temp", "0", "-n", "16", "-c", "64"],
        // The first turn fits in 64 tokens; with its answer, the second (about 40 tokens) cannot.
        "Hi\nPlease tell me everything you know about the history, geography, culture, food, music and politics of France, Italy, Spain and Portugal.\nBye\n",
    )
    .ok();
    assert!(out.stderr.contains("no longer fits the context of 64"), "no context message:\n{}", out.stderr);
    // The overlong turn is dropped, not fatal: the first and the last line are both answered.
    let answers = out.stdout.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(answers, 2, "expected answers to `Hi` and `Bye`:\n{}", out.stdout);
}

fn fake_golden() -> Vec<(Vec<u8>, f64)> {
    vec![(b"Par".to_vec(), 1.0), (b"is".to_vec(), 0.1), (b" is".to_vec(), 2.0)]
}

#[test]
fn greedy_matcher_allows_divergence_only_at_near_ties() {
    let g = fake_golden();
    assert_eq!(assert_greedy_matches("Paris is", &g), 3);
    assert_eq!(assert_greedy_matches("Paris is nice", &g), 3);
    assert_eq!(assert_greedy_matches("Par", &g), 1); // shorter: no divergence
    assert_eq!(assert_greedy_matches("Parma", &g), 1); // token 1 is a near-tie
}

#[test]
#[should_panic(expected = "leaves llama.cpp's at token 0")]
fn greedy_matcher_rejects_divergence_at_a_clear_choice() {
    assert_greedy_matches("Lyon", &fake_golden());
}

#[test]
#[should_panic(expected = "leaves llama.cpp's at token 2")]
fn greedy_matcher_rejects_divergence_after_a_shared_near_tie() {
    assert_greedy_matches("Paris was", &fake_golden());
}
