//! [`StopChecker`]: ends generation at user-given stop strings over streamed text.
//!
//! A stop string can arrive split over several tokens ("###" as "#" + "##"), so text that could
//! still become the start of a stop string is held back until it either completes one (and is
//! dropped with it) or cannot anymore (and is released).

/// What a piece of streamed text led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopStatus {
    /// Keep generating; `emit` is the text that is now safe to show (may be empty).
    Continue {
        /// Text to pass on.
        emit: String,
    },
    /// A stop string was completed: show `emit` (the text before it) and stop.
    Stopped {
        /// Text before the stop string.
        emit: String,
        /// Index of the matched stop string in the list given to [`StopChecker::new`].
        stop_index: usize,
    },
}

/// Watches streamed text for stop strings.
#[derive(Clone, Debug, Default)]
pub struct StopChecker {
    stops: Vec<String>,
    /// Text received but not yet released.
    held: String,
    /// The stop string that ended the stream, once one has.
    stopped: Option<usize>,
}

impl StopChecker {
    /// A checker for `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> StopChecker {
        StopChecker { stops, held: String::new(), stopped: None }
    }

    /// Whether there is anything to check for.
    pub fn is_empty(&self) -> bool {
        self.stops.iter().all(String::is_empty)
    }

    /// Adds streamed text. After a [`StopStatus::Stopped`], further text is ignored.
    pub fn push(&mut self, text: &str) -> StopStatus {
        if let Some(stop_index) = self.stopped {
            return StopStatus::Stopped { emit: String::new(), stop_index };
        }
        self.held.push_str(text);
        // Earliest complete stop string (ties: the first in the list).
        let found = self
            .stops
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|pos| (pos, i)))
            .min();
        if let Some((pos, stop_index)) = found {
            self.stopped = Some(stop_index);
            let emit = self.held.get(..pos).unwrap_or_default().to_string();
            self.held.clear();
            return StopStatus::Stopped { emit, stop_index };
        }
        let keep = self.partial_suffix_len();
        let split = self.held.len() - keep;
        let emit = self.held.get(..split).unwrap_or_default().to_string();
        self.held.replace_range(..split, "");
        StopStatus::Continue { emit }
    }

    /// Ends the stream: releases held-back text (it did not become a stop string).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Starts over for a new generation.
    pub fn reset(&mut self) {
        self.held.clear();
        self.stopped = None;
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string
    /// (on a character boundary).
    fn partial_suffix_len(&self) -> usize {
        let mut best = 0;
        for stop in self.stops.iter().filter(|s| !s.is_empty()) {
            // Candidate suffix starts, longest first; only char boundaries of `held`.
            let min_start = self.held.len().saturating_sub(stop.len().saturating_sub(1));
            for (start, _) in self.held.char_indices().filter(|(i, _)| *i >= min_start) {
                let suffix = self.held.get(start..).unwrap_or_default();
                if stop.starts_with(suffix) {
                    best = best.max(suffix.len());
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(s: &StopStatus) -> &str {
        match s {
            StopStatus::Continue { emit } | StopStatus::Stopped { emit, .. } => emit,
        }
    }

    #[test]
    fn stop_split_across_pushes() {
        let mut c = StopChecker::new(vec!["###".into()]);
        assert_eq!(c.push("Hello #"), StopStatus::Continue { emit: "Hello ".into() });
        assert_eq!(c.push("#"), StopStatus::Continue { emit: String::new() });
        assert_eq!(c.push("# tail"), StopStatus::Stopped { emit: String::new(), stop_index: 0 });
        assert_eq!(c.push("more"), StopStatus::Stopped { emit: String::new(), stop_index: 0 });
    }

    #[test]
    fn false_alarm_is_released() {
        let mut c = StopChecker::new(vec!["###".into()]);
        assert_eq!(emitted(&c.push("a ##")), "a ");
        assert_eq!(emitted(&c.push("x")), "##x");
        assert_eq!(emitted(&c.push("#")), "");
        assert_eq!(c.flush(), "#");
    }

    #[test]
    fn earliest_stop_wins_and_text_before_is_kept() {
        let mut c = StopChecker::new(vec!["END".into(), "\n\n".into()]);
        assert_eq!(c.push("one\n\ntwo END"), StopStatus::Stopped { emit: "one".into(), stop_index: 1 });
    }

    #[test]
    fn multibyte_boundaries_are_respected() {
        let mut c = StopChecker::new(vec!["éé".into()]);
        assert_eq!(emitted(&c.push("café")), "caf");
        assert_eq!(c.push("é!"), StopStatus::Stopped { emit: String::new(), stop_index: 0 });
        let mut c = StopChecker::new(vec!["👋x".into()]);
        assert_eq!(emitted(&c.push("a👋")), "a");
        assert_eq!(emitted(&c.push("y")), "👋y");
    }

    #[test]
    fn empty_stop_list_passes_everything() {
        let mut c = StopChecker::new(vec![String::new()]);
        assert!(c.is_empty());
        assert_eq!(emitted(&c.push("abc")), "abc");
        c.reset();
        assert_eq!(c.flush(), "");
    }
}
