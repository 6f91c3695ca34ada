//! Whole-file quantization presets ("file types"), numbered as llama.cpp's `llama_ftype` so that
//! `general.file_type` means the same thing to slm and to llama.cpp.

use slm_format::GgmlType;
use std::fmt;

/// A quantization preset for a whole model: a default tensor type plus, for the K-quant
/// mixes (`_S`/`_M`/`_L`), rules that give sensitive tensors more bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum FileType {
    /// Everything in f32.
    F32,
    /// 16-bit IEEE floats.
    F16,
    /// bfloat16.
    BF16,
    /// 4.5 bpw, symmetric 32-element blocks.
    Q4_0,
    /// 5.0 bpw, 32-element blocks with a minimum.
    Q4_1,
    /// 5.5 bpw, symmetric.
    Q5_0,
    /// 6.0 bpw, with a minimum.
    Q5_1,
    /// 8.5 bpw, symmetric.
    Q8_0,
    /// 2-bit K-quant mix (attn_v, ffn_down, attn_output get Q3_K/Q4_K).
    Q2_K,
    /// Smaller 2-bit K-quant mix.
    Q2_K_S,
    /// 3-bit K-quants throughout.
    Q3_K_S,
    /// 3-bit K-quant mix with Q4_K/Q5_K for sensitive tensors.
    Q3_K_M,
    /// 3-bit K-quant mix with Q5_K for sensitive tensors.
    Q3_K_L,
    /// 4-bit K-quants, first attn_v/ffn_down layers in Q5_K.
    Q4_K_S,
    /// 4-bit K-quant mix, half of attn_v/ffn_down in Q6_K (llama.cpp's usual recommendation).
    Q4_K_M,
    /// 5-bit K-quants throughout.
    Q5_K_S,
    /// 5-bit K-quant mix, half of attn_v/ffn_down in Q6_K.
    Q5_K_M,
    /// 6-bit K-quants throughout.
    Q6_K,
}

/// Every preset with its llama.cpp number, name and one-line description (for `--help` and errors).
const TABLE: [(FileType, u32, &str, &str); 18] = [
    (FileType::F32, 0, "F32", "32-bit floats, no loss, largest"),
    (FileType::F16, 1, "F16", "16-bit floats, ~lossless"),
    (FileType::BF16, 32, "BF16", "bfloat16, ~lossless"),
    (FileType::Q8_0, 7, "Q8_0", "8.5 bpw, near-lossless"),
    (FileType::Q6_K, 18, "Q6_K", "6.6 bpw K-quant"),
    (FileType::Q5_1, 9, "Q5_1", "6.0 bpw"),
    (FileType::Q5_K_M, 17, "Q5_K_M", "5-bit K-quant mix"),
    (FileType::Q5_K_S, 16, "Q5_K_S", "5-bit K-quants"),
    (FileType::Q5_0, 8, "Q5_0", "5.5 bpw"),
    (FileType::Q4_1, 3, "Q4_1", "5.0 bpw"),
    (FileType::Q4_K_M, 15, "Q4_K_M", "4-bit K-quant mix (recommended)"),
    (FileType::Q4_K_S, 14, "Q4_K_S", "4-bit K-quants"),
    (FileType::Q4_0, 2, "Q4_0", "4.5 bpw"),
    (FileType::Q3_K_L, 13, "Q3_K_L", "3-bit K-quant mix, larger"),
    (FileType::Q3_K_M, 12, "Q3_K_M", "3-bit K-quant mix"),
    (FileType::Q3_K_S, 11, "Q3_K_S", "3-bit K-quants"),
    (FileType::Q2_K, 10, "Q2_K", "2-bit K-quant mix"),
    (FileType::Q2_K_S, 21, "Q2_K_S", "2-bit K-quants, smallest"),
];

/// Short names that llama-quantize also accepts, mapped to the preset they mean.
const ALIASES: [(&str, FileType); 4] =
    [("Q3_K", FileType::Q3_K_M), ("Q4_K", FileType::Q4_K_M), ("Q5_K", FileType::Q5_K_M), ("FP16", FileType::F16)];

impl FileType {
    /// Every preset, from largest to smallest.
    pub fn all() -> impl Iterator<Item = FileType> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static (FileType, u32, &'static str, &'static str) {
        // TABLE lists every variant once; the fallback is unreachable but keeps this total.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The number llama.cpp writes to `general.file_type` for this preset.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// The canonical name (`Q4_K_M`).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// One-line description.
    pub fn description(self) -> &'static str {
        self.row().3
    }

    /// Parses a name (case-insensitive, llama-quantize's aliases such as `Q4_K` accepted) or a
    /// llama.cpp file-type number.
    pub fn parse(text: &str) -> Option<FileType> {
        let upper = text.trim().to_ascii_uppercase();
        if let Ok(id) = upper.parse::<u32>() {
            return TABLE.iter().find(|row| row.1 == id).map(|row| row.0);
        }
        TABLE
            .iter()
            .find(|row| row.2 == upper)
            .map(|row| row.0)
            .or_else(|| ALIASES.iter().find(|(name, _)| *name == upper).map(|(_, ft)| *ft))
    }

    /// All accepted names, comma-separated (for error messages).
    pub fn names() -> String {
        TABLE.iter().map(|row| row.2).collect::<Vec<_>>().join(", ")
    }

    /// The tensor type most weight matrices get (llama.cpp's `llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        use FileType::*;
        match self {
            F32 => GgmlType::F32,
            F16 => GgmlType::F16,
            BF16 => GgmlType::BF16,
            Q4_0 => GgmlType::Q4_0,
            Q4_1 => GgmlType::Q4_1,
            Q5_0 => GgmlType::Q5_0,
            Q5_1 => GgmlType::Q5_1,
            Q8_0 => GgmlType::Q8_0,
            Q2_K | Q2_K_S => GgmlType::Q2_K,
            Q3_K_S | Q3_K_M | Q3_K_L => GgmlType::Q3_K,
            Q4_K_S | Q4_K_M => GgmlType::Q4_K,
            Q5_K_S | Q5_K_M => GgmlType::Q5_K,
            Q6_K => GgmlType::Q6_K,
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for ft in FileType::all() {
            assert_eq!(FileType::parse(ft.name()), Some(ft));
            assert_eq!(FileType::parse(&ft.id().to_string()), Some(ft));
            assert_eq!(FileType::parse(&ft.name().to_lowercase()), Some(ft));
        }
        assert_eq!(FileType::all().count(), TABLE.len());
    }

    #[test]
    fn llama_cpp_numbers_and_aliases() {
        assert_eq!(FileType::Q4_K_M.id(), 15);
        assert_eq!(FileType::BF16.id(), 32);
        assert_eq!(FileType::Q2_K_S.id(), 21);
        assert_eq!(FileType::parse("q4_k"), Some(FileType::Q4_K_M));
        assert_eq!(FileType::parse("IQ2_XXS"), None);
        assert_eq!(FileType::parse("4"), None, "4 was Q4_1_SOME_F16, removed from llama.cpp");
    }
}
