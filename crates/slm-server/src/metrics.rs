//! Server metrics, rendered as Prometheus text at `GET /metrics`: HTTP requests by route and
//! status, token counters, queue depth, and latency histograms. Plain atomics; no extra crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last entry is +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        self.sum_micros
            .fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cum += c.load(Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cum}");
        }
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {cum}");
    }
}

/// All counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Responses by (route, status).
    http: Mutex<BTreeMap<(String, u16), u64>>,
    /// Prompt tokens of finished generations.
    pub prompt_tokens: AtomicU64,
    /// Prompt tokens whose KV entries were reused.
    pub reused_prompt_tokens: AtomicU64,
    /// Generated tokens.
    pub completion_tokens: AtomicU64,
    /// Generations cancelled because the client went away.
    pub cancelled: AtomicU64,
    /// Requests waiting in the queue.
    pub queue_depth: AtomicUsize,
    /// Requests being generated right now.
    pub active: AtomicUsize,
    /// Decode steps run (each feeds one token of every request in the batch).
    pub decode_steps: AtomicU64,
    /// Tokens fed by decode steps; divided by the steps, the mean batch size.
    pub decode_tokens: AtomicU64,
    /// Enqueue → last token.
    pub request_latency: Histogram,
    /// Enqueue → first token.
    pub time_to_first_token: Histogram,
    /// Time waiting in the queue.
    pub queue_wait: Histogram,
}

impl Metrics {
    /// Counts one HTTP response.
    pub fn count_http(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.http.lock() {
            *m.entry((route.to_string(), status)).or_insert(0) += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, loaded: bool, connections_open: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP slm_http_requests_total HTTP responses by route and status.\n# TYPE slm_http_requests_total counter");
        if let Ok(m) = self.http.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "slm_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let counters = [
            (
                "slm_prompt_tokens_total",
                "Prompt tokens of finished generations.",
                self.prompt_tokens.load(Relaxed),
            ),
            (
                "slm_prompt_tokens_reused_total",
                "Prompt tokens served from the KV cache.",
                self.reused_prompt_tokens.load(Relaxed),
            ),
            (
                "slm_completion_tokens_total",
                "Generated tokens.",
                self.completion_tokens.load(Relaxed),
            ),
            (
                "slm_requests_cancelled_total",
                "Generations stopped because the client disconnected.",
                self.cancelled.load(Relaxed),
            ),
            (
                "slm_decode_steps_total",
                "Batched decode steps (one token for every request generating).",
                self.decode_steps.load(Relaxed),
            ),
            (
                "slm_decode_tokens_total",
                "Tokens fed by decode steps (over slm_decode_steps_total: the mean batch size).",
                self.decode_tokens.load(Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        }
        let gauges = [
            (
                "slm_queue_depth",
                "Requests waiting for the worker.",
                self.queue_depth.load(Relaxed),
            ),
            (
                "slm_requests_active",
                "Requests being generated.",
                self.active.load(Relaxed),
            ),
            (
                "slm_model_loaded",
                "1 once the model is loaded.",
                usize::from(loaded),
            ),
            (
                "slm_connections_open",
                "Open HTTP connections.",
                connections_open,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        self.request_latency.render(
            &mut out,
            "slm_request_duration_seconds",
            "Time from enqueue to the last token.",
        );
        self.time_to_first_token.render(
            &mut out,
            "slm_time_to_first_token_seconds",
            "Time from enqueue to the first token.",
        );
        self.queue_wait.render(
            &mut out,
            "slm_queue_wait_seconds",
            "Time spent waiting in the queue.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_everything() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(300));
        h.observe(Duration::from_secs(1000));
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"0.005\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.5\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count 3\n"), "{s}");
    }

    #[test]
    fn render_lists_routes_and_gauges() {
        let m = Metrics::default();
        m.count_http("/v1/models", 200);
        m.count_http("/v1/models", 200);
        m.queue_depth.store(3, Relaxed);
        let s = m.render(true, 4);
        assert!(
            s.contains("slm_http_requests_total{route=\"/v1/models\",status=\"200\"} 2"),
            "{s}"
        );
        assert!(s.contains("slm_queue_depth 3"), "{s}");
        assert!(s.contains("slm_model_loaded 1"), "{s}");
        assert!(s.contains("slm_connections_open 4"), "{s}");
    }
}
