//! The worker thread: owns the model's contexts (slots), takes jobs from a bounded queue and
//! streams each job's events back over a channel. Continuous batching: up to one request per
//! slot is in flight; every turn of the loop admits waiting jobs into free slots, feeds one
//! prompt chunk of each request still reading its prompt, then runs one decode step for all
//! the others together ([`slm_model::Model::forward_decode`]: each weight is read once for all
//! of them, and each request gets exactly the tokens it would get alone). A job whose channel
//! has closed (client gone) is cancelled before its next forward step.

use crate::engine::Engine;
use crate::error::ApiError;
use crate::generate::{Generation, Outcome, Output, Phase, Slot, TokenLogprob};
use crate::metrics::Metrics;
use crate::params::GenParams;
use crate::types::Usage;
use slm_runtime::FinishReason;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// What the worker reports about a job.
#[derive(Debug)]
pub enum Event {
    /// New text, with the log-probabilities of its tokens (empty unless asked for).
    Text(String, Vec<TokenLogprob>),
    /// The end: why, and the token counts.
    Done(FinishReason, Usage),
    /// The job failed.
    Error(ApiError),
}

/// One request for the worker.
pub struct Job {
    /// Prompt token ids (already checked to fit).
    pub prompt: Vec<u32>,
    /// Validated settings.
    pub params: GenParams,
    /// Tokens the job may generate.
    pub max_tokens: usize,
    /// Where events go; closed when the client is gone.
    pub events: UnboundedSender<Event>,
    /// When the job was queued.
    pub enqueued: Instant,
}

/// The sending side of the bounded job queue.
pub struct Queue {
    tx: Mutex<Option<SyncSender<Job>>>,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl Queue {
    /// Queues a job, or answers 503 (full, or shutting down).
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let guard = self
            .tx
            .lock()
            .map_err(|_| ApiError::Internal("job queue lock poisoned".into()))?;
        let Some(tx) = guard.as_ref() else {
            return Err(ApiError::ShuttingDown);
        };
        self.metrics.queue_depth.fetch_add(1, Relaxed);
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.metrics.queue_depth.fetch_sub(1, Relaxed);
                Err(match e {
                    TrySendError::Full(_) => ApiError::Busy {
                        capacity: self.capacity,
                        retry_after_s: 1,
                    },
                    TrySendError::Disconnected(_) => ApiError::ShuttingDown,
                })
            }
        }
    }

    /// Stops taking jobs; the worker finishes those already queued and exits.
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }
}

/// Starts the worker thread with a queue of `capacity` waiting jobs.
pub fn spawn(
    engine: Arc<Engine>,
    capacity: usize,
    metrics: Arc<Metrics>,
) -> Result<(Queue, JoinHandle<()>), ApiError> {
    let slots = (0..engine.opts.n_slots.max(1))
        .map(|_| Slot::new(&engine))
        .collect::<Result<Vec<_>, _>>()?;
    let (tx, rx) = sync_channel(capacity.max(1));
    let m = metrics.clone();
    let handle = std::thread::Builder::new()
        .name("slm-worker".into())
        .spawn(move || run(&engine, slots, &rx, &m))
        .map_err(|e| ApiError::Internal(format!("cannot start the worker thread: {e}")))?;
    Ok((
        Queue {
            tx: Mutex::new(Some(tx)),
            capacity: capacity.max(1),
            metrics,
        },
        handle,
    ))
}

/// Sends events to the request's channel.
struct ChannelOutput<'a> {
    events: &'a UnboundedSender<Event>,
}

impl Output for ChannelOutput<'_> {
    fn cancelled(&self) -> bool {
        self.events.is_closed()
    }

    fn emit(&mut self, text: String, logprobs: Vec<TokenLogprob>) -> bool {
        self.events.send(Event::Text(text, logprobs)).is_ok()
    }
}

/// The free slot for `prompt`: the one that keeps the most of its cache for it (a continuation
/// of its conversation, keeping at least 90% of what it holds); else a slot never used; else
/// the least recently used one (a new conversation evicts the oldest, not one that merely
/// shares a system prompt with it). Removed from `free`.
fn pick(free: &mut Vec<Slot>, prompt: &[u32]) -> Option<Slot> {
    let keeps_most =
        |s: &Slot| s.cached_len() > 0 && s.shared_prefix(prompt) * 10 >= s.cached_len() * 9;
    let index = free
        .iter()
        .enumerate()
        .filter(|(_, s)| keeps_most(s))
        .max_by_key(|(_, s)| s.shared_prefix(prompt))
        .map(|(i, _)| i)
        .or_else(|| free.iter().position(|s| s.last_used().is_none()))
        .or_else(|| {
            free.iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used())
                .map(|(i, _)| i)
        })?;
    Some(free.swap_remove(index))
}

/// A job being generated.
struct Active {
    /// Where the request's events go.
    events: UnboundedSender<Event>,
    /// When it was queued.
    enqueued: Instant,
    gen: Generation,
    /// Set when the request failed; it is answered with this error instead of its text's end.
    failed: Option<ApiError>,
}

impl Active {
    /// Stops the request with `e` (answered when it is retired).
    fn fail(&mut self, e: ApiError) {
        self.gen.cancel();
        self.failed = Some(e);
    }
}

/// Answers a finished request (its end or its error), records it, and returns its slot.
fn retire(a: Active, metrics: &Metrics) -> Slot {
    metrics.active.fetch_sub(1, Relaxed);
    let Active {
        events,
        enqueued,
        gen,
        failed,
    } = a;
    if let Some(e) = failed {
        // The client may be gone; nothing to do then.
        let _ = events.send(Event::Error(e));
        return gen.fail();
    }
    let mut out = ChannelOutput { events: &events };
    let (slot, o): (Slot, Outcome) = gen.finish(&mut out);
    metrics.prompt_tokens.fetch_add(o.n_prompt as u64, Relaxed);
    metrics
        .reused_prompt_tokens
        .fetch_add(o.n_reused as u64, Relaxed);
    metrics
        .completion_tokens
        .fetch_add(o.n_generated as u64, Relaxed);
    metrics.request_latency.observe(enqueued.elapsed());
    if let Some(t) = o.first_token {
        metrics
            .time_to_first_token
            .observe(t.duration_since(enqueued));
    }
    if o.finish == FinishReason::Cancelled {
        metrics.cancelled.fetch_add(1, Relaxed);
    }
    let usage = Usage {
        prompt_tokens: o.n_prompt,
        completion_tokens: o.n_generated,
        total_tokens: o.n_prompt + o.n_generated,
    };
    let _ = events.send(Event::Done(o.finish, usage));
    slot
}

/// The worker loop; returns when the queue is closed and every request has finished.
fn run(engine: &Engine, mut free: Vec<Slot>, rx: &Receiver<Job>, metrics: &Metrics) {
    let n_slots = free.len();
    let mut batch = match engine.model.new_decode_batch(n_slots, engine.opts.n_ctx) {
        Ok(b) => b,
        Err(e) => {
            // Cannot happen for a valid engine; answer every job rather than hang them.
            while let Ok(job) = rx.recv() {
                metrics.queue_depth.fetch_sub(1, Relaxed);
                let _ = job
                    .events
                    .send(Event::Error(ApiError::Internal(e.to_string())));
            }
            return;
        }
    };
    let mut active: Vec<Active> = Vec::with_capacity(n_slots);
    let mut closed = false;
    loop {
        // Admit waiting jobs into free slots; block only when there is nothing to do.
        while !closed && !free.is_empty() {
            let next = if active.is_empty() {
                rx.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                rx.try_recv()
            };
            match next {
                Ok(job) => admit(engine, job, &mut free, &mut active, metrics),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => closed = true,
            }
        }
        if active.is_empty() {
            if closed {
                return;
            }
            continue;
        }
        // Requests reading their prompt: one chunk each.
        for a in active
            .iter_mut()
            .filter(|a| a.gen.phase() == Phase::Prefill)
        {
            let mut out = ChannelOutput { events: &a.events };
            if let Err(e) = a.gen.prefill_step(engine, &mut out) {
                a.fail(e);
            }
        }
        // Clients gone: no more steps for them.
        for a in active
            .iter_mut()
            .filter(|a| matches!(a.gen.phase(), Phase::Decode(_)))
        {
            if a.events.is_closed() {
                a.gen.cancel();
            }
        }
        let n = decode_step(engine, &mut batch, &mut active);
        if n > 0 {
            metrics.decode_steps.fetch_add(1, Relaxed);
            metrics.decode_tokens.fetch_add(n as u64, Relaxed);
        }
        // Hand finished requests their last events and their slots back.
        let mut i = 0;
        while i < active.len() {
            if matches!(active[i].gen.phase(), Phase::Finished(_)) {
                let a = active.swap_remove(i);
                free.push(retire(a, metrics));
            } else {
                i += 1;
            }
        }
    }
}

/// Starts a job in the slot that suits it (or answers its error).
fn admit(
    engine: &Engine,
    job: Job,
    free: &mut Vec<Slot>,
    active: &mut Vec<Active>,
    metrics: &Metrics,
) {
    let Job {
        prompt,
        params,
        max_tokens,
        events,
        enqueued,
    } = job;
    metrics.queue_depth.fetch_sub(1, Relaxed);
    metrics.queue_wait.observe(enqueued.elapsed());
    if events.is_closed() {
        metrics.cancelled.fetch_add(1, Relaxed);
        return;
    }
    let Some(slot) = pick(free, &prompt) else {
        let _ = events.send(Event::Error(ApiError::Internal("no free slot".into())));
        return;
    };
    match Generation::start(slot, engine, prompt, params, max_tokens) {
        Ok(gen) => {
            metrics.active.fetch_add(1, Relaxed);
            active.push(Active {
                events,
                enqueued,
                gen,
                failed: None,
            });
        }
        Err((slot, e)) => {
            free.push(slot);
            let _ = events.send(Event::Error(e));
        }
    }
}

/// One decode step for every request that has a sampled token to feed, all in one batch;
/// returns how many tokens it fed.
fn decode_step(
    engine: &Engine,
    batch: &mut slm_model::DecodeBatch,
    active: &mut [Active],
) -> usize {
    let mut tokens = Vec::with_capacity(active.len());
    let mut ctxs = Vec::with_capacity(active.len());
    for a in active.iter_mut() {
        if let Phase::Decode(id) = a.gen.phase() {
            tokens.push(id);
            ctxs.push(a.gen.context());
        }
    }
    let n = tokens.len();
    if n == 0 {
        return 0;
    }
    let v = engine.model.config().n_vocab;
    let logits = match engine
        .model
        .forward_decode(batch, &engine.pool, &mut ctxs, &tokens)
    {
        Ok(l) => l,
        Err(e) => {
            // Not caused by any one request (their sizes were checked); fail them all.
            let msg = e.to_string();
            drop(ctxs);
            for a in active
                .iter_mut()
                .filter(|a| matches!(a.gen.phase(), Phase::Decode(_)))
            {
                a.fail(ApiError::Internal(msg.clone()));
            }
            return 0;
        }
    };
    drop(ctxs);
    let decoding = active
        .iter_mut()
        .filter(|a| matches!(a.gen.phase(), Phase::Decode(_)));
    for (a, row) in decoding.zip(logits.chunks_exact(v)) {
        let mut out = ChannelOutput { events: &a.events };
        if let Err(e) = a.gen.after_decode(engine, row, &mut out) {
            a.fail(e);
        }
    }
    n
}
