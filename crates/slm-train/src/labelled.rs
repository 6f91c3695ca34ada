//! Labelled text for classifiers: JSON Lines (`{"text": ..., "label": ...}` per line) or CSV/TSV
//! with a header row naming a `text` and a `label` column (quoted fields, embedded newlines).

use std::path::Path;

use crate::error::TrainError;

/// One labelled example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its label.
    pub label: String,
}

fn bad(path: &Path, line: usize, reason: impl std::fmt::Display) -> TrainError {
    TrainError::InvalidArgument(format!("{}:{line}: {reason}", path.display()))
}

/// Reads examples from `path`: `.csv` / `.tsv` as delimited text, anything else as JSON Lines.
/// A label may be a string, a number or a boolean (`true`/`1` → `"true"`/`"1"`).
pub fn read_labelled(path: &Path) -> Result<Vec<Example>, TrainError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let examples = match ext.as_deref() {
        Some("csv") => read_delimited(path, b',')?,
        Some("tsv") => read_delimited(path, b'\t')?,
        _ => read_jsonl(path)?,
    };
    if examples.is_empty() {
        return Err(TrainError::InvalidArgument(format!("{}: no labelled examples", path.display())));
    }
    Ok(examples)
}

fn read_jsonl(path: &Path) -> Result<Vec<Example>, TrainError> {
    let content = std::fs::read_to_string(path).map_err(|e| bad(path, 0, e))?;
    let mut out = Vec::new();
    for (i, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(path, i + 1, format!("not JSON: {e}")))?;
        let text = v.get("text").and_then(|t| t.as_str()).ok_or_else(|| bad(path, i + 1, "no \"text\" string"))?;
        let label = match v.get("label") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(n @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => n.to_string(),
            _ => return Err(bad(path, i + 1, "no \"label\" (string, number or boolean)")),
        };
        out.push(Example { text: text.to_string(), label });
    }
    Ok(out)
}

fn read_delimited(path: &Path, delimiter: u8) -> Result<Vec<Example>, TrainError> {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_path(path).map_err(|e| bad(path, 0, e))?;
    let headers = reader.headers().map_err(|e| bad(path, 1, e))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let (Some(t), Some(l)) = (col("text"), col("label")) else {
        return Err(bad(path, 1, format!("the header row needs \"text\" and \"label\" columns (found {headers:?})")));
    };
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(path, i + 2, e))?;
        let (Some(text), Some(label)) = (record.get(t), record.get(l)) else {
            return Err(bad(path, i + 2, "missing the text or label field"));
        };
        out.push(Example { text: text.to_string(), label: label.trim().to_string() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("d.jsonl");
        std::fs::write(&j, "{\"text\": \"win money\", \"label\": \"spam\"}\n\n{\"text\": \"hi\", \"label\": 0}\n")
            .unwrap();
        let got = read_labelled(&j).unwrap();
        assert_eq!(got[0], Example { text: "win money".into(), label: "spam".into() });
        assert_eq!(got[1].label, "0");
        let c = dir.path().join("d.csv");
        std::fs::write(&c, "id,label,text\n1,ham,\"hello, \"\"friend\"\"\nsee you\"\n2,spam,buy now\n").unwrap();
        let got = read_labelled(&c).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "hello, \"friend\"\nsee you");
        assert_eq!(got[1], Example { text: "buy now".into(), label: "spam".into() });
        std::fs::write(&c, "a,b\n1,2\n").unwrap();
        assert!(read_labelled(&c).unwrap_err().to_string().contains("\"text\" and \"label\""));
        std::fs::write(&j, "{\"text\": 1}\n").unwrap();
        assert!(read_labelled(&j).is_err());
    }
}
