//! `slm fit [MODEL] [--device NAME|auto|FILE.json] [--ctx N] [--quant T]`: will the model run on
//! the device, with how much memory, how fast — and which quantization fits best.

use crate::args::FitArgs;
use crate::load;
use anyhow::{anyhow, Context, Result};
use slm_format::GgufFile;
use slm_model::quantize::{FileType, QuantizeOptions};
use slm_runtime::fit::{
    best_fit, builtin_profiles, calibrate, predict, probe, DeviceProfile, Footprint, Prediction, Verdict,
};

/// Runs the command.
pub fn run(args: FitArgs) -> Result<()> {
    if args.list_devices {
        for p in builtin_profiles() {
            outln!("{:<16} {:>8.1} GiB  {}  [{}]", p.name, gib(p.memory_bytes), p.description, p.source);
        }
        outln!("{:<16} {:>8}      this machine, measured now by a short kernel probe", "auto", "");
        return Ok(());
    }
    // The engine's own footprint, before any model file is opened.
    let base_rss = resident_now().unwrap_or(8 << 20);
    let path = load::model_path(&args.model)?;
    let file = std::sync::Arc::new(GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?);
    let mut device = device(&args, base_rss, &file)?;
    if args.device == "auto" && !args.no_calibrate {
        eprintln!("calibrating on {}...", path.display());
        // Loaded as `slm bench` loads it (huge-page memory unless --mmap): how the weights are
        // held changes generation speed by 7–15%.
        let model = load::load_model(&path)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        calibrate::calibrate(&mut device, &model, &*load::pool(args.threads)?, &name)?;
    }
    if let Some(path) = &args.save_profile {
        slm_format::atomic::write_bytes_atomic(path, serde_json::to_string_pretty(&device)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let n_ctx = args.ctx.unwrap_or(4096);
    let predict_for = |quant: Option<FileType>| -> Result<Prediction> {
        let opts = quant.map(quant_options);
        let fp = Footprint::of(&file, opts.as_ref())?;
        Ok(predict(&fp, &device, n_ctx, args.batch, args.n_prompt, args.n_gen))
    };
    let quant = args
        .quant
        .as_deref()
        .map(|q| FileType::parse(q).ok_or_else(|| anyhow!("unknown type '{q}'; use one of {}", FileType::names())))
        .transpose()?;
    let main = predict_for(quant)?;
    let mut options = Vec::new();
    for ft in FileType::all() {
        options.push((ft, predict_for(Some(ft))?));
    }
    let best = best_fit(options.clone());
    if args.json {
        let json = serde_json::json!({
            "model": path,
            "device": device,
            "quant": quant.map(|q| q.name()),
            "prediction": main,
            "best_fit": best.as_ref().map(|(ft, p)| serde_json::json!({"quant": ft.name(), "prediction": p})),
            "all_quants": options.iter().map(|(ft, p)| serde_json::json!({"quant": ft.name(), "prediction": p})).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    outln!("model:   {}{}", path.display(), quant.map(|q| format!(" as {q}")).unwrap_or_default());
    outln!(
        "device:  {} — {} ({} threads, {:.1} GiB for the model) [{}]",
        device.name,
        device.description,
        device.threads,
        gib(budget(&device)),
        device.source
    );
    outln!("context: {n_ctx} tokens, batch {}", args.batch);
    outln!("download        {:>10.1} MiB", mib(main.download_bytes));
    outln!("weights         {:>10.1} MiB", mib(main.weights_bytes));
    outln!("KV cache        {:>10.1} MiB", mib(main.kv_cache_bytes));
    outln!("activations     {:>10.1} MiB", mib(main.activation_bytes));
    outln!("runtime         {:>10.1} MiB", mib(main.runtime_bytes));
    outln!("peak memory     {:>10.1} MiB", mib(main.peak_bytes));
    outln!("prompt ({:>4})   {:>10.1} tok/s", args.n_prompt, main.prompt_tps);
    outln!("generate ({:>3}) {:>10.1} tok/s", args.n_gen, main.gen_tps);
    match &main.verdict {
        Verdict::Fits { headroom_bytes } => outln!("verdict: fits ({:.1} MiB to spare)", mib(*headroom_bytes)),
        Verdict::TooLarge { need_bytes, have_bytes } => {
            outln!("verdict: does not fit (needs {:.1} MiB, has {:.1} MiB)", mib(*need_bytes), mib(*have_bytes))
        }
    }
    match &best {
        Some((ft, p)) => outln!(
            "best quantization that fits: {ft} ({:.1} MiB peak, ~{:.1} tok/s generation)",
            mib(p.peak_bytes),
            p.gen_tps
        ),
        None => outln!("no quantization fits: use a smaller model or a shorter context (--ctx)"),
    }
    if args.verbose {
        outln!("\n{:<8} {:>10} {:>10} {:>10} {:>10}  fits", "quant", "file MiB", "peak MiB", "pp tok/s", "tg tok/s");
        for (ft, p) in &options {
            let fits = matches!(p.verdict, Verdict::Fits { .. });
            outln!(
                "{:<8} {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {}",
                ft.name(),
                mib(p.download_bytes),
                mib(p.peak_bytes),
                p.prompt_tps,
                p.gen_tps,
                if fits { "yes" } else { "no" }
            );
        }
    }
    Ok(())
}

fn quant_options(ftype: FileType) -> QuantizeOptions {
    QuantizeOptions { allow_requantize: true, ..QuantizeOptions::preset(ftype, 1) }
}

/// The device profile `--device` names; `auto` probes this machine on `file`'s layer shapes.
fn device(args: &FitArgs, base_rss: u64, file: &GgufFile) -> Result<DeviceProfile> {
    let name = args.device.as_str();
    if name == "auto" {
        let pool = load::pool(args.threads)?;
        let memory = probe::available_memory().unwrap_or(4 << 30);
        eprintln!("probing this machine's kernels ({} threads)...", pool.n_threads());
        return Ok(probe::measure(&pool, &Footprint::of(file, None)?, memory, base_rss)?);
    }
    if name.ends_with(".json") {
        let text = std::fs::read_to_string(name).with_context(|| format!("reading device profile {name}"))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing device profile {name}"));
    }
    builtin_profiles().into_iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<String> = builtin_profiles().into_iter().map(|p| p.name).collect();
        anyhow!("unknown device '{name}'; use auto, a profile JSON file, or one of: {}", names.join(", "))
    })
}

/// This process's resident memory now (the engine's own footprint before any model is loaded).
fn resident_now() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn budget(d: &DeviceProfile) -> u64 {
    d.memory_bytes.min(d.address_space_bytes.unwrap_or(u64::MAX))
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}
