//! The Python methods chat templates call on strings and dicts (`content.strip()`,
//! `message.get('tool_calls')`, `tools.items()`, ...), which minijinja does not have natively.
//!
//! Installed as minijinja's unknown-method callback; anything not listed here stays an
//! "unknown method" error. Semantics follow CPython (indices count code points).
//!
//! Templates are hostile input: minijinja charges fuel for the string a method is called on and
//! for the value it returns, but not for the work in between, so every method here is linear in
//! its inputs, charges fuel for items it visits in an argument (which may be a lazy 10^8-item
//! `[x] * n`), and charges for what it is about to allocate *before* allocating it.

use minijinja::value::{Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

/// The unknown-method callback.
pub(crate) fn call_method(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => string_method(state, value.as_str().unwrap_or(""), method, args),
        ValueKind::Map => map_method(state, value, method, args),
        _ => Err(unknown(value, method)),
    }
}

fn unknown(value: &Value, method: &str) -> Error {
    Error::new(ErrorKind::UnknownMethod, format!("{} has no method named {method}", value.kind()))
}

fn bad_args(method: &str, expected: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{method}() expects {expected}"))
}

/// Fuel for `bytes` bytes about to be allocated (minijinja counts 64 bytes per fuel).
fn charge_bytes(state: &State, bytes: usize) -> Result<(), Error> {
    state.consume_fuel(u64::try_from(bytes / 64).unwrap_or(u64::MAX).saturating_add(1))
}

/// Fuel for `n` list items about to be created or visited (one fuel each: a `Value` plus its
/// string is ~64 bytes).
fn charge_items(state: &State, n: usize) -> Result<(), Error> {
    state.consume_fuel(u64::try_from(n).unwrap_or(u64::MAX).saturating_add(1))
}

/// Argument `i` as a string, if present and a string.
fn str_arg(args: &[Value], i: usize) -> Option<&str> {
    args.get(i).and_then(Value::as_str)
}

fn string_method(state: &mut State, s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    // A sorted set, so that stripping is O(n log k), not O(n * k) for a long `chars` argument.
    let chars_pred = |set: Option<&str>| {
        let set = set.map(|set| {
            let mut chars: Vec<char> = set.chars().collect();
            chars.sort_unstable();
            chars.dedup();
            chars
        });
        move |c: char| match &set {
            Some(set) => set.binary_search(&c).is_ok(),
            None => c.is_whitespace(),
        }
    };
    let none_or_str = |i: usize| -> Result<Option<&str>, Error> {
        match args.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() || v.is_undefined() => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| bad_args(method, "a string argument")),
        }
    };
    Ok(match method {
        "strip" => Value::from(s.trim_matches(chars_pred(none_or_str(0)?))),
        "lstrip" => Value::from(s.trim_start_matches(chars_pred(none_or_str(0)?))),
        "rstrip" => Value::from(s.trim_end_matches(chars_pred(none_or_str(0)?))),
        "upper" => {
            charge_bytes(state, s.len())?;
            Value::from(s.to_uppercase())
        }
        "lower" => {
            charge_bytes(state, s.len())?;
            Value::from(s.to_lowercase())
        }
        "title" => state.apply_filter("title", &[Value::from(s)])?,
        "capitalize" => {
            charge_bytes(state, s.len())?;
            let mut chars = s.chars();
            let first: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
            Value::from(first + &chars.as_str().to_lowercase())
        }
        "startswith" | "endswith" => {
            let arg = args.first().ok_or_else(|| bad_args(method, "a prefix"))?;
            let test = |p: &str| if method == "startswith" { s.starts_with(p) } else { s.ends_with(p) };
            let hit = match arg.as_str() {
                Some(p) => test(p),
                // A tuple/list of alternatives (charged per item: it may be a lazy `[x] * n`).
                None => {
                    let mut hit = false;
                    for p in arg.try_iter()? {
                        state.consume_fuel(1)?;
                        if p.as_str().is_some_and(test) {
                            hit = true;
                            break;
                        }
                    }
                    hit
                }
            };
            Value::from(hit)
        }
        "split" | "rsplit" => {
            let sep = none_or_str(0)?;
            let maxsplit = args.get(1).and_then(Value::as_i64).filter(|&n| n >= 0);
            // Count first (no allocation): `'a ' * 50000000` splits into 5*10^7 values.
            charge_items(state, count_parts(s, sep, maxsplit))?;
            Value::from(python_split(s, sep, maxsplit, method == "rsplit").map_err(|m| bad_args(method, m))?)
        }
        "splitlines" => {
            charge_items(state, s.lines().count())?;
            Value::from(s.lines().map(Value::from).collect::<Vec<_>>())
        }
        "replace" => {
            let (Some(old), Some(new)) = (str_arg(args, 0), str_arg(args, 1)) else {
                return Err(bad_args(method, "two strings"));
            };
            let limit = match args.get(2).and_then(Value::as_i64).filter(|&n| n >= 0) {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => usize::MAX,
            };
            // The result's size, charged before it is built: `s.replace('', 'x' * 10**8)` inserts
            // the new text at every character boundary.
            let hits = if old.is_empty() { s.chars().count() + 1 } else { s.matches(old).count() }.min(limit);
            let size = hits
                .checked_mul(new.len())
                .and_then(|added| s.len().saturating_sub(hits.saturating_mul(old.len())).checked_add(added))
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "replace(): the result is too large"))?;
            charge_bytes(state, size)?;
            Value::from(s.replacen(old, new, limit))
        }
        "find" | "rfind" | "index" => {
            let sub = str_arg(args, 0).ok_or_else(|| bad_args(method, "a string"))?;
            let pos = if method == "rfind" { s.rfind(sub) } else { s.find(sub) };
            match pos {
                Some(byte) => Value::from(s.get(..byte).map_or(0, |p| p.chars().count())),
                None if method == "index" => {
                    return Err(Error::new(ErrorKind::InvalidOperation, "substring not found"));
                }
                None => Value::from(-1),
            }
        }
        "count" => {
            let sub = str_arg(args, 0).ok_or_else(|| bad_args(method, "a string"))?;
            Value::from(if sub.is_empty() { s.chars().count() + 1 } else { s.matches(sub).count() })
        }
        // minijinja's `join` filter charges fuel per item and for the output as it grows.
        "join" => {
            let items = args.first().ok_or_else(|| bad_args(method, "an iterable"))?;
            state.apply_filter("join", &[items.clone(), Value::from(s)])?
        }
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_numeric())),
        "isalpha" => Value::from(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isspace" => Value::from(!s.is_empty() && s.chars().all(char::is_whitespace)),
        "isupper" => Value::from(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_lowercase)),
        "islower" => Value::from(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_uppercase)),
        _ => return Err(unknown(&Value::from(s), method)),
    })
}

/// An upper bound of the number of parts [`python_split`] returns, without allocating.
fn count_parts(s: &str, sep: Option<&str>, maxsplit: Option<i64>) -> usize {
    let all = match sep {
        Some("") => 0,
        Some(sep) => s.matches(sep).count() + 1,
        None => s.split_whitespace().count(),
    };
    match maxsplit.and_then(|n| usize::try_from(n).ok()) {
        Some(n) => all.min(n.saturating_add(1)),
        None => all,
    }
}

/// Python's `str.split` / `str.rsplit`.
fn python_split(s: &str, sep: Option<&str>, maxsplit: Option<i64>, from_right: bool) -> Result<Vec<Value>, &'static str> {
    let limit = maxsplit.and_then(|n| usize::try_from(n).ok()).map(|n| n.saturating_add(1));
    let parts: Vec<&str> = match (sep, limit, from_right) {
        (Some(""), _, _) => return Err("a non-empty separator"),
        (Some(sep), None, _) => s.split(sep).collect(),
        (Some(sep), Some(n), false) => s.splitn(n, sep).collect(),
        (Some(sep), Some(n), true) => {
            let mut v: Vec<&str> = s.rsplitn(n, sep).collect();
            v.reverse();
            v
        }
        // No separator: runs of whitespace, leading/trailing ignored.
        (None, None, _) => s.split_whitespace().collect(),
        (None, Some(n), false) => {
            let mut out = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() {
                if out.len() + 1 == n {
                    out.push(rest);
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                out.push(&rest[..end]);
                rest = rest[end..].trim_start();
            }
            out
        }
        (None, Some(_), true) => s.split_whitespace().collect(),
    };
    Ok(parts.into_iter().map(Value::from).collect())
}

fn map_method(state: &State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    if matches!(method, "items" | "keys" | "values") {
        charge_items(state, value.len().unwrap_or(0))?;
    }
    Ok(match method {
        "items" => {
            let mut out = Vec::new();
            for key in value.try_iter()? {
                let v = value.get_item(&key)?;
                out.push(Value::from(vec![key, v]));
            }
            Value::from(out)
        }
        "keys" => Value::from(value.try_iter()?.collect::<Vec<_>>()),
        "values" => {
            let mut out = Vec::new();
            for key in value.try_iter()? {
                out.push(value.get_item(&key)?);
            }
            Value::from(out)
        }
        "get" => {
            let key = args.first().ok_or_else(|| bad_args(method, "a key"))?;
            let v = value.get_item(key)?;
            if v.is_undefined() {
                args.get(1).cloned().unwrap_or(Value::from(()))
            } else {
                v
            }
        }
        _ => return Err(unknown(value, method)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: Value) -> String {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(call_method);
        env.render_str(src, ctx).unwrap()
    }

    #[test]
    fn string_methods() {
        let ctx = minijinja::context! { s => "  Hello World  ", csv => "a,b,,c" };
        assert_eq!(render("[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}]", ctx.clone()), "[Hello World][Hello World  ][  Hello World]");
        assert_eq!(render("{{ 'xxhixx'.strip('x') }} {{ s.upper() }} {{ s.lower() }}", ctx.clone()), "hi   HELLO WORLD     hello world  ");
        assert_eq!(render("{{ s.strip().startswith('Hell') }} {{ s.strip().endswith(('x', 'ld')) }}", ctx.clone()), "True True");
        assert_eq!(render("{{ csv.split(',') }} {{ csv.split(',', 1) }} {{ csv.rsplit(',', 1) }}", ctx.clone()),
            r#"['a', 'b', '', 'c'] ['a', 'b,,c'] ['a,b,', 'c']"#);
        assert_eq!(render("{{ s.split() }} {{ ' a  b c '.split(None, 1) }}", ctx.clone()), r#"['Hello', 'World'] ['a', 'b c ']"#);
        assert_eq!(render("{{ 'aXbXc'.replace('X', '-') }} {{ 'aXbXc'.replace('X', '-', 1) }}", ctx.clone()), "a-b-c a-bXc");
        assert_eq!(render("{{ 'héllo'.find('l') }} {{ 'abc'.find('z') }} {{ 'abab'.count('ab') }}", ctx.clone()), "2 -1 2");
        assert_eq!(render("{{ ', '.join(['a', 'b']) }} {{ 'hELLO'.capitalize() }}", ctx), "a, b Hello");
    }

    #[test]
    fn map_methods() {
        let ctx = minijinja::context! { m => minijinja::context! { a => 1, b => "x" } };
        assert_eq!(render("{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}", ctx.clone()), "a=1;b=x;");
        assert_eq!(render("{{ m.keys() }} {{ m.values() }}", ctx.clone()), r#"['a', 'b'] [1, 'x']"#);
        assert_eq!(render("{{ m.get('a') }} {{ m.get('z') }} {{ m.get('z', 'dflt') }}", ctx), "1 None dflt");
    }

    #[test]
    fn unknown_methods_still_fail() {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(call_method);
        let err = env.render_str("{{ 'a'.frobnicate() }}", ()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownMethod);
    }
}
