//! Calibration: fit what the kernel probe cannot see to one real model's measured speed.
//!
//! The probe times the matrix products of every type. A forward pass also normalises, rotates,
//! runs attention, writes the KV cache and joins threads; that work is about the same for every
//! quantization of a model, so it is fitted as an *additive* cost per token and block
//! ([`DeviceProfile::gen_block_us`], [`DeviceProfile::prompt_block_us`]) rather than folded into
//! the per-type rates: a multiplier fitted on a compute-light reference (Q4_1, ~0.9 ms per token
//! outside the matmuls) over-charged memory-bound types such as F32 by ~13%. The model is timed
//! next to the probe's own layers, so a machine slowed by other processes meanwhile is not
//! mistaken for per-token work.

use super::footprint::Footprint;
use super::predict::{gen_split, prompt_split};
use super::probe::Yardstick;
use super::profile::DeviceProfile;
use crate::error::RuntimeError;
use slm_format::GgmlType;
use slm_kernels::Pool;
use slm_model::quantize::WRITABLE_TYPES;
use std::time::Instant;

/// Prompt tokens of a calibration run (one batch: `slm bench`'s pp512).
pub(crate) const CALIBRATE_PROMPT: usize = 512;
/// Positions already in the context when the timed generation starts.
pub(crate) const CALIBRATE_FROM: usize = 32;
/// Generated tokens of a calibration run: positions 32..96 average the 64 of `slm bench`'s tg128.
pub(crate) const CALIBRATE_GEN: usize = 64;
/// Timed calibration runs (after one warm-up).
const RUNS: usize = 3;
/// The most a calibration may speed the probe's rates up by, when the model ran faster than the
/// probe predicted even without per-block work (a probe disturbed by other processes).
const MAX_SPEEDUP: f64 = 10.0;

/// One calibration run of a model: a [`CALIBRATE_PROMPT`]-token prompt (one batch, from an
/// empty context), then [`CALIBRATE_GEN`] generated tokens after [`CALIBRATE_FROM`] positions.
struct ModelRun<'m> {
    model: &'m slm_model::Model,
    ctx: slm_model::Context,
    tokens: Vec<u32>,
}

impl<'m> ModelRun<'m> {
    fn new(model: &'m slm_model::Model) -> Result<ModelRun<'m>, RuntimeError> {
        let (n_p, n_g) = (CALIBRATE_PROMPT, CALIBRATE_GEN);
        let n_vocab = model.config().n_vocab as u64;
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let tokens: Vec<u32> = (0..n_p + n_g)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n_vocab) as u32
            })
            .collect();
        Ok(ModelRun { model, ctx: model.new_context(n_p + n_g, n_p)?, tokens })
    }

    /// Seconds of the prompt and of the generated tokens.
    fn once(&mut self, pool: &Pool) -> Result<(f64, f64), RuntimeError> {
        use slm_model::Logits;
        let ModelRun { model, ctx, tokens } = self;
        let (n_p, from) = (CALIBRATE_PROMPT, CALIBRATE_FROM);
        ctx.clear();
        let t0 = Instant::now();
        model.forward_prompt(ctx, pool, &tokens[..n_p], Logits::Last)?;
        let prompt = t0.elapsed().as_secs_f64();
        ctx.clear();
        model.forward_prompt(ctx, pool, &tokens[..from], Logits::Last)?;
        let t1 = Instant::now();
        for &t in &tokens[n_p..] {
            model.forward(ctx, pool, &[t], Logits::Last)?;
        }
        Ok((prompt, t1.elapsed().as_secs_f64()))
    }
}

/// Seconds `model` takes here for a [`CALIBRATE_PROMPT`]-token prompt and for
/// [`CALIBRATE_GEN`] generated tokens after [`CALIBRATE_FROM`] positions: the fastest of
/// [`RUNS`] runs after a warm-up that pages the weights in (the probe also keeps its fastest
/// runs, so both describe the machine at its least disturbed).
#[cfg(test)]
pub(crate) fn time_model(model: &slm_model::Model, pool: &Pool) -> Result<(f64, f64), RuntimeError> {
    let mut run = ModelRun::new(model)?;
    run.once(pool)?;
    let (mut prompt, mut gen) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..RUNS {
        let (p, g) = run.once(pool)?;
        (prompt, gen) = (prompt.min(p), gen.min(g));
    }
    Ok((prompt, gen))
}

/// The type holding most of `fp`'s block weights, if the probe can make it.
fn main_type(fp: &Footprint) -> Option<GgmlType> {
    let mut bytes: Vec<(GgmlType, u64)> = Vec::new();
    for l in &fp.block_linears {
        match bytes.iter_mut().find(|(t, _)| *t == l.dtype) {
            Some((_, b)) => *b += l.bytes,
            None => bytes.push((l.dtype, l.bytes)),
        }
    }
    bytes.into_iter().filter(|(t, _)| WRITABLE_TYPES.contains(t)).max_by_key(|&(_, b)| b).map(|(t, _)| t)
}

/// Calibrates a measured profile on `model` (the file `name`) and fits it with [`fit`]. The
/// model runs [`RUNS`] times (after a warm-up), each run next to the probe's layers of the
/// model's main type (a [`Yardstick`]); the fastest of each is kept. How much slower those
/// layers ran now than when the probe measured them is the machine's slowdown since the probe
/// (other processes), and the model's times are scaled back by it before the fit, so the probe's
/// rates and the fitted per-block work describe the same machine. Other formats of the same
/// model are then predicted from the probe's per-type rates plus the per-block work.
pub fn calibrate(
    profile: &mut DeviceProfile,
    model: &slm_model::Model,
    pool: &Pool,
    name: &str,
) -> Result<(), RuntimeError> {
    let fp = Footprint::of(model.gguf(), None)?;
    let mut yard = main_type(&fp).map(|t| Yardstick::new(&fp, t)).transpose()?;
    let mut run = ModelRun::new(model)?;
    let [mut prompt, mut gen, mut yard_prompt, mut yard_gen] = [f64::INFINITY; 4];
    for i in 0..=RUNS {
        let (p, g) = run.once(pool)?;
        let (yp, yg) = match yard.as_mut() {
            Some(y) => y.time(pool)?,
            None => (1.0, 1.0),
        };
        if i > 0 {
            (prompt, gen) = (prompt.min(p), gen.min(g));
            (yard_prompt, yard_gen) = (yard_prompt.min(yp), yard_gen.min(yg));
        }
    }
    // Probe-time seconds over now-seconds of the same layers: below 1 when the machine is slower.
    let (sp, sg) = match &yard {
        Some(y) => {
            let (pp, pg) = y.predicted(profile);
            (pp / yard_prompt, pg / yard_gen)
        }
        None => (1.0, 1.0),
    };
    let how = fit(profile, &fp, prompt * sp, gen * sg);
    profile.source = format!(
        "{}; calibrated on {name} ({how}; machine at ×{:.2} prompt, ×{:.2} generation of its probe-time speed)",
        profile.source, sp, sg
    );
    Ok(())
}

/// Fits `profile` so that it predicts exactly `prompt` seconds for a [`CALIBRATE_PROMPT`]-token
/// prompt and `gen` seconds for [`CALIBRATE_GEN`] tokens after [`CALIBRATE_FROM`] positions of
/// the model `fp` describes, and says what it changed.
///
/// Per phase: the time the model took beyond the probe's prediction becomes the per-block
/// term (time per token and block), and the probe's per-type rates stay as measured. When the
/// model was *faster* than predicted (the probe ran while the machine was busier), there is no
/// per-block work to fit; the kernel rates of that phase are then scaled up so the kernels'
/// share accounts for the difference (at most [`MAX_SPEEDUP`]×). Generation is fitted first: a
/// prompt's output head streams at the generation rate.
pub(crate) fn fit(profile: &mut DeviceProfile, fp: &Footprint, prompt: f64, gen: f64) -> String {
    let blocks = fp.config.n_layer.max(1) as f64;
    profile.gen_block_us = 0.0;
    profile.prompt_block_us = 0.0;
    let g = gen_split(fp, profile, CALIBRATE_FROM, CALIBRATE_GEN);
    let gen_how = if gen >= g.total() {
        profile.gen_block_us = (gen - g.total()) / (CALIBRATE_GEN as f64 * blocks) * 1e6;
        format!("generation +{:.1} µs per token and block", profile.gen_block_us)
    } else {
        let k = speedup(g.kernels, g.rest, gen);
        profile.decode_gbps.values_mut().for_each(|v| *v *= k);
        format!("generation rates ×{k:.2}")
    };
    let p = prompt_split(fp, profile, CALIBRATE_PROMPT, CALIBRATE_PROMPT);
    let prompt_how = if prompt >= p.total() {
        profile.prompt_block_us = (prompt - p.total()) / (CALIBRATE_PROMPT as f64 * blocks) * 1e6;
        format!("prompt +{:.2} µs per token and block", profile.prompt_block_us)
    } else {
        let k = speedup(p.kernels, p.rest, prompt);
        profile.prompt_gflops.values_mut().for_each(|v| *v *= k);
        format!("prompt rates ×{k:.2}")
    };
    format!("{gen_how}, {prompt_how}")
}

/// The factor on kernel rates that makes `kernels / k + rest` equal `measured`.
fn speedup(kernels: f64, rest: f64, measured: f64) -> f64 {
    let room = measured - rest;
    if room <= 0.0 || kernels <= 0.0 {
        return MAX_SPEEDUP;
    }
    (kernels / room).clamp(1.0, MAX_SPEEDUP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::predict::{gen_secs, prompt_secs};
    use slm_format::{GgmlType, GgufFile};
    use slm_model::random_init::{golden_config, random_llama_gguf};

    fn footprint(dtype: GgmlType) -> Footprint {
        let bytes = random_llama_gguf(&golden_config(), dtype, 3).unwrap();
        Footprint::of(&GgufFile::from_bytes(bytes).unwrap(), None).unwrap()
    }

    fn profile() -> DeviceProfile {
        let mut p = crate::fit::builtin_profiles().into_iter().find(|p| p.name == "zen3-2core").unwrap();
        p.decode_gbps.insert("F32".into(), 10.0);
        p.decode_gbps.insert("Q8_0".into(), 25.0);
        p.prompt_gflops.insert("F32".into(), 40.0);
        p.prompt_gflops.insert("Q8_0".into(), 90.0);
        p
    }

    fn predicted(p: &DeviceProfile, fp: &Footprint) -> (f64, f64) {
        let prompt = prompt_split(fp, p, CALIBRATE_PROMPT, CALIBRATE_PROMPT).total();
        (prompt, gen_split(fp, p, CALIBRATE_FROM, CALIBRATE_GEN).total())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    #[test]
    fn slower_than_predicted_fits_per_block_work_and_keeps_the_rates() {
        let (fp, before) = (footprint(GgmlType::Q8_0), profile());
        let (p0, g0) = predicted(&before, &fp);
        let (prompt, gen) = (p0 * 1.3, g0 * 1.7);
        let mut cal = before.clone();
        let how = fit(&mut cal, &fp, prompt, gen);
        let (p1, g1) = predicted(&cal, &fp);
        assert!(close(p1, prompt) && close(g1, gen), "{p1} vs {prompt}, {g1} vs {gen}");
        assert_eq!((&cal.decode_gbps, &cal.prompt_gflops), (&before.decode_gbps, &before.prompt_gflops));
        let blocks = golden_config().n_layer as f64;
        let want_gen = (gen - g0) / (CALIBRATE_GEN as f64 * blocks) * 1e6;
        assert!(close(cal.gen_block_us, want_gen), "{} vs {want_gen}", cal.gen_block_us);
        assert!(cal.prompt_block_us > 0.0 && how.contains("µs per token and block"), "{how}");
        // The same per-token work is added to every format: F32 pays the same seconds, so a
        // smaller share of its (longer) time.
        let f32 = footprint(GgmlType::F32);
        let extra = gen_secs(&f32, &cal, 100) - gen_secs(&f32, &before, 100);
        assert!(close(extra, 100.0 * blocks * cal.gen_block_us * 1e-6), "{extra}");
        let extra_q8 = gen_secs(&fp, &cal, 100) - gen_secs(&fp, &before, 100);
        assert!(close(extra, extra_q8));
        assert!(prompt_secs(&f32, &cal, 64, 64) > prompt_secs(&f32, &before, 64, 64));
    }

    #[test]
    fn faster_than_predicted_scales_the_kernel_rates_instead() {
        let (fp, before) = (footprint(GgmlType::Q8_0), profile());
        let (p0, g0) = predicted(&before, &fp);
        let (prompt, gen) = (p0 * 0.8, g0 * 0.9);
        let mut cal = before.clone();
        let how = fit(&mut cal, &fp, prompt, gen);
        let (p1, g1) = predicted(&cal, &fp);
        assert!(close(p1, prompt) && close(g1, gen), "{p1} vs {prompt}, {g1} vs {gen}");
        assert_eq!((cal.gen_block_us, cal.prompt_block_us), (0.0, 0.0));
        let k = cal.decode_gbps["Q8_0"] / before.decode_gbps["Q8_0"];
        assert!(k > 1.0 && close(cal.decode_gbps["F32"] / before.decode_gbps["F32"], k), "{k}");
        assert!(cal.prompt_gflops["Q8_0"] > before.prompt_gflops["Q8_0"]);
        assert!(how.contains("generation rates ×") && how.contains("prompt rates ×"), "{how}");
    }

    #[test]
    fn calibrating_twice_gives_the_same_profile() {
        let (fp, before) = (footprint(GgmlType::Q8_0), profile());
        let (p0, g0) = predicted(&before, &fp);
        let mut once = before.clone();
        fit(&mut once, &fp, p0 * 1.2, g0 * 1.4);
        let mut twice = once.clone();
        fit(&mut twice, &fp, p0 * 1.2, g0 * 1.4);
        assert!(close(twice.gen_block_us, once.gen_block_us) && close(twice.prompt_block_us, once.prompt_block_us));
    }

    #[test]
    fn calibrating_on_the_real_model_fits_finite_non_negative_terms() {
        let Some(path) = std::env::var_os("SLM_TEST_MODEL") else {
            assert!(
                std::env::var_os("SLM_REQUIRE_MODEL").is_none(),
                "SLM_REQUIRE_MODEL is set but SLM_TEST_MODEL is not"
            );
            eprintln!("note: SLM_TEST_MODEL not set; skipping");
            return;
        };
        let model = slm_model::Model::load(std::path::Path::new(&path)).unwrap();
        let pool = Pool::new(2).unwrap();
        let mut p = profile();
        let before = p.clone();
        calibrate(&mut p, &model, &pool, "model.gguf").unwrap();
        assert!(p.source.starts_with(&before.source) && p.source.contains("calibrated on model.gguf"), "{}", p.source);
        for v in [p.gen_block_us, p.prompt_block_us] {
            assert!(v.is_finite() && v >= 0.0, "{v}");
        }
        for (map, old) in [(&p.decode_gbps, &before.decode_gbps), (&p.prompt_gflops, &before.prompt_gflops)] {
            for (k, v) in map {
                assert!(v.is_finite() && *v >= old[k], "{k}: {v} (rates are kept or sped up, never slowed)");
            }
        }
    }

    #[test]
    fn the_yardstick_type_is_the_one_holding_most_block_weights() {
        assert_eq!(main_type(&footprint(GgmlType::Q8_0)), Some(GgmlType::Q8_0));
        assert_eq!(main_type(&footprint(GgmlType::F32)), Some(GgmlType::F32));
    }

    #[test]
    fn an_impossible_speedup_is_capped() {
        assert_eq!(speedup(1.0, 2.0, 1.5), MAX_SPEEDUP, "measured time below the unscaled part");
        assert_eq!(speedup(1.0, 0.0, 0.01), MAX_SPEEDUP);
        assert!(close(speedup(1.0, 0.5, 1.0), 2.0));
    }
}
