//! Inputs found by the fuzz targets (fuzz/fuzz_targets/) that once crashed slm-runtime. Each must
//! now give a typed error; see docs/RELIABILITY.md.

use slm_runtime::{RuntimeError, Tokenizer};

/// fuzz target `tokenizer_json`: a syntax error inside the `"decoder"` object made tokenizers 0.22
/// panic (`expect("Helper")` in its decoder deserializer) instead of returning an error.
#[test]
fn tokenizer_json_with_broken_decoder_object_is_an_error_not_a_panic() {
    let cases: &[&[u8]] = &[
        br#"{"decoder":{"type":"ByteLevel" "x":1},"model":{"type":"BPE","vocab":{},"merges":[]}}"#,
        br###"{"version":"1.0","decoder":{"type":"WordPiece","prefix":"##","cleanup":tru},"model":{}}"###,
        br#"{"decoder":{"#,
        // A lone surrogate escape: skipped unchecked by `IgnoredAny`, fatal inside tokenizers.
        br#"{"decoder":{"type":"Replace","pattern":{"String":"\udc00"},"content":""},"model":{}}"#,
    ];
    for json in cases {
        let result = std::panic::catch_unwind(|| Tokenizer::from_hf_bytes(json, None));
        let text = String::from_utf8_lossy(json);
        match result {
            Ok(Err(RuntimeError::Json { reason, .. })) => assert!(!reason.is_empty(), "{text}"),
            Ok(Err(other)) => panic!("{text}: expected a JSON error, got {other:?}"),
            Ok(Ok(_)) => panic!("{text}: malformed JSON was accepted"),
            Err(_) => panic!("{text}: loading panicked"),
        }
    }
}

/// The check that rejects malformed JSON must not reject valid files: a well-formed minimal
/// byte-level BPE tokenizer still loads and round-trips text.
#[test]
fn valid_tokenizer_json_still_loads() {
    let json = br#"{"version":"1.0","added_tokens":[{"id":0,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],"normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},"post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"vocab":{"<|endoftext|>":0,"h":1,"e":2,"l":3,"o":4,"he":5,"ll":6,"hell":7,"hello":8},"merges":["h e","l l","he ll","hell o"]}}"#;
    let tok = Tokenizer::from_hf_bytes(json, None).expect("a valid tokenizer.json loads");
    let ids = tok.encode("hello", false).expect("encodes");
    assert_eq!(ids, vec![8]);
    assert_eq!(tok.decode(&ids, false), "hello");
}

/// fuzz target `chat_template`: minijinja 2.24 indexed out of bounds when an empty string or list
/// was sliced backwards (`''[::-1]`), and `'abc'[0:2:-1]` underflowed; a template in a model file
/// crashed the process. slm catches an engine panic as a render error; minijinja 3 slices these
/// like Python (empty results).
#[test]
fn template_slicing_an_empty_value_backwards_does_not_panic() {
    use slm_runtime::{ChatMessage, ChatTemplate};
    for source in [
        "{{ ''[::-1] }}",
        "{% for m in messages %}{{ m.content[::-1] }}{% endfor %}",
        "{{ 'abc'[0:2:-1] }}{{ [][::-1]|length == 0 }}",
    ] {
        let template = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
        let messages = [ChatMessage::new("user", "")];
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| template.render(&messages, true)));
        match result {
            Ok(Ok(text)) => assert!(text.is_empty() || text == "True", "{source}: {text:?}"),
            Ok(Err(RuntimeError::TemplateRender { reason })) => assert!(reason.contains("template"), "{reason}"),
            Ok(Err(other)) => panic!("{source}: unexpected error {other:?}"),
            Err(_) => panic!("{source}: rendering panicked"),
        }
    }
    // Reversing a non-empty string still works.
    let template = ChatTemplate::new("{{ messages[0].content[::-1] }}", "", "").expect("compiles");
    assert_eq!(
        template
            .render(&[ChatMessage::new("user", "abc")], false)
            .expect("renders"),
        "cba"
    );
}

/// fuzz target `tokenizer_json`: an 845-byte `tokenizer.json` with one token id of 32 million (or
/// 4 billion) made the loader allocate per-id tables for every id up to it (out of memory). Ids far
/// beyond the token count must be refused before anything is allocated.
#[test]
fn tokenizer_json_with_a_huge_token_id_is_refused() {
    for id in [32_222_222u64, u32::MAX as u64] {
        let json = format!(
            r#"{{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":{{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}},"post_processor":null,"decoder":{{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true}},"model":{{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"vocab":{{"h":0,"e":{id},"he":1}},"merges":["h e"]}}}}"#
        );
        match Tokenizer::from_hf_bytes(json.as_bytes(), None) {
            Err(RuntimeError::InvalidVocab { reason, .. }) => assert!(reason.contains("not dense"), "{reason}"),
            Err(other) => panic!("id {id}: expected InvalidVocab, got {other:?}"),
            Ok(_) => panic!("id {id}: a sparse vocabulary was accepted"),
        }
    }
}

/// fuzz target `chat_template` (timeout): `{{ range(100000) * 1000000 }}` prints a lazy sequence
/// of 10^11 items in one instruction, which fuel did not interrupt in minijinja 2; it went on
/// iterating after the output limit had failed the write, so rendering never ended. minijinja 3
/// refuses to repeat a sequence past 10^8 items, and printing a sequence longer than
/// `MAX_PRINTED_ITEMS` is a render error, returned at once.
#[test]
fn printing_a_huge_repeated_sequence_is_an_error_not_a_hang() {
    use slm_runtime::chat_template::MAX_PRINTED_ITEMS;
    use slm_runtime::{ChatMessage, ChatTemplate};
    let messages = [ChatMessage::new("user", "hi")];
    let t0 = std::time::Instant::now();
    for (source, expected) in [
        ("{{ range(100000) * 1000000 }}", "too large"),
        ("{{ messages * 1000000000 }}", "too large"),
        ("{% set x = range(100000) * 11 %}{{ x }}", &*MAX_PRINTED_ITEMS.to_string()),
    ] {
        let template = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
        match template.render(&messages, true) {
            Err(RuntimeError::TemplateRender { reason }) => assert!(reason.contains(expected), "{source}: {reason}"),
            other => panic!("{source}: expected a render error, got {other:?}"),
        }
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t0.elapsed());
    // Sequences up to the limit still print (Python's list format).
    let template = ChatTemplate::new("{{ range(3) * 2 }}|{{ [1, 'a'] }}", "", "").expect("compiles");
    assert_eq!(template.render(&messages, false).expect("renders"), "[0, 1, 2, 0, 1, 2]|[1, 'a']");
}

/// Renders each hostile template and checks that it gives the expected result (`Some(text)`, or
/// a render error for `None`) within `limit`.
fn assert_bounded(cases: &[(&str, Option<&str>)], limit: std::time::Duration) {
    use slm_runtime::{ChatMessage, ChatTemplate};
    let messages = [ChatMessage::new("user", "hi")];
    for (source, expected) in cases {
        let template = ChatTemplate::new(source, "<s>", "</s>").expect("compiles");
        let t0 = std::time::Instant::now();
        let result = template.render(&messages, true);
        let took = t0.elapsed();
        match (expected, &result) {
            (Some(text), Ok(out)) => assert_eq!(out, text, "{source}"),
            (None, Err(RuntimeError::TemplateRender { .. })) => {}
            _ => panic!("{source}: expected {expected:?}, got {result:?}"),
        }
        assert!(took < limit, "{source}: took {took:?}");
    }
}

/// [`assert_bounded`] for templates that must all fail.
fn assert_bounded_failures(cases: &[&str], limit: std::time::Duration) {
    let cases: Vec<(&str, Option<&str>)> = cases.iter().map(|&c| (c, None)).collect();
    assert_bounded(&cases, limit);
}

/// fuzz target `chat_template` (timeout, finding 8): minijinja 2 counted fuel per instruction,
/// but `[] * 1000000000` in a `for` walked 10^9 empty repetitions inside one instruction, so a
/// few fuel per outer iteration bought unbounded time. minijinja 3 charges fuel for the items and
/// bytes an instruction visits or creates (and `[] * n` is empty at once). The same class:
/// strings repeated in a loop (100 MB each), doubled strings, filters over a lazy 10^8-item
/// sequence, `in` and `sum` over a big list in a loop.
#[test]
fn work_inside_one_instruction_is_charged_to_the_fuel() {
    // Finding 8 itself: `[] * n` is an empty list at once, so this renders nothing, quickly.
    let finding_8 = "{% for i in range(100000) %}{% for j in [] * 1000000000 %}{% endfor %}{% endfor %}";
    assert_bounded(&[(finding_8, Some(""))], std::time::Duration::from_secs(10));
    assert_bounded_failures(
        &[
            "{% for i in range(100000) %}{% for j in [[]] * 100000000 %}{% for k in j %}{% endfor %}{% endfor %}{% endfor %}",
            "{% for i in range(100000) %}{% for j in [1] * 100000000 %}{% endfor %}{% endfor %}",
            "{% for i in range(100000) %}{% set x = 'a' * 100000000 %}{% endfor %}",
            "{% for i in range(100000) %}{% set x = 'a' * 10000000 %}{% endfor %}",
            "{% set ns = namespace(x='a' * 1000000) %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
            "{{ ([1] * 100000000)|join }}",
            "{{ ([1] * 100000000)|list|length }}",
            "{{ ([1] * 100000000)|sum }}",
            "{% set x = range(100000)|list %}{% for i in range(100000) %}{% if x|sum %}{% endif %}{% endfor %}",
            "{% set x = range(100000)|list %}{% for i in range(100000) %}{% if 99999 in x %}{% endif %}{% endfor %}",
            "{% set x = range(100000)|list %}{% for i in range(100000) %}{% if x|sort %}{% endif %}{% endfor %}",
        ],
        std::time::Duration::from_secs(10),
    );
}

/// Finding 9 (found while fixing finding 8): minijinja 3.1 builds `a + b` of sequences and
/// `a|chain(b)` as lazy merges, and reusing one merge twice doubles it: 40 instructions stand for
/// 2^40 parts, which every iteration, `in` or lookup walked inside one instruction (empty parts
/// pay no fuel), and past 32 levels `+` materialized it item by item (hang, gigabytes). Fixed in
/// the patched copy third_party/minijinja (SLM-PATCH.md): merges are bounded to 64 parts.
#[test]
fn doubling_a_lazy_concatenation_is_bounded() {
    let limit = std::time::Duration::from_secs(10);
    let double = |init: &str, op: &str, n: usize, after: &str| {
        format!("{{% set ns = namespace(x={init}) %}}{{% for i in range({n}) %}}{{% set ns.x = {op} %}}{{% endfor %}}{after}")
    };
    let empty_loop = double("[]", "ns.x + ns.x", 30, "{% for i in range(100000) %}{% for j in ns.x %}{% endfor %}{% endfor %}");
    let empty_in = double("[]", "ns.x + ns.x", 40, "{{ 1 in ns.x }}|{{ ns.x|length }}");
    assert_bounded(&[(&*empty_loop, Some("")), (&*empty_in, Some("False|0"))], limit);
    let failing = [
        double("range(1000)", "ns.x + ns.x", 60, "{{ ns.x|length }}"),
        double("[1]", "ns.x + ns.x", 60, "{{ ns.x|sum }}"),
        double("[1]", "ns.x|chain(ns.x)", 60, "{{ ns.x|length }}"),
        double("{'a': 1}", "ns.x|chain(ns.x)", 60, "{{ ns.x.b }}"),
    ];
    assert_bounded_failures(&failing.iter().map(String::as_str).collect::<Vec<_>>(), limit);
    // Appending in a loop and ordinary concatenation still work.
    let append = double("[]", "ns.x + [i]", 3000, "{{ ns.x|length }} {{ ns.x|sum }} {{ ns.x[2999] }}");
    let ordinary = "{{ ([1, 2]|chain([3], 'ab'))|list }} {{ ([] + [1] + [] + [2])|list }} {{ ({'a': 1}|chain({'b': 2})).b }}";
    assert_bounded(&[(&*append, Some("3000 4498500 2999")), (ordinary, Some("[1, 2, 3, 'a', 'b'] [1, 2] 2"))], limit);
}

/// Finding 10 (found while fixing finding 9): a namespace holding itself (`{% set ns.x = [ns] %}`)
/// made printing or `tojson` recurse without end, and values nested tens of thousands of levels
/// deep (`ns.x = [ns.x]` in a loop, `|batch(1)` chains) overflowed the stack when printed or
/// dropped — an abort, not an error. The patched minijinja (third_party/minijinja/SLM-PATCH.md)
/// refuses cycles and nesting past 200 levels. Without the fix this test aborts.
#[test]
fn cyclic_and_deeply_nested_values_are_refused() {
    use slm_runtime::ChatTemplate;
    let limit = std::time::Duration::from_secs(10);
    // Expressions whose syntax tree alone is too deep to compile (the compiler recursed per level).
    for source in [
        format!("{{{{ [1]{} }}}}", "|batch(1)".repeat(20_000)),
        format!("{{{{ 1{} }}}}", " + 1".repeat(20_000)),
        format!("{{{{ x{} }}}}", ".a".repeat(20_000)),
        format!("{{{{ {}1 }}}}", "not ".repeat(20_000)),
        format!("{{{{ {}1 }}}}", "-".repeat(50_000)),
    ] {
        match ChatTemplate::new(&source, "", "") {
            Err(RuntimeError::TemplateInvalid { reason }) => assert!(reason.contains("deep") || reason.contains("recursion"), "{reason}"),
            other => panic!("{}...: expected TemplateInvalid, got {other:?}", &source[..40]),
        }
    }
    let chain = format!("{{{{ [1]{} }}}}", "|batch(1)".repeat(300));
    let failing = [
        "{% set ns = namespace(x=1) %}{% set ns.x = [ns] %}{{ ns }}",
        "{% set ns = namespace(x=1) %}{% set ns.x = {'a': [ns]} %}{{ ns.x|tojson }}",
        "{% set a = namespace(x=1) %}{% set b = namespace(x=[a]) %}{% set a.x = [b] %}{{ a }}",
        "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x|length }}",
        "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = ns.x + [ns.x] %}{% endfor %}",
        "{% set ns = namespace(x={}) %}{% for i in range(100000) %}{% set ns.x = {'k': ns.x} %}{% endfor %}",
        "{% macro f(x, n) %}{% if n %}{{ f([[[[[[[[[[x]]]]]]]]]], n - 1) }}{% else %}{{ x }}{% endif %}{% endmacro %}{{ f(1, 400) }}",
        &chain,
    ];
    assert_bounded_failures(&failing, limit);
    // Nesting up to the limit, namespaces inside lists, long flat chains and ordinary structures
    // still work.
    let sum = format!("{{{{ 1{} }}}}", " + 1".repeat(900));
    assert_bounded(&[(&*sum, Some("901"))], limit);
    let ok = "{% set ns = namespace(x=[]) %}{% for i in range(150) %}{% set ns.x = [ns.x] %}{% endfor %}\
              {{ ns.x|length }} {% set other = namespace(v=2) %}{% set ns.y = [other, {'a': [1, (2, 3)]}] %}\
              {{ ns.y[0].v }} {{ ns.y[1] }}";
    assert_bounded(&[(ok, Some("1 2 {'a': [1, (2, 3)]}"))], limit);
}

/// slm's own template methods and `tojson` (chat_template/pycompat.rs, pyjson.rs) charge fuel for
/// the items they visit and what they allocate, before allocating: found while fixing finding 8.
#[test]
fn python_methods_and_tojson_are_charged_before_they_allocate() {
    assert_bounded_failures(
        &[
            // 5*10^7 parts would be ~4 GB of values.
            "{{ ('a ' * 50000000).split()|length }}",
            "{{ ('a\n' * 50000000).splitlines()|length }}",
            // 10^6 insertions of 10^5 bytes: 100 GB.
            "{{ ('a' * 1000000).replace('', 'b' * 100000)|length }}",
            "{{ ', '.join([''] * 100000000)|length }}",
            "{{ 'x'.startswith(['y'] * 100000000) }}",
            "{{ ([[1]] * 100000000)|tojson|length }}",
            "{{ [[[1]]]|tojson(indent=1000000000)|length }}",
            "{% for i in range(100000) %}{% if ('a' * 1000000).strip() %}{% endif %}{% endfor %}",
        ],
        std::time::Duration::from_secs(10),
    );
    // Ordinary uses still work, and stripping with a long character set is fast (sorted set).
    use slm_runtime::{ChatMessage, ChatTemplate};
    let source = "{{ ('ab' * 500000).strip('b' * 100000 ~ 'a')|length }} {{ 'a,b'.split(',') }} {{ '-'.join(['x', 'y']) }} \
                  {{ 'aXa'.replace('X', 'yy') }} {{ 'ab'.replace('', '.') }} {{ {'k': [1]}|tojson(indent=1) }}";
    let template = ChatTemplate::new(source, "", "").expect("compiles");
    let t0 = std::time::Instant::now();
    let out = template.render(&[ChatMessage::new("user", "hi")], false).expect("renders");
    assert_eq!(out, "0 ['a', 'b'] x-y ayya .a.b. {\n \"k\": [\n  1\n ]\n}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(5), "took {:?}", t0.elapsed());
}

/// fuzz target `wordpiece_json` (panic in tokenizers 0.22.2, processors/template.rs:563): a
/// `TemplateProcessing` post-processor whose template names a special token (`{CLS]`) missing
/// from its `special_tokens` loaded fine and panicked on the first encode. Both loaders (decoder
/// `Tokenizer` and encoder `EncoderTokenizer`) now refuse it with `InvalidVocab`.
#[test]
fn template_post_processor_naming_a_missing_special_token_is_refused() {
    use slm_runtime::EncoderTokenizer;
    let json = |cls: &str| {
        format!(
            r###"{{"version":"1.0","added_tokens":[{{"id":2,"content":"[CLS]","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}}],"normalizer":null,"pre_tokenizer":{{"type":"BertPreTokenizer"}},"post_processor":{{"type":"TemplateProcessing","single":[{{"SpecialToken":{{"id":"{cls}","type_id":0}}}},{{"Sequence":{{"id":"A","type_id":0}}}}],"pair":[{{"Sequence":{{"id":"A","type_id":0}}}}],"special_tokens":{{"[CLS]":{{"id":"[CLS]","ids":[2],"tokens":["[CLS]"]}}}}}},"decoder":null,"model":{{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{{"[UNK]":0,"hello":1,"[CLS]":2}}}}}}"###
        )
    };
    let bad = json("{CLS]");
    match EncoderTokenizer::from_json_bytes(bad.as_bytes(), 16) {
        Err(RuntimeError::InvalidVocab { reason, .. }) => assert!(reason.contains("{CLS]"), "{reason}"),
        other => panic!("expected InvalidVocab, got {other:?}"),
    }
    match Tokenizer::from_hf_bytes(bad.as_bytes(), None) {
        Err(RuntimeError::InvalidVocab { reason, .. }) => assert!(reason.contains("{CLS]"), "{reason}"),
        other => panic!("expected InvalidVocab, got {:?}", other.map(|_| ())),
    }
    // A single template with sequence B (tokenizers indexed a second encoding: out of bounds).
    let with_b = json("[CLS]").replace(r#"{"Sequence":{"id":"A","type_id":0}}],"pair""#, r#"{"Sequence":{"id":"B","type_id":0}}],"pair""#);
    assert_ne!(with_b, json("[CLS]"));
    match EncoderTokenizer::from_json_bytes(with_b.as_bytes(), 16) {
        Err(RuntimeError::InvalidVocab { reason, .. }) => assert!(reason.contains("sequence B"), "{reason}"),
        other => panic!("expected InvalidVocab, got {other:?}"),
    }
    // Also when the "type" tag is misspelt (tokenizers matches the processor by its fields).
    let untagged = bad.replace(r#""type":"TemplateProcessing""#, r#""tyqe":"TemplateProcessing""#);
    assert_ne!(untagged, bad);
    assert!(matches!(
        EncoderTokenizer::from_json_bytes(untagged.as_bytes(), 16),
        Err(RuntimeError::InvalidVocab { .. })
    ));
    // The consistent template still loads and puts [CLS] first.
    let good = EncoderTokenizer::from_json_bytes(json("[CLS]").as_bytes(), 16).expect("loads");
    assert_eq!(good.encode("hello").expect("encodes"), vec![2, 1]);
}
