//! Hand-run check of the probe against real models (ignored: needs model files and minutes):
//! `SLM_FIT_FILES=a.gguf:b.gguf cargo test --release -p slm-runtime probe_vs_models -- --ignored --nocapture`.
//! Prints, per file, the uncalibrated prediction of the calibration run next to its measured time.

use super::calibrate::{time_model, CALIBRATE_FROM, CALIBRATE_GEN, CALIBRATE_PROMPT};
use super::probe::measure;
use super::Footprint;
use slm_kernels::Pool;

#[test]
#[ignore]
fn probe_vs_models() {
    let Ok(files) = std::env::var("SLM_FIT_FILES") else {
        eprintln!("SLM_FIT_FILES is unset: nothing to check");
        return;
    };
    let pool = Pool::new(2).unwrap();
    let first = files.split(':').next().unwrap();
    let fp0 = Footprint::of(&slm_format::GgufFile::open(std::path::Path::new(first)).unwrap(), None).unwrap();
    let t = std::time::Instant::now();
    let dev = measure(&pool, &fp0, 1 << 34, 8 << 20).unwrap();
    eprintln!("probe {:.1} s: decode {:?}\nprompt {:?}", t.elapsed().as_secs_f64(), dev.decode_gbps, dev.prompt_gflops);
    for round in 0..2 {
        for f in files.split(':') {
            let file = slm_format::GgufFile::open(std::path::Path::new(f)).unwrap();
            let fp = Footprint::of(&file, None).unwrap();
            // Loaded as `slm bench` loads it (huge-page memory where the file fits).
            let model = slm_model::Model::load(std::path::Path::new(f)).unwrap();
            if round == 0 {
                // The output head alone (one tall matrix, not in the probe's layer) vs its predicted time.
                let o = &fp.output;
                let head = super::probe::time_head(&pool, o.dtype, o.rows, o.cols).unwrap();
                let pred = o.bytes as f64 / dev.decode_bytes_per_sec(o.dtype);
                eprintln!(
                    "  output head {:?} {}x{}: pred {:.2} ms meas {:.2} ms",
                    o.dtype,
                    o.rows,
                    o.cols,
                    pred * 1e3,
                    head * 1e3
                );
            }
            let (p, g) = time_model(&model, &pool).unwrap();
            let pp = super::predict::prompt_split(&fp, &dev, CALIBRATE_PROMPT, CALIBRATE_PROMPT);
            let pg = super::predict::gen_split(&fp, &dev, CALIBRATE_FROM, CALIBRATE_GEN);
            // What calibration on this file would fit as per-block work (negative: the model
            // was faster than the probe predicted).
            let blocks = fp.config.n_layer as f64;
            let (ng, np) = (CALIBRATE_GEN as f64, CALIBRATE_PROMPT as f64);
            eprintln!(
                "{round} {:<34} prompt pred {:6.1} ({:5.1} kernels) meas {:6.1} ms ({:.2}, {:+6.2} µs/tok/blk)   \
                 gen/token pred {:5.2} ({:5.2} kernels) meas {:5.2} ms ({:.2}, {:+5.1} µs/tok/blk)",
                std::path::Path::new(f).file_name().unwrap().to_string_lossy(),
                pp.total() * 1e3,
                pp.kernels * 1e3,
                p * 1e3,
                pp.total() / p,
                (p - pp.total()) / (np * blocks) * 1e6,
                pg.total() * 1e3 / ng,
                pg.kernels * 1e3 / ng,
                g * 1e3 / ng,
                pg.total() / g,
                (g - pg.total()) / (ng * blocks) * 1e6,
            );
        }
    }
}
