//! `--device auto`: measure this machine's kernels for a few seconds and describe it as a
//! [`DeviceProfile`]. Every type is timed on matrices of the model's own shapes, called the way a
//! forward pass calls them (Q/K/V and gate/up fused, one call per group): the generation rate of a
//! type depends on its row length and on how many pool jobs a layer takes, not only on its bytes
//! (F16 streamed 2× faster as 1024-wide rows of one big matrix than through SmolLM2's 576-wide
//! layers). Generation streams weights from memory, so it runs over enough copies of a layer to
//! exceed the last-level cache; prompts are compute-bound, so they run one layer on a prompt-sized
//! batch (the VNNI kernel repacks weights per call, which a short batch would overstate).

use super::footprint::Footprint;
use super::profile::DeviceProfile;
use crate::error::RuntimeError;
use slm_format::GgmlType;
use slm_kernels::quant::quantize_row;
use slm_kernels::{matmul, matmul_many, Pool, QMatrix, Scratch};
use slm_model::quantize::WRITABLE_TYPES;
use std::collections::BTreeMap;
use std::time::Instant;

/// Least weight bytes streamed per generation measurement: well above last-level caches (32 MiB
/// here). A type streams as many bytes as the model would in that type (see [`stream_bytes`]).
const DECODE_BYTES: usize = 128 << 20;
/// Most weight bytes streamed per generation measurement (and at most a quarter of the memory).
const MAX_DECODE_BYTES: usize = 1 << 30;
/// Tokens of the prompt-rate measurement: one `slm bench` pp512 batch.
const PROMPT_TOKENS: usize = 512;
/// Timed prompt rounds over all types (after one warm-up round).
const PROMPT_ROUNDS: usize = 2;
/// Timed generation passes per type (after one warm-up pass).
const DECODE_RUNS: usize = 7;
/// The layer used when a model has no recognisable block (SmolLM2-135M's shapes).
const FALLBACK_LAYER: &[&[(usize, usize)]] =
    &[&[(576, 576), (192, 576), (192, 576)], &[(576, 576)], &[(1536, 576), (1536, 576)], &[(576, 1536)]];

/// One forward-pass call: matrices (rows, cols) multiplied by the same activations.
type Group = Vec<(usize, usize)>;

/// The matrix products of one block of `fp`, grouped as the forward pass fuses them.
pub(crate) fn layer_groups(fp: &Footprint) -> Vec<Group> {
    let shape = |k: &str| {
        fp.block_linears.iter().find(|l| l.name.starts_with("blk.0.") && l.name.contains(k)).map(|l| (l.rows, l.cols))
    };
    let groups: Vec<Group> =
        [&["attn_q.", "attn_k.", "attn_v."][..], &["attn_output."], &["ffn_gate.", "ffn_up."], &["ffn_down."]]
            .iter()
            .map(|keys| keys.iter().filter_map(|k| shape(k)).collect::<Group>())
            .filter(|g| !g.is_empty())
            .collect();
    if groups.is_empty() {
        FALLBACK_LAYER.iter().map(|g| g.to_vec()).collect()
    } else {
        groups
    }
}

/// Weight bytes of the probe, held as `Model::load` holds a file's (slm-format's `Residency`):
/// anonymous memory that asks for transparent huge pages on Linux, so the generation rates see
/// the model's TLB behaviour (huge pages made generation 7–15% faster); a heap buffer where such
/// memory cannot be had.
enum WeightBuf {
    Huge(memmap2::MmapMut),
    Heap(Vec<u8>),
}

impl WeightBuf {
    /// `len` zero bytes.
    fn zeroed(len: usize) -> WeightBuf {
        match memmap2::MmapMut::map_anon(len) {
            Ok(mem) => {
                // Advice is a hint: without THP the memory still works, only with small pages.
                #[cfg(target_os = "linux")]
                let _ = mem.advise(memmap2::Advice::HugePage);
                WeightBuf::Huge(mem)
            }
            Err(_) => WeightBuf::Heap(vec![0; len]),
        }
    }
}

impl std::ops::Deref for WeightBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            WeightBuf::Huge(m) => m,
            WeightBuf::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for WeightBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            WeightBuf::Huge(m) => m,
            WeightBuf::Heap(v) => v,
        }
    }
}

/// `rows × cols` random values in `dtype` (64 distinct rows, tiled).
fn matrix_bytes(dtype: GgmlType, rows: usize, cols: usize) -> Result<WeightBuf, RuntimeError> {
    let row_bytes = dtype.row_bytes(cols as u64).unwrap_or(0) as usize;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut tile = vec![0u8; 64 * row_bytes];
    let mut row = vec![0f32; cols];
    for dst in tile.chunks_exact_mut(row_bytes.max(1)) {
        for v in row.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *v = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        quantize_row(dtype, &row, dst).map_err(slm_model::ModelError::from)?;
    }
    let mut out = WeightBuf::zeroed(rows * row_bytes);
    for chunk in out.chunks_mut(tile.len().max(1)) {
        chunk.copy_from_slice(&tile[..chunk.len()]);
    }
    Ok(out)
}

/// Fastest of `reps` runs of `f`, in seconds: the run least disturbed by other processes, which is
/// what the kernels do on an otherwise idle machine.
fn best_secs(reps: usize, mut f: impl FnMut() -> Result<(), RuntimeError>) -> Result<f64, RuntimeError> {
    f()?; // warm-up: page in, grow scratch
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    Ok(t.into_iter().fold(f64::INFINITY, f64::min))
}

fn kernel_err(e: slm_kernels::KernelError) -> RuntimeError {
    RuntimeError::Model(e.into())
}

/// `copies` layers of `dtype` weights in the model's shapes: per group, per matrix, one buffer
/// holding every copy back to back.
struct Layers {
    dtype: GgmlType,
    groups: Vec<Vec<(usize, usize, WeightBuf)>>,
    copies: usize,
    bytes: usize,
}

impl Layers {
    fn new(dtype: GgmlType, groups: &[Group], copies: usize) -> Result<Layers, RuntimeError> {
        // Widths rounded up to the type's block (576-wide rows cannot be K-quants; a file never
        // holds such a tensor, but the probe still needs a rate for the type).
        let bs = dtype.block_size().max(1);
        let mut bytes = 0;
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut mats = Vec::with_capacity(g.len());
            for &(rows, cols) in g {
                let cols = cols.div_ceil(bs) * bs;
                let data = matrix_bytes(dtype, rows * copies, cols)?;
                bytes += data.len();
                mats.push((rows, cols, data));
            }
            out.push(mats);
        }
        Ok(Layers { dtype, groups: out, copies, bytes })
    }

    fn calls(&self) -> usize {
        self.groups.len() * self.copies
    }

    /// Runs every layer copy on `n` tokens of `x`, as the forward pass calls the kernels.
    fn run(
        &self,
        pool: &Pool,
        x: &[f32],
        n: usize,
        out: &mut [Vec<f32>; 3],
        s: &mut Scratch,
    ) -> Result<(), RuntimeError> {
        for copy in 0..self.copies {
            for g in &self.groups {
                let mut ws = Vec::with_capacity(g.len());
                for (rows, cols, data) in g {
                    let rb = data.len() / (rows * self.copies).max(1);
                    let bytes = data.get(copy * rows * rb..(copy + 1) * rows * rb).unwrap_or(&[]);
                    ws.push(QMatrix::new(self.dtype, *rows, *cols, bytes).map_err(kernel_err)?);
                }
                let cols = ws.first().map_or(0, |w| w.cols);
                let x = x.get(..n * cols).unwrap_or(&[]);
                for (o, w) in out.iter_mut().zip(&ws) {
                    o.resize(n * w.rows, 0.0);
                }
                let [o0, o1, o2] = out;
                match ws.as_slice() {
                    [a] => matmul(pool, a, x, n, o0, s),
                    [a, b] => matmul_many(pool, [a, b], x, n, [o0, o1], s),
                    [a, b, c] => matmul_many(pool, [a, b, c], x, n, [o0, o1, o2], s),
                    more => more.iter().try_for_each(|w| matmul(pool, w, x, n, &mut o0[..n * w.rows], s)),
                }
                .map_err(kernel_err)?;
            }
        }
        Ok(())
    }
}

/// Measures this machine with `pool` on `fp`'s layer shapes and returns its profile. Takes a few
/// seconds.
pub fn measure(
    pool: &Pool,
    fp: &Footprint,
    memory_bytes: u64,
    runtime_bytes: u64,
) -> Result<DeviceProfile, RuntimeError> {
    let sizes = Sizes { decode_bytes: DECODE_BYTES, prompt_tokens: PROMPT_TOKENS };
    measure_sized(pool, fp, memory_bytes, runtime_bytes, sizes)
}

/// Bytes to stream when measuring `dtype`'s generation rate: what one token of `fp` reads if all
/// its weights were of `dtype`, at least `least` and at most [`MAX_DECODE_BYTES`] or a quarter of
/// `memory_bytes`. A fixed 128 MiB measured F32 at 38–44 GB/s where SmolLM2's 540 MB of F32
/// weights stream at ~33 GB/s (part of a pass that small still hits the 32 MiB L3 cache), so
/// F32 generation was predicted 1.2–1.4× too fast.
fn stream_bytes(fp: &Footprint, dtype: GgmlType, least: usize, memory_bytes: u64) -> usize {
    let weights: usize =
        fp.block_linears.iter().chain(std::iter::once(&fp.output)).map(|l| l.rows.saturating_mul(l.cols)).sum();
    let model = (weights as f64 * dtype.bits_per_weight() / 8.0) as usize;
    let cap = MAX_DECODE_BYTES.min(usize::try_from(memory_bytes / 4).unwrap_or(usize::MAX));
    model.max(least).min(cap.max(least))
}

/// How much work each measurement does (smaller in tests).
#[derive(Clone, Copy)]
struct Sizes {
    decode_bytes: usize,
    prompt_tokens: usize,
}

fn measure_sized(
    pool: &Pool,
    fp: &Footprint,
    memory_bytes: u64,
    runtime_bytes: u64,
    sizes: Sizes,
) -> Result<DeviceProfile, RuntimeError> {
    let Sizes { decode_bytes, prompt_tokens } = sizes;
    let groups = layer_groups(fp);
    // Widest row, rounded up to a K-quant block; at least the 1024 columns of the job-overhead
    // matmul below.
    let widest = groups.iter().flatten().map(|m| m.1).max().unwrap_or(0);
    let max_cols = (widest.div_ceil(256) * 256).max(1024);
    let x: Vec<f32> = (0..prompt_tokens * max_cols).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
    let mut scratch = Scratch::new();
    let mut out: [Vec<f32>; 3] = Default::default();

    // Pool job overhead: a matmul too small to cost anything but the fork-join.
    let data = matrix_bytes(GgmlType::Q8_0, 64, 1024)?;
    let w = QMatrix::new(GgmlType::Q8_0, 64, 1024, &data).map_err(kernel_err)?;
    let mut small = vec![0f32; 64];
    let job = best_secs(201, || matmul(pool, &w, &x[..1024], 1, &mut small, &mut scratch).map_err(kernel_err))?;

    // Prompt rates in rounds over all types, fastest round kept per type: a burst of other work
    // on a shared machine then slows one round of every type rather than every round of one
    // type, so the ratios between types (what calibration keeps) survive it.
    let singles: Vec<Layers> = WRITABLE_TYPES.iter().map(|&t| Layers::new(t, &groups, 1)).collect::<Result<_, _>>()?;
    let mut prompt_secs = vec![f64::INFINITY; singles.len()];
    scratch.set_prompt(true);
    for round in 0..=PROMPT_ROUNDS {
        for (i, one) in singles.iter().enumerate() {
            let t = Instant::now();
            one.run(pool, &x, prompt_tokens, &mut out, &mut scratch)?;
            if round > 0 {
                prompt_secs[i] = prompt_secs[i].min(t.elapsed().as_secs_f64());
            }
        }
    }
    scratch.set_prompt(false);
    // Generation: a pass takes ~10 ms, so many short runs of one type find the quiet moments;
    // one copy at a time (all types' copies would take 1.7 GB).
    let mut decode_secs = vec![f64::INFINITY; singles.len()];
    let mut streamed = vec![0usize; singles.len()];
    let mut decode_calls = vec![0usize; singles.len()];
    for (i, one) in singles.iter().enumerate() {
        let bytes = stream_bytes(fp, one.dtype, decode_bytes, memory_bytes);
        let all = Layers::new(one.dtype, &groups, bytes.div_ceil(one.bytes.max(1)))?;
        decode_secs[i] = best_secs(DECODE_RUNS, || all.run(pool, &x, 1, &mut out, &mut scratch))?;
        (streamed[i], decode_calls[i]) = (all.bytes, all.calls());
    }
    let (mut decode, mut prompt) = (BTreeMap::new(), BTreeMap::new());
    for (i, one) in singles.iter().enumerate() {
        let flops: f64 = one.groups.iter().flatten().map(|m| 2.0 * (m.0 * m.1 * prompt_tokens) as f64).sum();
        prompt.insert(one.dtype.name().to_string(), (flops / prompt_secs[i] / 1e9 * 10.0).round() / 10.0);
        // The predictor adds the fork-joins itself (`job_overhead_us`), so leave them out here.
        let secs = decode_secs[i];
        let streaming = (secs - decode_calls[i] as f64 * job).max(secs * 0.5);
        decode.insert(one.dtype.name().to_string(), (streamed[i] as f64 / streaming / 1e9 * 100.0).round() / 100.0);
    }
    decode.insert("default".into(), decode.get("Q4_0").copied().unwrap_or(1.0));
    prompt.insert("default".into(), prompt.get("Q4_0").copied().unwrap_or(1.0));
    let attention = prompt.get("F32").copied().unwrap_or(1.0);
    Ok(DeviceProfile {
        name: "auto".into(),
        description: format!("this machine, measured with {} threads", pool.n_threads()),
        memory_bytes,
        address_space_bytes: None,
        threads: pool.n_threads(),
        decode_gbps: decode,
        prompt_gflops: prompt,
        attention_gflops: attention,
        job_overhead_us: (job * 1e6 * 10.0).round() / 10.0,
        // Work outside the matmuls is not probed: calibration on a real model fits it.
        gen_block_us: 0.0,
        prompt_block_us: 0.0,
        runtime_bytes,
        source: "measured by `slm fit --device auto` (kernel probe)".into(),
    })
}

/// The probe's layers of one type, kept to time the machine again later: calibration runs them
/// next to the model, so that the model's speed is compared with the kernels' speed *at the same
/// moment*. On a shared machine another process can halve both for a while (every type's time
/// doubled in one hand-run check); without this, that slowdown would be fitted as per-token work.
pub(crate) struct Yardstick {
    one: Layers,
    all: Layers,
    x: Vec<f32>,
    prompt_tokens: usize,
    scratch: Scratch,
    out: [Vec<f32>; 3],
}

impl Yardstick {
    /// The probe's prompt layer and generation layers of `dtype` in `fp`'s shapes.
    pub(crate) fn new(fp: &Footprint, dtype: GgmlType) -> Result<Yardstick, RuntimeError> {
        Yardstick::sized(fp, dtype, Sizes { decode_bytes: DECODE_BYTES, prompt_tokens: PROMPT_TOKENS })
    }

    fn sized(fp: &Footprint, dtype: GgmlType, sizes: Sizes) -> Result<Yardstick, RuntimeError> {
        let groups = layer_groups(fp);
        let one = Layers::new(dtype, &groups, 1)?;
        // The bytes [`measure`] streamed for this type (its memory cap only lowers huge models'
        // streams, and calibration runs next to the model, which is in memory anyway).
        let bytes = stream_bytes(fp, dtype, sizes.decode_bytes, u64::MAX);
        let all = Layers::new(dtype, &groups, bytes.div_ceil(one.bytes.max(1)))?;
        let widest = groups.iter().flatten().map(|m| m.1).max().unwrap_or(0).div_ceil(256) * 256;
        let prompt_tokens = sizes.prompt_tokens;
        let x = (0..prompt_tokens * widest).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        Ok(Yardstick { one, all, x, prompt_tokens, scratch: Scratch::new(), out: Default::default() })
    }

    /// Seconds `dev` says these layers take: one prompt batch, one generation pass (what
    /// [`measure`] timed when it made `dev`).
    pub(crate) fn predicted(&self, dev: &DeviceProfile) -> (f64, f64) {
        let flops: f64 = self.one.groups.iter().flatten().map(|m| 2.0 * (m.0 * m.1 * self.prompt_tokens) as f64).sum();
        let jobs = self.all.calls() as f64 * dev.job_overhead_us * 1e-6;
        (
            flops / dev.prompt_flops_per_sec(self.one.dtype),
            self.all.bytes as f64 / dev.decode_bytes_per_sec(self.one.dtype) + jobs,
        )
    }

    /// Seconds of the fastest of 3 prompt batches and of 3 generation passes, now.
    pub(crate) fn time(&mut self, pool: &Pool) -> Result<(f64, f64), RuntimeError> {
        let Yardstick { one, all, x, prompt_tokens, scratch, out } = self;
        // A layer's prompt batch takes only ~10 ms for the small types: keep the fastest of 3.
        scratch.set_prompt(true);
        let mut prompt = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            one.run(pool, x, *prompt_tokens, out, scratch)?;
            prompt = prompt.min(t.elapsed().as_secs_f64());
        }
        scratch.set_prompt(false);
        let mut decode = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            all.run(pool, x, 1, out, scratch)?;
            decode = decode.min(t.elapsed().as_secs_f64());
        }
        Ok((prompt, decode))
    }
}

/// Seconds of one one-token product by a `rows × cols` matrix of `dtype` (for hand-run checks).
#[cfg(test)]
pub(crate) fn time_head(pool: &Pool, dtype: GgmlType, rows: usize, cols: usize) -> Result<f64, RuntimeError> {
    let layers = Layers::new(dtype, &[vec![(rows, cols)]], 1)?;
    let x = vec![0.25f32; cols.div_ceil(256) * 256];
    let (mut out, mut s) = (Default::default(), Scratch::new());
    best_secs(7, || layers.run(pool, &x, 1, &mut out, &mut s))
}

/// Memory available to a new process on Linux (`MemAvailable`), if readable (what
/// `Residency::Auto` also decides by).
pub use slm_format::gguf::available_memory;

#[cfg(test)]
mod tests {
    use super::*;
    use slm_model::random_init::{golden_config, random_llama_gguf};

    fn footprint() -> Footprint {
        let bytes = random_llama_gguf(&golden_config(), GgmlType::F32, 3).unwrap();
        Footprint::of(&slm_format::GgufFile::from_bytes(bytes).unwrap(), None).unwrap()
    }

    #[test]
    fn the_probe_layer_is_the_models_first_block_grouped_as_the_forward_pass_fuses_it() {
        let cfg = golden_config();
        let (d, kv, ff) = (cfg.d_model, cfg.n_kv_head * cfg.head_dim, cfg.d_ff);
        let want: Vec<Group> =
            vec![vec![(d, d), (kv, d), (kv, d)], vec![(d, d)], vec![(ff, d), (ff, d)], vec![(d, ff)]];
        assert_eq!(layer_groups(&footprint()), want);
    }

    #[test]
    fn probe_layers_round_widths_to_the_block_and_hold_every_copy() {
        let groups: Vec<Group> = vec![vec![(32, 96), (64, 96)], vec![(96, 64)]];
        for dtype in WRITABLE_TYPES {
            let layers = Layers::new(dtype, &groups, 3).unwrap();
            let bs = dtype.block_size();
            let mut want = 0;
            for (g, mats) in groups.iter().zip(&layers.groups) {
                for (&(rows, cols), (r, c, data)) in g.iter().zip(mats) {
                    assert_eq!((*r, *c), (rows, cols.div_ceil(bs) * bs), "{dtype:?}");
                    let bytes = 3 * rows * dtype.row_bytes(*c as u64).unwrap() as usize;
                    assert_eq!(data.len(), bytes, "{dtype:?}");
                    want += bytes;
                }
            }
            assert_eq!((layers.bytes, layers.calls()), (want, 6), "{dtype:?}");
        }
    }

    #[test]
    fn probe_weights_live_in_anonymous_memory_like_a_loaded_model() {
        let m = matrix_bytes(GgmlType::Q8_0, 200, 256).unwrap();
        assert_eq!(m.len(), 200 * GgmlType::Q8_0.row_bytes(256).unwrap() as usize);
        // Rows repeat every 64 (a tiled pattern), and are not all zero.
        let rb = m.len() / 200;
        assert_eq!(m[..rb], m[64 * rb..65 * rb]);
        assert!(m.iter().any(|&b| b != 0));
        #[cfg(target_os = "linux")]
        assert!(matches!(m, WeightBuf::Huge(_)), "Linux gives anonymous maps (huge-page advice)");
    }

    #[test]
    fn a_yardstick_predicts_its_own_time_from_the_profile_it_was_probed_for() {
        let pool = Pool::new(2).unwrap();
        let sizes = Sizes { decode_bytes: 4 << 20, prompt_tokens: 64 };
        let fp = footprint();
        let p = measure_sized(&pool, &fp, 1 << 30, 1 << 20, sizes).unwrap();
        let mut y = Yardstick::sized(&fp, GgmlType::Q8_0, sizes).unwrap();
        let (pp, pg) = y.predicted(&p);
        y.time(&pool).unwrap();
        let (mut tp, mut tg) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            let (a, b) = y.time(&pool).unwrap();
            (tp, tg) = (tp.min(a), tg.min(b));
        }
        // The same layers, timed the same way: only machine noise separates the two (loose
        // bounds: tests share the machine).
        assert!(pp / tp > 0.25 && pp / tp < 4.0, "prompt: predicted {pp} s, timed {tp} s");
        assert!(pg / tg > 0.25 && pg / tg < 4.0, "generation: predicted {pg} s, timed {tg} s");
    }

    #[test]
    fn generation_streams_what_the_model_would_within_bounds() {
        let fp = footprint();
        let weights: usize = fp.block_linears.iter().chain([&fp.output]).map(|l| l.rows * l.cols).sum();
        // Tiny model: the floor applies.
        assert_eq!(stream_bytes(&fp, GgmlType::F32, 1 << 20, 1 << 34), (1 << 20).max(4 * weights));
        // A floor below the model's bytes: the model's bytes, by type.
        let f32_bytes = stream_bytes(&fp, GgmlType::F32, 1, 1 << 34);
        assert_eq!(f32_bytes, 4 * weights);
        assert_eq!(stream_bytes(&fp, GgmlType::Q8_0, 1, 1 << 34), weights * 34 / 32);
        // Bounded by a quarter of the memory (never below the floor).
        assert_eq!(stream_bytes(&fp, GgmlType::F32, 1, 400), 100.min(f32_bytes).max(1));
        assert_eq!(stream_bytes(&fp, GgmlType::F32, 1 << 20, 400), 1 << 20);
    }

    #[test]
    fn a_small_probe_gives_every_writable_type_a_positive_rate() {
        let pool = Pool::new(2).unwrap();
        let sizes = Sizes { decode_bytes: 1 << 20, prompt_tokens: 32 };
        let p = measure_sized(&pool, &footprint(), 1 << 30, 1 << 20, sizes).unwrap();
        for dtype in WRITABLE_TYPES {
            for map in [&p.decode_gbps, &p.prompt_gflops] {
                let v = map.get(dtype.name()).copied().unwrap_or(0.0);
                assert!(v.is_finite() && v > 0.0, "{dtype:?}: {v}");
            }
        }
        assert!(p.job_overhead_us >= 0.0 && p.attention_gflops > 0.0);
    }
}
