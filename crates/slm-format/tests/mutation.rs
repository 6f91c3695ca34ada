//! Truncation sweep and seeded random mutations of a small valid GGUF: every proper prefix and
//! every mutation must give `Ok` or a typed `Err` — never a panic or an allocation out of
//! proportion to the file (reliability.md S-02, S-04).

mod support;

use slm_format::GgufError;
use support::*;

// ---- truncation and limits -----------------------------------------------------------------

#[test]
fn truncated_at_every_offset() {
    let full = valid_file();
    assert!(parse(full.clone()).0.is_ok());
    for len in 0..full.len() {
        let e = fail(full[..len].to_vec());
        assert!(
            matches!(
                e,
                GgufError::UnexpectedEof { .. }
                    | GgufError::CountPastEof { .. }
                    | GgufError::DataPastEof { .. }
                    | GgufError::TensorOutOfBounds { .. }
            ),
            "prefix of {len} bytes: {e:?}"
        );
    }
}

// ---- random mutations ----------------------------------------------------------------------

/// xorshift64*: a tiny deterministic PRNG so failures reproduce from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    let n_mutations = 1 + rng.below(3);
    for _ in 0..n_mutations {
        let len = b.len();
        let at = rng.below(len);
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 | 3 => {
                let huge = [
                    u64::MAX,
                    1 << 63,
                    1 << 62,
                    1 << 40,
                    1 << 32,
                    len as u64 + 1,
                    0,
                    rng.next(),
                ];
                let v = huge[rng.below(huge.len())].to_le_bytes();
                let width = if rng.below(2) == 0 { 8 } else { 4 };
                for (i, byte) in v.iter().take(width).enumerate() {
                    if let Some(slot) = b.get_mut(at + i) {
                        *slot = *byte;
                    }
                }
            }
            4 => b.truncate(at),
            _ => {
                let extra = rng.below(16);
                let pos = rng.below(len);
                b.splice(pos..pos, std::iter::repeat_n(rng.next() as u8, extra));
            }
        }
    }
    b
}

#[test]
fn random_mutations_never_panic() {
    let base = valid_file();
    let seed = 0x0005_EED6_u64;
    let mut rng = Rng(seed);
    let (mut ok, mut err) = (0, 0);
    for i in 0..5000 {
        let m = mutate(&mut rng, &base);
        let len = m.len();
        let (r, max_alloc) = parse(m.clone());
        assert!(
            max_alloc <= 64 * 1024 + 4 * len,
            "mutation {i} (seed {seed:#x}): allocated {max_alloc} bytes for a {len}-byte file"
        );
        match r {
            Ok(f) => {
                ok += 1;
                // Everything an accepted file reports must be usable without panicking.
                for t in f.tensors() {
                    assert_eq!(f.tensor_data(t).len() as u64, t.n_bytes, "mutation {i}");
                }
                for (_, v) in f.metadata().iter() {
                    let _ = v.to_string();
                }
            }
            Err(e) => {
                err += 1;
                let _ = e.to_string();
            }
        }
    }
    eprintln!("mutations: {ok} accepted, {err} rejected");
    assert!(
        err > 1000 && ok > 10,
        "mutations should produce both outcomes: ok={ok} err={err}"
    );
}
