//! Chat templates: a hostile template (loops, recursion, huge strings) rendered with hostile
//! messages must compile-or-fail and render-or-fail within the fuel and output limits — never
//! panic, hang or exhaust memory. `render_prompt`'s content ranges must lie inside the text.
//!
//! slm catches panics of the template engine inside `render` (minijinja 2.24 had some), so this
//! target replaces libFuzzer's abort-on-any-panic hook with a quiet one: a panic slm catches is an
//! error like any other, one that escapes `render` still aborts (libfuzzer-sys aborts on it).
//!
//! Input: `template \0 role \x01 content \0 role \x01 content ...` (lossy UTF-8). An input without
//! a template part renders its messages through the model-default ChatML template.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use slm_runtime::{ChatMessage, ChatTemplate, RuntimeError};

fuzz_target!(|data: &[u8]| {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or_default();
    let messages: Vec<ChatMessage> = parts
        .take(64)
        .map(|m| {
            let (role, content) = m.split_once('\u{1}').unwrap_or(("user", m));
            ChatMessage::new(role, content)
        })
        .collect();
    let template = if source.is_empty() {
        ChatTemplate::chatml("<s>", "</s>")
    } else {
        ChatTemplate::new(source, "<s>", "</s>")
    };
    let Ok(mut template) = template else {
        return;
    };
    template.set_now_unix(Some(1_700_000_000));
    // A render that runs out of fuel or output has done the most work allowed (~2 s under ASan);
    // the three renders below would do it again for the same outcome, and the per-input timeout
    // is wall-clock time on a shared machine. Stop there.
    if let Err(RuntimeError::TemplateRender { reason }) = template.render(&messages, false) {
        if reason.contains("out of fuel") || reason.contains("exceeds") {
            return;
        }
    }
    let Ok(prompt) = template.render_prompt(&messages, true) else {
        return;
    };
    for r in &prompt.content_ranges {
        assert!(
            r.start <= r.end && r.end <= prompt.text.len(),
            "range {r:?} outside the text"
        );
        assert!(prompt.text.is_char_boundary(r.start) && prompt.text.is_char_boundary(r.end));
    }
    let extra = serde_json::json!({"tools": [{"type": "function", "function": {"name": "f"}}]});
    let _ = template.render_with_context(&messages, true, &extra);
});
