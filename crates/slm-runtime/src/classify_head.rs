//! A trained classification head over sentence embeddings: `softmax(W2 · relu(W1 · x + b1) + b2)`
//! (an MLP), or `softmax(W2 · x + b2)` (multinomial logistic regression) when it has no hidden
//! layer. Trained by `slm_train::classifier`, stored as a small GGUF file that also names its
//! labels and the encoder whose vectors it reads.
//!
//! ```text
//! keys:    general.architecture = "classifier", classifier.labels [str], classifier.input_dim,
//!          classifier.hidden_dim (0 = linear), classifier.encoder (name), classifier.encoder_path
//! tensors: cls.hidden.weight [input, hidden] + cls.hidden.bias [hidden]   (when hidden > 0)
//!          cls.output.weight [hidden or input, labels] + cls.output.bias [labels]
//! ```

use std::path::Path;

use slm_format::{GgmlType, GgufFile, GgufWriter};

use crate::error::RuntimeError;

/// GGUF architecture name of head files.
pub const HEAD_ARCH: &str = "classifier";

/// The head's parameters (row-major, f32).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierHead {
    /// Label names, one per output.
    pub labels: Vec<String>,
    /// Width of the input vectors.
    pub input_dim: usize,
    /// Hidden width; 0 for a linear head.
    pub hidden_dim: usize,
    /// `[hidden][input]` (empty when linear).
    pub w1: Vec<f32>,
    /// `[hidden]`.
    pub b1: Vec<f32>,
    /// `[labels][hidden or input]`.
    pub w2: Vec<f32>,
    /// `[labels]`.
    pub b2: Vec<f32>,
    /// Name of the encoder the head was trained on (`general.name` of its GGUF).
    pub encoder: String,
    /// Where that encoder was, when known (used when no model is given).
    pub encoder_path: Option<String>,
}

fn bad(path: &str, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidVocab { field: path.to_string(), reason: reason.into() }
}

impl ClassifierHead {
    /// Checks that the tensors have the sizes the dimensions say.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let name = "classifier head";
        if self.labels.len() < 2 || self.input_dim == 0 {
            return Err(bad(name, "needs at least 2 labels and a non-zero input width"));
        }
        let inner = if self.hidden_dim == 0 { self.input_dim } else { self.hidden_dim };
        let want = [
            (self.w1.len(), self.hidden_dim * self.input_dim, "cls.hidden.weight"),
            (self.b1.len(), self.hidden_dim, "cls.hidden.bias"),
            (self.w2.len(), self.labels.len() * inner, "cls.output.weight"),
            (self.b2.len(), self.labels.len(), "cls.output.bias"),
        ];
        for (have, need, what) in want {
            if have != need {
                return Err(bad(name, format!("{what} has {have} values, expected {need}")));
            }
        }
        Ok(())
    }

    /// Label scores before the softmax.
    ///
    /// # Errors
    /// `InvalidRequest` when `x` does not have `input_dim` values.
    pub fn logits(&self, x: &[f32]) -> Result<Vec<f32>, RuntimeError> {
        if x.len() != self.input_dim {
            return Err(RuntimeError::InvalidRequest(format!(
                "the head expects {}-dimensional vectors, got {} (was it trained on another encoder?)",
                self.input_dim,
                x.len()
            )));
        }
        let hidden;
        let inner: &[f32] = if self.hidden_dim == 0 {
            x
        } else {
            hidden = affine(&self.w1, &self.b1, x, true);
            &hidden
        };
        Ok(affine(&self.w2, &self.b2, inner, false))
    }

    /// Label probabilities.
    ///
    /// # Errors
    /// As [`ClassifierHead::logits`].
    pub fn probabilities(&self, x: &[f32]) -> Result<Vec<f32>, RuntimeError> {
        let mut p = self.logits(x)?;
        slm_kernels::ops::softmax_inplace(&mut p);
        Ok(p)
    }

    /// Writes the head as GGUF (atomically).
    pub fn save(&self, path: &Path) -> Result<(), RuntimeError> {
        self.validate()?;
        let mut w = GgufWriter::new();
        w.add_string("general.architecture", HEAD_ARCH);
        w.add_string("general.name", format!("classifier over {}", self.encoder));
        w.add_str_array("classifier.labels", &self.labels);
        w.add_u32("classifier.input_dim", self.input_dim as u32);
        w.add_u32("classifier.hidden_dim", self.hidden_dim as u32);
        w.add_string("classifier.encoder", self.encoder.clone());
        if let Some(p) = &self.encoder_path {
            w.add_string("classifier.encoder_path", p.clone());
        }
        let inner = if self.hidden_dim == 0 { self.input_dim } else { self.hidden_dim };
        let n = self.labels.len() as u64;
        if self.hidden_dim > 0 {
            w.add_tensor_f32("cls.hidden.weight", &[self.input_dim as u64, self.hidden_dim as u64], &self.w1)?;
            w.add_tensor_f32("cls.hidden.bias", &[self.hidden_dim as u64], &self.b1)?;
        }
        w.add_tensor_f32("cls.output.weight", &[inner as u64, n], &self.w2)?;
        w.add_tensor_f32("cls.output.bias", &[n], &self.b2)?;
        w.write_file(path)?;
        Ok(())
    }

    /// Reads a head written by [`ClassifierHead::save`].
    pub fn load(path: &Path) -> Result<ClassifierHead, RuntimeError> {
        let name = path.display().to_string();
        let file = GgufFile::open(path)?;
        let md = file.metadata();
        let arch = md.get_str("general.architecture")?;
        if arch != HEAD_ARCH {
            return Err(bad(
                &name,
                format!("is a '{arch}' model, not a classifier head (made by `slm classify --train`)"),
            ));
        }
        let to_usize = |v: u32| v as usize;
        let tensor = |t: &str| -> Result<Vec<f32>, RuntimeError> {
            let info = file.tensor(t).ok_or_else(|| bad(&name, format!("tensor {t} is missing")))?;
            if info.dtype != GgmlType::F32 {
                return Err(bad(&name, format!("tensor {t} is {} (expected F32)", info.dtype)));
            }
            Ok(file.tensor_data(info).chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let hidden_dim = to_usize(md.get_u32("classifier.hidden_dim")?);
        let (w1, b1) = if hidden_dim > 0 {
            (tensor("cls.hidden.weight")?, tensor("cls.hidden.bias")?)
        } else {
            (Vec::new(), Vec::new())
        };
        let head = ClassifierHead {
            labels: md.get_str_array("classifier.labels")?.to_vec(),
            input_dim: to_usize(md.get_u32("classifier.input_dim")?),
            hidden_dim,
            w1,
            b1,
            w2: tensor("cls.output.weight")?,
            b2: tensor("cls.output.bias")?,
            encoder: md.get_str_opt("classifier.encoder")?.unwrap_or("").to_string(),
            encoder_path: md.get_str_opt("classifier.encoder_path")?.map(str::to_string),
        };
        head.validate()?;
        Ok(head)
    }
}

/// `w · x + b` for a row-major `w` of `b.len()` rows, with ReLU when `relu`.
fn affine(w: &[f32], b: &[f32], x: &[f32], relu: bool) -> Vec<f32> {
    let cols = x.len();
    b.iter()
        .zip(w.chunks_exact(cols.max(1)))
        .map(|(&bias, row)| {
            let v = bias + slm_kernels::ops::dot_f32(row, x);
            if relu {
                v.max(0.0)
            } else {
                v
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(hidden_dim: usize) -> ClassifierHead {
        let (input_dim, n) = (3, 2);
        let inner = if hidden_dim == 0 { input_dim } else { hidden_dim };
        ClassifierHead {
            labels: vec!["spam".into(), "ham".into()],
            input_dim,
            hidden_dim,
            w1: (0..hidden_dim * input_dim).map(|i| i as f32 * 0.1 - 0.2).collect(),
            b1: vec![0.05; hidden_dim],
            w2: (0..n * inner).map(|i| 0.3 - i as f32 * 0.1).collect(),
            b2: vec![0.1, -0.1],
            encoder: "enc".into(),
            encoder_path: Some("/models/enc.gguf".into()),
        }
    }

    #[test]
    fn forward_by_hand() {
        let h = head(0);
        // w2 = [[0.3, 0.2, 0.1], [0.0, -0.1, -0.2]], x = [1, 2, 3]
        let l = h.logits(&[1.0, 2.0, 3.0]).unwrap();
        assert!((l[0] - (0.3 + 0.4 + 0.3 + 0.1)).abs() < 1e-6 && (l[1] - (-0.2 - 0.6 - 0.1)).abs() < 1e-6);
        let p = h.probabilities(&[1.0, 2.0, 3.0]).unwrap();
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6 && p[0] > p[1]);
        assert!(h.logits(&[1.0, 2.0]).is_err());
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        for hidden in [0, 4] {
            let h = head(hidden);
            let path = dir.path().join(format!("h{hidden}.gguf"));
            h.save(&path).unwrap();
            assert_eq!(ClassifierHead::load(&path).unwrap(), h);
        }
        let mut broken = head(4);
        broken.b1.pop();
        assert!(broken.save(&dir.path().join("x.gguf")).is_err());
    }
}
