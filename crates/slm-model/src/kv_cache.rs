//! The key/value cache of a decoding context.
//!
//! Layout per layer: `[n_kv_head][n_ctx][head_dim]` f32, head-major so that attention for one head
//! streams one contiguous block. Invariant: positions `0..len` hold valid keys/values for every
//! layer; positions are only ever appended, or dropped from the end by [`KvCache::truncate`].

use crate::error::ModelError;

/// Keys and values for every layer, up to `n_ctx` positions.
#[derive(Debug)]
pub struct KvCache {
    n_layer: usize,
    n_kv_head: usize,
    head_dim: usize,
    n_ctx: usize,
    len: usize,
    /// `[n_layer][n_kv_head][n_ctx][head_dim]`
    k: Vec<f32>,
    /// `[n_layer][n_kv_head][n_ctx][head_dim]`
    v: Vec<f32>,
}

impl KvCache {
    /// Allocates a cache for `n_ctx` positions.
    pub fn new(n_layer: usize, n_kv_head: usize, head_dim: usize, n_ctx: usize) -> Result<Self, ModelError> {
        let size = n_layer
            .checked_mul(n_kv_head)
            .and_then(|x| x.checked_mul(head_dim))
            .and_then(|x| x.checked_mul(n_ctx))
            .ok_or_else(|| ModelError::InvalidArgument(format!("KV cache for {n_ctx} positions overflows")))?;
        Ok(KvCache { n_layer, n_kv_head, head_dim, n_ctx, len: 0, k: vec![0.0; size], v: vec![0.0; size] })
    }

    /// Capacity in positions.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Number of valid positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the cache.
    pub fn n_bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * std::mem::size_of::<f32>()
    }

    /// Forgets positions from `len` on (e.g. to reuse a shared prompt prefix).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Marks `n` more positions as valid, after all layers have written them.
    pub(crate) fn advance(&mut self, n: usize) -> Result<(), ModelError> {
        if self.len + n > self.n_ctx {
            return Err(ModelError::ContextFull { n_past: self.len, n_new: n, n_ctx: self.n_ctx });
        }
        self.len += n;
        Ok(())
    }

    fn layer_range(&self, layer: usize) -> std::ops::Range<usize> {
        let per_layer = self.n_kv_head * self.n_ctx * self.head_dim;
        layer * per_layer..(layer + 1) * per_layer
    }

    /// Stores keys and values of `n` new tokens at positions `pos..pos + n` of `layer`.
    ///
    /// # Shapes
    /// `k`, `v`: `[n][n_kv_head * head_dim]`.
    pub(crate) fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let (hd, n_ctx) = (self.head_dim, self.n_ctx);
        let kv_dim = self.n_kv_head * hd;
        let range = self.layer_range(layer);
        for (cache, src) in [(&mut self.k[range.clone()], k), (&mut self.v[range.clone()], v)] {
            for (t, row) in src.chunks_exact(kv_dim).enumerate() {
                for (g, head) in row.chunks_exact(hd).enumerate() {
                    let at = (g * n_ctx + pos + t) * hd;
                    cache[at..at + hd].copy_from_slice(head);
                }
            }
        }
    }

    /// Keys and values of one KV head of one layer: `[n_ctx][head_dim]` each (valid up to the
    /// positions stored so far).
    pub(crate) fn head(&self, layer: usize, kv_head: usize) -> (&[f32], &[f32]) {
        let base = self.layer_range(layer).start + kv_head * self.n_ctx * self.head_dim;
        let len = self.n_ctx * self.head_dim;
        (&self.k[base..base + len], &self.v[base..base + len])
    }

    /// Number of layers.
    pub fn n_layer(&self) -> usize {
        self.n_layer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_places_heads_contiguously() {
        let mut c = KvCache::new(2, 2, 3, 4).unwrap();
        // two tokens, kv_dim 6: token t head g element i = 100t + 10g + i
        let k: Vec<f32> = (0..2).flat_map(|t| (0..2).flat_map(move |g| (0..3).map(move |i| (100 * t + 10 * g + i) as f32))).collect();
        let v: Vec<f32> = k.iter().map(|x| -x).collect();
        c.store(1, 1, &k, &v);
        c.advance(3).unwrap();
        let (kh, vh) = c.head(1, 1);
        assert_eq!(&kh[3..6], &[10.0, 11.0, 12.0]); // pos 1 = token 0
        assert_eq!(&kh[6..9], &[110.0, 111.0, 112.0]); // pos 2 = token 1
        assert_eq!(&vh[6..9], &[-110.0, -111.0, -112.0]);
        let (k0, _) = c.head(0, 1);
        assert!(k0.iter().all(|x| *x == 0.0), "other layers untouched");
        assert!(matches!(c.advance(2), Err(ModelError::ContextFull { .. })));
        c.truncate(1);
        assert_eq!(c.len(), 1);
    }
}
