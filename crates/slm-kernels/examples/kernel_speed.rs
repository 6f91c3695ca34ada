//! Times `matmul` on SmolLM2-135M's shapes.
//!
//! `cargo run --release -p slm-kernels --example kernel_speed [-- scalar|avx2|avx512|all|best [DTYPE]]`
//!
//! `DTYPE` (e.g. `Q4_K`) replaces Q4_1 for the layer matrices.
//!
//! Reports the best of many ~10 ms batches (wall time, and for one thread also the thread's
//! CPU time, which ignores preemption on a busy machine). GB/s counts weight bytes read once per call; GFLOP/s counts 2 * rows * cols * n_tokens.

use slm_kernels::quant::quantize_row;
use slm_kernels::{matmul, matmul_with_isa, GgmlType, Isa, Pool, QMatrix, Scratch};
use std::time::Instant;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), to see through preemption on a
/// shared machine; `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn weights(dtype: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = dtype.row_bytes(cols as u64).unwrap_or(0) as usize;
    let mut bytes = vec![0u8; rows * rb];
    let x = data(cols * 64, 5);
    for (r, br) in bytes.chunks_mut(rb).enumerate() {
        let off = (r % 64) * cols;
        quantize_row(dtype, &x[off..off + cols], br).expect("quantize");
    }
    bytes
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let isas: Vec<Isa> = match arg.as_str() {
        "scalar" => vec![Isa::Scalar],
        "avx2" => vec![Isa::Avx2],
        "avx512" => vec![Isa::Avx512Vnni],
        "all" => Isa::available(),
        _ => vec![Isa::detect()],
    };
    let layer = std::env::args().nth(2).and_then(|n| GgmlType::from_name(&n)).unwrap_or(GgmlType::Q4_1);
    // K-quant rows must be whole 256-blocks: use the nearest widths (768, 1536) for them.
    let d_in = if layer.block_size() == 256 { 768 } else { 576 };
    let shapes: [(&str, GgmlType, usize, usize); 5] = [
        ("attn q/o 576->576", layer, d_in, d_in),
        ("ffn up/gate 576->1536", layer, 1536, d_in),
        ("ffn down 1536->576", layer, d_in, 1536),
        ("attn k/v 576->192", layer, 192, d_in),
        ("output 576->49152", GgmlType::Q8_0, 49152, 576),
    ];
    println!("{:<24} {:>5} {:>3} {:>4} {:>10} {:>10} {:>8} {:>9}  isa", "shape", "dtype", "thr", "tok", "us/call", "cpu us", "GB/s", "GFLOP/s");
    for isa in isas {
        if !isa.is_available() {
            println!("{isa:?} not available on this CPU");
            continue;
        }
        for &(name, dtype, rows, cols) in &shapes {
            let bytes = weights(dtype, rows, cols);
            let w = QMatrix::new(dtype, rows, cols, &bytes)?;
            for threads in [1, 2] {
                let pool = Pool::new(threads)?;
                for n_tokens in [1, 64] {
                    let x = data(n_tokens * cols, 9);
                    let mut out = vec![0.0; n_tokens * rows];
                    let mut scratch = Scratch::new();
                    matmul_with_isa(&pool, &w, &x, n_tokens, &mut out, &mut scratch, isa)?;
                    // Best of several short batches: on a shared machine the minimum is the
                    // least disturbed measurement.
                    let mut secs = f64::INFINITY;
                    let mut cpu_secs = f64::INFINITY;
                    let total = Instant::now();
                    while total.elapsed().as_secs_f64() < 0.4 {
                        let mut iters = 0u64;
                        let cpu0 = thread_cpu_ns();
                        let start = Instant::now();
                        while start.elapsed().as_secs_f64() < 0.01 || iters < 2 {
                            matmul_with_isa(&pool, &w, &x, n_tokens, &mut out, &mut scratch, isa)?;
                            iters += 1;
                        }
                        secs = secs.min(start.elapsed().as_secs_f64() / iters as f64);
                        if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
                            cpu_secs = cpu_secs.min((b - a) as f64 * 1e-9 / iters as f64);
                        }
                    }
                    let gbs = bytes.len() as f64 / secs / 1e9;
                    let gflops = 2.0 * (rows * cols * n_tokens) as f64 / secs / 1e9;
                    // With one thread the caller's CPU time is the kernel's cost without preemption.
                    let cpu = if threads == 1 && cpu_secs.is_finite() { format!("{:.1}", cpu_secs * 1e6) } else { "-".into() };
                    println!(
                        "{name:<24} {:>5} {threads:>3} {n_tokens:>4} {:>10.1} {cpu:>10} {gbs:>8.2} {gflops:>9.2}  {isa:?}",
                        dtype.name(),
                        secs * 1e6
                    );
                }
            }
        }
    }
    // All matmuls of one SmolLM2-135M forward pass (30 layers x q,k,v,o,gate,up,down, plus the
    // output head on the last token only), back to back as the engine issues them. Every layer
    // has its own copy of the weights (~100 MB in all) so decode streams from DRAM as it would.
    let bufs: Vec<(Vec<u8>, usize, usize)> = shapes.iter().map(|&(_, t, r, c)| (weights(t, r, c), r, c)).collect();
    let layer_bufs: Vec<Vec<Vec<u8>>> = (0..30).map(|_| bufs[..4].iter().map(|(b, ..)| b.clone()).collect()).collect();
    fn mk<'a>(
        shape: &(&str, GgmlType, usize, usize),
        b: &'a [u8],
    ) -> Result<QMatrix<'a>, slm_kernels::KernelError> {
        QMatrix::new(shape.1, shape.2, shape.3, b)
    }
    let layers: Vec<Vec<QMatrix>> = layer_bufs
        .iter()
        .map(|l| l.iter().enumerate().map(|(k, b)| mk(&shapes[k], b)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    let head = mk(&shapes[4], &bufs[4].0)?;
    let plan = [0usize, 3, 3, 0, 1, 1, 2]; // q k v o gate up down
    for threads in [1, 2] {
        let pool = Pool::new(threads)?;
        for n_tokens in [1usize, 64] {
            let x = data(n_tokens * 1536, 3);
            let mut out = vec![0.0; (n_tokens * 1536).max(49152)];
            let mut scratch = Scratch::new();
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let start = Instant::now();
                for mats in &layers {
                    for &m in &plan {
                        let w = &mats[m];
                        matmul(&pool, w, &x[..n_tokens * w.cols], n_tokens, &mut out[..n_tokens * w.rows], &mut scratch)?;
                    }
                }
                matmul(&pool, &head, &x[..head.cols], 1, &mut out[..head.rows], &mut scratch)?;
                best = best.min(start.elapsed().as_secs_f64());
            }
            println!(
                "forward-pass matmuls, {threads} thread(s), {n_tokens:>2} token(s): {:.2} ms = {:.0} tok/s (matmuls only)",
                best * 1e3,
                n_tokens as f64 / best
            );
        }
    }
    // Fork-join cost of the pool: the floor under every parallel kernel call.
    for threads in [1, 2] {
        let pool = Pool::new(threads)?;
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            pool.run(threads * 4, &|i| {
                std::hint::black_box(i);
            });
        }
        println!("pool.run with {threads} thread(s), {} empty tasks: {:.2} us per call", threads * 4, start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    Ok(())
}
