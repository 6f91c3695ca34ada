//! The server under stress with the real model: clients that disconnect mid-answer, a full
//! queue, concurrent clients (each must get its own answer), graceful shutdown with a stream in
//! flight, and raw hostile bytes on the socket.
//!
//! Needs `SLM_TEST_MODEL` (skips with a note otherwise, unless `SLM_REQUIRE_MODEL=1`).

mod common;

use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CHAT: &str = "/v1/chat/completions";

/// A streamed request that runs for `n` tokens unless cancelled.
fn long_stream(n: u64) -> String {
    json!({"messages": [{"role": "user", "content": "Count to one thousand."}], "max_tokens": n,
           "ignore_eos": true, "stream": true, "temperature": 0})
    .to_string()
}

fn addr(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// Polls `cond` for up to 30 s.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn disconnect_cancels_the_generation() {
    let Some(t) = start(Opts::default()) else {
        return;
    };
    let mut s = raw_post(addr(&t.base), CHAT, &long_stream(900));
    let head = read_until(&mut s, "data: {");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(s);
    eventually("the cancellation to be counted", || {
        metric(&t.base, "slm_requests_cancelled_total") >= 1.0
    });
    eventually("the worker to be idle", || {
        metric(&t.base, "slm_requests_active") == 0.0
    });
    let generated = metric(&t.base, "slm_completion_tokens_total");
    assert!(
        generated < 900.0,
        "{generated} tokens generated for a client that left after the first"
    );
    let r = post(&t.base, CHAT, &chat_body("hi", 4), None);
    assert_eq!(r.status, 200, "the server keeps serving: {}", r.body);
}

#[test]
fn full_queue_answers_503_with_retry_after() {
    let Some(t) = start(Opts {
        queue: 1,
        ..Opts::default()
    }) else {
        return;
    };
    let a = addr(&t.base);
    let mut busy = raw_post(a, CHAT, &long_stream(900));
    read_until(&mut busy, "data: {");
    // (The first chunk is sent before the worker starts: wait until it really has.)
    eventually("the worker to take the first request", || {
        metric(&t.base, "slm_requests_active") == 1.0
    });
    // The worker is busy with `busy`; this one waits in the queue (capacity 1)...
    let waiting = raw_post(a, CHAT, &long_stream(900));
    eventually("the second request to be queued", || {
        metric(&t.base, "slm_queue_depth") == 1.0
    });
    // ...and this one finds the queue full.
    let r = post(&t.base, CHAT, &chat_body("hi", 4), None);
    let e = r.error(503);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert!(e["message"].as_str().unwrap().contains("busy"), "{e}");
    drop(busy);
    drop(waiting);
    eventually("both to be cancelled", || {
        metric(&t.base, "slm_requests_cancelled_total") >= 2.0
    });
    assert_eq!(post(&t.base, CHAT, &chat_body("hi", 4), None).status, 200);
    let text = get(&t.base, "/metrics", None).body;
    assert!(
        text.contains("route=\"/v1/chat/completions\",status=\"503\"} 1"),
        "{text}"
    );
}

#[test]
fn concurrent_clients_each_get_their_own_answer() {
    // Four slots: the four requests are generated together (continuous batching), and each
    // must still get exactly its sequential greedy answer.
    let Some(t) = start(Opts {
        slots: 4,
        ..Opts::default()
    }) else {
        return;
    };
    let questions = [
        "What is 2+2?",
        "Name a fruit.",
        "What color is the sky?",
        "Say hello in French.",
    ];
    let sequential: Vec<String> = questions
        .iter()
        .map(|q| {
            post(&t.base, CHAT, &chat_body(q, 12), None).json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let (steps0, tokens0) = (
        metric(&t.base, "slm_decode_steps_total"),
        metric(&t.base, "slm_decode_tokens_total"),
    );
    let base = t.base.clone();
    let handles: Vec<_> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (base, q) = (base.clone(), q.to_string());
            std::thread::spawn(move || {
                let mut body = chat_body(&q, 12);
                if i % 2 == 1 {
                    body["stream"] = json!(true);
                    let chunks = sse(&base, CHAT, &body, None);
                    chunks
                        .iter()
                        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                        .collect::<String>()
                } else {
                    post(&base, CHAT, &body, None).json()["choices"][0]["message"]["content"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(
            h.join().unwrap(),
            sequential[i],
            "answer to {:?} under concurrency",
            questions[i]
        );
    }
    // The requests really shared decode steps.
    let steps = metric(&t.base, "slm_decode_steps_total") - steps0;
    let tokens = metric(&t.base, "slm_decode_tokens_total") - tokens0;
    assert!(
        tokens > 1.3 * steps,
        "mean decode batch {:.2} ({tokens} tokens in {steps} steps)",
        tokens / steps
    );
}

#[test]
fn graceful_shutdown_finishes_the_stream_in_flight() {
    let Some(mut t) = start(Opts::default()) else {
        return;
    };
    let a = addr(&t.base).to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let s = raw_post(&a, CHAT, &long_stream(48));
        let mut lines = BufReader::new(s).lines();
        let mut done = false;
        let mut chunks = 0;
        let mut signalled = false;
        while let Some(Ok(line)) = lines.next() {
            if line.starts_with("data: {") {
                chunks += 1;
                if !signalled {
                    tx.send(()).unwrap();
                    signalled = true;
                }
            }
            if line == "data: [DONE]" {
                done = true;
                break;
            }
        }
        (done, chunks)
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap();
    t.shutdown();
    let (done, chunks) = reader.join().unwrap();
    assert!(
        done,
        "the stream in flight must finish with [DONE] during shutdown"
    );
    assert!(chunks >= 10, "only {chunks} chunks arrived");
    assert!(
        TcpStream::connect(addr(&t.base)).is_err(),
        "no new connections after shutdown"
    );
}

#[test]
fn hostile_bytes_do_not_crash_the_server() {
    let Some(t) = start(Opts {
        max_body: 4096,
        ..Opts::default()
    }) else {
        return;
    };
    let a = addr(&t.base);
    let requests: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(),
        format!(
            "POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{{\"messages\":"
        )
        .into_bytes(),
        format!("POST {CHAT} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .into_bytes(),
        [
            format!("POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").into_bytes(),
            b"\xff\xfe\xfd{}".to_vec(),
        ]
        .concat(),
        format!(
            "POST {CHAT} HTTP/1.1\r\nHost: x\r\n{}\r\n\r\n",
            "X-Long: aaaa\r\n".repeat(5000)
        )
        .into_bytes(),
    ];
    for req in &requests {
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(req);
        let reply = read_until(&mut s, "\r\n\r\n");
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{reply:?} for {:?}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
    }
    // An oversized body announced honestly gets a JSON 413.
    let mut s = raw_post(
        a,
        CHAT,
        &format!("{{\"messages\": \"{}\"}}", "x".repeat(10_000)),
    );
    let reply = read_until(&mut s, "}}");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"error\""), "{reply}");
    // A client that half-sends a body and disappears.
    let mut s = TcpStream::connect(a).unwrap();
    s.write_all(
        format!("POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"mess")
            .as_bytes(),
    )
    .unwrap();
    drop(s);
    assert_eq!(
        get(&t.base, "/health", None).status,
        200,
        "the server survived"
    );
    assert_eq!(post(&t.base, CHAT, &chat_body("hi", 2), None).status, 200);
}

/// A bounded load (6 clients x 6 requests, loopback): streamed and non-streamed requests mixed
/// with clients that disconnect mid-answer and malformed requests. No crash, every completed
/// answer equals the sequential greedy answer to its own prompt, and the latencies are printed.
#[test]
fn mixed_load_has_no_crashes_and_no_crossed_answers() {
    let Some(t) = start(Opts {
        queue: 32,
        slots: 3,
        ..Opts::default()
    }) else {
        return;
    };
    let prompts = ["What is 2+2?", "Name a fruit.", "What color is the sky?"];
    let reference: Vec<String> = prompts
        .iter()
        .map(|q| {
            post(&t.base, CHAT, &chat_body(q, 16), None).json()["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let t0 = Instant::now();
    let handles: Vec<_> = (0..6)
        .map(|client| {
            let (base, prompts, reference) = (t.base.clone(), prompts, reference.clone());
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                for j in 0..6 {
                    let k = (client * 7 + j * 3) % prompts.len();
                    let started = Instant::now();
                    match (client + j) % 4 {
                        0 => {
                            let v = post(&base, CHAT, &chat_body(prompts[k], 16), None).json();
                            assert_eq!(v["choices"][0]["message"]["content"], reference[k].as_str(), "client {client} request {j}");
                        }
                        1 => {
                            let mut body = chat_body(prompts[k], 16);
                            body["stream"] = json!(true);
                            let text: String =
                                sse(&base, CHAT, &body, None).iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
                            assert_eq!(text, reference[k], "client {client} request {j} (streamed)");
                        }
                        2 => {
                            let mut s = raw_post(addr(&base), CHAT, &long_stream(300));
                            let head = read_until(&mut s, "data: {");
                            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                            continue; // disconnects here
                        }
                        _ => {
                            let bad = ["{\"messages\": 5}", "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"top_p\": 9}", "\u{0}"];
                            post_raw(&base, CHAT, bad[j % bad.len()], None).error(400);
                            continue;
                        }
                    }
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().expect("a client thread failed"));
    }
    let wall = t0.elapsed();
    assert!(
        wall < Duration::from_secs(240),
        "the bounded load took {wall:?}"
    );
    assert_eq!(get(&t.base, "/health", None).status, 200);
    eventually("the worker to be idle", || {
        metric(&t.base, "slm_requests_active") == 0.0 && metric(&t.base, "slm_queue_depth") == 0.0
    });
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "mixed load: {} completed requests in {:.1} s, p50 {:?}, p99 {:?}, {} tokens generated in all",
        latencies.len(),
        wall.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        metric(&t.base, "slm_completion_tokens_total")
    );
}

#[test]
fn disconnect_cancels_a_non_streamed_request_too() {
    let Some(t) = start(Opts::default()) else {
        return;
    };
    let body = json!({"messages": [{"role": "user", "content": "Count to one thousand."}], "max_tokens": 900,
                      "ignore_eos": true, "temperature": 0})
    .to_string();
    let s = raw_post(addr(&t.base), CHAT, &body);
    eventually("the worker to start", || {
        metric(&t.base, "slm_requests_active") == 1.0
    });
    drop(s);
    eventually("the cancellation to be counted", || {
        metric(&t.base, "slm_requests_cancelled_total") >= 1.0
    });
    let generated = metric(&t.base, "slm_completion_tokens_total");
    assert!(
        generated < 900.0,
        "{generated} tokens generated for a client that left"
    );
}

/// Slowloris: connections that send nothing, or headers or a body a trickle at a time, are
/// closed (headers) or answered 408 (body) when their time is up, and never lock out others,
/// even when they fill the connection cap.
#[test]
fn silent_and_trickling_clients_are_timed_out() {
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        max_connections: 8,
        header_read_timeout: Duration::from_millis(700),
        body_read_timeout: Duration::from_millis(700),
        ..slm_server::ServerConfig::default()
    })
    .unwrap();
    let a = server.local_addr().to_string();
    // Fill every connection slot with silent sockets and half-sent headers.
    let mut idle: Vec<std::net::TcpStream> = (0..8)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(&a).unwrap();
            if i % 2 == 1 {
                s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    // Once they time out, a new client gets through.
    let t0 = Instant::now();
    let r = get(&format!("http://{a}"), "/health", None);
    assert_eq!(r.status, 503, "no model installed: {}", r.body);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "locked out for {:?}",
        t0.elapsed()
    );
    // The silent ones were closed by the server (read gives EOF or a reset, never blocks).
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            // EOF, or the 408 the server may send before closing.
            Ok(n) => assert!(
                n == 0 || buf[..n].starts_with(b"HTTP/1.1 408"),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "connection still open: {e}"
            ),
        }
    }
    // A body that trickles in too slowly is a 408 in the OpenAI error shape.
    let mut s = std::net::TcpStream::connect(&a).unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess",
    )
    .unwrap();
    let head = read_until(&mut s, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    server.shutdown().unwrap();
}

/// The open-connections gauge counts exactly the open connections: a lone `/metrics` request
/// sees itself and nothing else, every time.
#[test]
fn connection_gauge_counts_only_open_connections() {
    let server = slm_server::Server::start(slm_server::ServerConfig {
        addr: "127.0.0.1:0".into(),
        ..slm_server::ServerConfig::default()
    })
    .unwrap();
    let a = server.local_addr().to_string();
    for i in 0..5 {
        let mut s = std::net::TcpStream::connect(&a).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let open = text
            .lines()
            .find_map(|l| l.strip_prefix("slm_connections_open "))
            .unwrap_or_else(|| panic!("no gauge in {text}"));
        assert_eq!(open.trim(), "1", "request {i}");
    }
    server.shutdown().unwrap();
}
