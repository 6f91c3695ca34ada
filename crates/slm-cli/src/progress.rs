//! A terminal progress bar for downloads (indicatif), fed by the hub's progress callbacks.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Draws one bar per transfer on stderr; hidden automatically when stderr is not a terminal.
#[derive(Default)]
pub struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl slm_hub::Progress for BarProgress {
    fn start(&self, what: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_string());
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Ok(slot) = self.bar.lock() {
            if let Some(bar) = slot.as_ref() {
                bar.inc(bytes);
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }

    fn message(&self, msg: &str) {
        match self.bar.lock().ok().and_then(|slot| slot.clone()) {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}
