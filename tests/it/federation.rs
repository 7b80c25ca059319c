//! Federation: `fedtest serve` and `fedtest sync` as real processes on 127.0.0.1 (port 0).
//!
//! Requests are written by hand over `TcpStream` so a test can send exactly the malformed,
//! oversized or unauthenticated bytes it means to.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{History, Sandbox, stderr, stdout};

/// features::DIM + 1 for schema 2.
pub(crate) const VECTOR_LEN: usize = 28;

pub(crate) fn token(i: usize) -> String {
    format!("tok-{i:04}-0123456789abcdef")
}

/// A running `fedtest serve`; killed (SIGKILL) when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
}

impl Server {
    /// Start a server on a free port with `tokens` tokens and `extra` arguments.
    pub(crate) fn start(sb: &Sandbox, db: &Path, tokens: usize, extra: &[&str]) -> Server {
        Server::start_bin(sb, None, db, tokens, extra)
    }

    /// [`Server::start`] with another `fedtest` binary (the benchmarks' release build).
    pub(crate) fn start_bin(
        sb: &Sandbox,
        bin: Option<&str>,
        db: &Path,
        tokens: usize,
        extra: &[&str],
    ) -> Server {
        let tokens_file = sb.write(
            "server/tokens.txt",
            (0..tokens).map(|i| token(i) + "\n").collect::<String>(),
        );
        let port_file = sb.path().join(format!(
            "server/port-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sb.path().join("server/server.log"))
            .unwrap();
        let mut cmd = sb.std_fedtest();
        if let Some(bin) = bin {
            cmd = std::process::Command::new(bin);
            cmd.current_dir(sb.path());
        }
        let child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .arg("--tokens-file")
            .arg(&tokens_file)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fedtest serve");
        let mut server = Server {
            child,
            addr: String::new(),
        };
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && text.ends_with('\n')
            {
                server.addr = text.trim().to_owned();
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "server exited with {status}: {}",
                    std::fs::read_to_string(sb.path().join("server/server.log")).unwrap()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request; the status and body of the answer.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    tok: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    try_http(addr, method, path, tok, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub(crate) fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    tok: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = tok {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413) before reading an oversized body: a failed write is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP answer: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// One attempt of client `i` at pushing update `id` on the model `addr` serves now: `None`
/// when the model could not be read, else the answer to the push.
pub(crate) fn try_push(
    addr: &str,
    i: usize,
    id: &str,
    delta: &[f64],
) -> Option<std::io::Result<(u16, String)>> {
    let Ok((200, body)) = try_http(addr, "GET", "/v1/model?schema=2", None, b"") else {
        return None;
    };
    let v = serde_json::from_str::<Value>(&body).unwrap()["version"]
        .as_u64()
        .unwrap();
    Some(try_http(
        addr,
        "POST",
        "/v1/updates",
        Some(&token(i)),
        &update(id, v, delta),
    ))
}

pub(crate) fn reason(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) fn model_version(addr: &str) -> u64 {
    let (status, body) = http(addr, "GET", "/v1/model?schema=2", None, b"");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["version"]
        .as_u64()
        .unwrap()
}

pub(crate) fn update(id: &str, base: u64, delta: &[f64]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "schema": 2, "base_version": base, "delta": delta, "samples": 100
    }))
    .unwrap()
}

pub(crate) fn small_delta(seed: usize) -> Vec<f64> {
    (0..VECTOR_LEN)
        .map(|j| (((seed * 31 + j * 17) % 23) as f64 - 11.0) / 200.0)
        .collect()
}

pub(crate) fn server_status(sb: &Sandbox, db: &Path) -> Value {
    let out = sb
        .fedtest()
        .args(["serve", "status", "--json", "--db"])
        .arg(db)
        .assert()
        .success()
        .get_output()
        .clone();
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

pub(crate) fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// The status after `total` accepted updates counts each exactly once (applied, superseded or
/// still pending), the versions add up to the applied ones and a replay of the log gives the
/// same model. Returns the applied and pending counts.
pub(crate) fn assert_each_update_counted_once(st: &Value, total: u64) -> (u64, u64) {
    assert_eq!(st["updates_total"], total, "{st:#}");
    let applied = st["updates_applied"].as_u64().unwrap();
    let pending = st["updates_pending"].as_u64().unwrap();
    let superseded = st["updates_superseded"].as_u64().unwrap();
    assert_eq!(applied + pending + superseded, total, "{st:#}");
    assert_eq!(st["versions_updates_sum"], applied, "{st:#}");
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    (applied, pending)
}

/// Pruning, on either store: 25 rounds in which token 0 sends an update and supersedes it,
/// then token 1 completes the buffer of two (a version a round: versions 2–26). Keeping the
/// newest 21 versions prunes the rows of versions up to 5: 8 applied rows and the 5 superseded
/// ones based on versions 1–5. The counts and the replay check stay right, and a pruned
/// update sent again is refused as stale — never applied twice.
pub(crate) fn prune_keeps_counts_and_exactly_once(sb: &Sandbox, db: &Path) {
    let server = Server::start(
        sb,
        db,
        2,
        &["--buffer", "2", "--rate", "1000", "--burst", "1000"],
    );
    let a = &server.addr;
    let push = |tok: usize, id: &str, base: u64| {
        http(
            a,
            "POST",
            "/v1/updates",
            Some(&token(tok)),
            &update(id, base, &small_delta(tok)),
        )
    };
    for r in 0..25u64 {
        let v = model_version(a);
        assert_eq!(push(0, &format!("a-{r}-1"), v).0, 202);
        assert_eq!(push(0, &format!("a-{r}-2"), v).0, 202);
        assert_eq!(push(1, &format!("b-{r}"), v).0, 202);
    }
    assert_eq!(model_version(a), 26);
    // Fewer than 21 kept versions would let a pruned id be accepted again.
    sb.fedtest()
        .args(["serve", "prune", "--keep-versions", "20", "--db"])
        .arg(db)
        .assert()
        .code(2);
    for _ in 0..2 {
        // The second prune finds nothing more to do.
        sb.fedtest()
            .args(["serve", "prune", "--keep-versions", "21", "--db"])
            .arg(db)
            .assert()
            .success()
            .stderr(predicates::str::contains(
                "versions up to 5 pruned (8 applied, 5 superseded, 0 discarded in all)",
            ));
        let st = server_status(sb, db);
        assert_each_update_counted_once(&st, 75);
        assert_eq!(st["updates_applied"], 50, "{st:#}");
        assert_eq!(st["updates_superseded"], 25, "{st:#}");
        assert_eq!(st["updates_pruned"], 13, "{st:#}");
        assert_eq!(st["pruned_through"], 5, "{st:#}");
    }
    // A pruned update sent again: its id is forgotten, its base is 25 versions old.
    let (status, body) = push(0, "a-0-2", 1);
    assert_eq!((status, reason(&body)), (409, "stale".to_owned()), "{body}");
    let (status, body) = push(0, "a-2-1", 3);
    assert_eq!((status, reason(&body)), (409, "stale".to_owned()), "{body}");
    // One whose rows are kept is still known.
    let (status, body) = push(1, "b-24", 25);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["duplicate"],
        true
    );
    assert_eq!(model_version(a), 26);
    let st = server_status(sb, db);
    assert_each_update_counted_once(&st, 75);
}

/// Waits until a third of the `total` updates of a stream are confirmed, kills `server` with
/// SIGKILL in the middle of the stream and gives its port a moment to close; returns how many
/// were confirmed when it died.
pub(crate) fn kill_a_third_in(done: &AtomicUsize, total: usize, server: &Mutex<Server>) -> usize {
    while done.load(Ordering::Relaxed) < total / 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.lock().unwrap().kill();
    let killed_at = done.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    killed_at
}

#[test]
fn every_rejection_reason_is_answered_and_counted() {
    let sb = Sandbox::new();
    every_rejection_reason(&sb, &sb.path().join("server/db.sqlite"));
}

/// Every reason an update is refused, answered with its status and counted; on either store.
pub(crate) fn every_rejection_reason(sb: &Sandbox, db: &Path) {
    let server = Server::start(
        sb,
        db,
        40,
        &["--buffer", "1", "--rate", "0.001", "--burst", "5"],
    );
    let a = &server.addr;
    let ok = update("ok-1", 1, &small_delta(1));

    // 401: no token, unknown token, wrong scheme.
    assert_eq!(http(a, "POST", "/v1/updates", None, &ok).0, 401);
    assert_eq!(
        http(
            a,
            "POST",
            "/v1/updates",
            Some("tok-9999-0123456789abcdef"),
            &ok
        )
        .0,
        401
    );
    // 400: NaN, wrong length, wrong schema, not JSON, unknown field, too long a delta.
    // JSON has no NaN: a client that writes one anyway sends a bare token.
    let nan = format!(
        "{{\"id\":\"n-1\",\"schema\":2,\"base_version\":1,\"samples\":3,\"delta\":[NaN{}]}}",
        ",0.0".repeat(VECTOR_LEN - 1)
    );
    let mut short = small_delta(3);
    short.pop();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (nan.clone().into_bytes(), "non_finite"),
        (update("l-1", 1, &short), "length"),
        (
            update("s-1", 1, &small_delta(4)).replace_schema(7),
            "schema",
        ),
        (b"{not json".to_vec(), "malformed"),
        (
            update("n-2", 1, &small_delta(4)).with_samples(json!(0)),
            "samples",
        ),
        (
            update("n-3", 1, &small_delta(4)).with_samples(json!(-3)),
            "samples",
        ),
        (
            update("n-4", 1, &small_delta(4)).with_samples(json!(2.5)),
            "samples",
        ),
        (
            update("n-5", 1, &small_delta(4)).with_samples(json!(1001)),
            "samples",
        ),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let (status, answer) = http(a, "POST", "/v1/updates", Some(&token(i)), body);
        assert_eq!(status, 400, "{want}: {answer}");
        assert_eq!(reason(&answer), *want, "{answer}");
    }
    let extra = serde_json::to_vec(&json!({
        "id": "x-1", "schema": 2, "base_version": 1, "delta": small_delta(5), "samples": 1,
        "test": "tests/test_secret.py::test_x"
    }))
    .unwrap();
    let (status, answer) = http(a, "POST", "/v1/updates", Some(&token(5)), &extra);
    assert_eq!((status, reason(&answer).as_str()), (400, "malformed"));
    let long: Vec<f64> = small_delta(6).iter().map(|v| v * 1e5).collect();
    let (status, answer) = http(
        a,
        "POST",
        "/v1/updates",
        Some(&token(6)),
        &update("b-1", 1, &long),
    );
    assert_eq!(
        (status, reason(&answer).as_str()),
        (400, "norm"),
        "{answer}"
    );
    // 413: a body over the limit.
    let big = vec![b' '; 20_000];
    let (status, answer) = http(a, "POST", "/v1/updates", Some(&token(7)), &big);
    assert_eq!((status, reason(&answer).as_str()), (413, "too_large"));
    // 409: unknown base version, then too stale once the model moved 21 versions on.
    let (status, answer) = http(
        a,
        "POST",
        "/v1/updates",
        Some(&token(8)),
        &update("u-1", 99, &small_delta(7)),
    );
    assert_eq!((status, reason(&answer).as_str()), (409, "unknown_base"));
    for i in 0..21 {
        let v = model_version(a);
        let (status, answer) = http(
            a,
            "POST",
            "/v1/updates",
            Some(&token(10 + i)),
            &update(&format!("adv-{i}"), v, &small_delta(i)),
        );
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!(model_version(a), 22);
    let (status, answer) = http(
        a,
        "POST",
        "/v1/updates",
        Some(&token(9)),
        &update("old-1", 1, &small_delta(8)),
    );
    assert_eq!(
        (status, reason(&answer).as_str()),
        (409, "stale"),
        "{answer}"
    );
    // 429: a sixth request within the burst of five.
    let t = &token(39);
    for i in 0..5 {
        let (status, _) = http(a, "POST", "/v1/updates", Some(t), b"{}");
        assert_eq!(status, 400, "request {i} is within the burst");
    }
    let (status, answer) = http(a, "POST", "/v1/updates", Some(t), &ok);
    assert_eq!((status, reason(&answer).as_str()), (429, "rate_limited"));

    let (status, metrics) = http(a, "GET", "/metrics", None, b"");
    assert_eq!(status, 200);
    let count = |r: &str| {
        metric(
            &metrics,
            &format!("fedtest_updates_rejected_total{{reason=\"{r}\"}}"),
        )
    };
    assert_eq!(count("unauthorized"), 2.0);
    assert_eq!(count("non_finite"), 1.0);
    assert_eq!(count("length"), 1.0);
    assert_eq!(count("schema"), 1.0);
    assert_eq!(count("samples"), 4.0);
    assert_eq!(
        count("malformed"),
        7.0,
        "{{not json, the unknown field and five {{}}"
    );
    assert_eq!(count("norm"), 1.0);
    assert_eq!(count("too_large"), 1.0);
    assert_eq!(count("unknown_base"), 1.0);
    assert_eq!(count("stale"), 1.0);
    assert_eq!(count("rate_limited"), 1.0);
    assert_eq!(metric(&metrics, "fedtest_updates_accepted_total"), 21.0);
    assert_eq!(metric(&metrics, "fedtest_model_version"), 22.0);
    // The server is still healthy after all that.
    assert_eq!(http(a, "GET", "/healthz", None, b"").0, 200);
    let log = std::fs::read_to_string(sb.path().join("server/server.log")).unwrap();
    assert!(
        log.contains("update refused (413 Payload Too Large, too_large)"),
        "{log}"
    );
}

trait ReplaceSchema {
    fn replace_schema(self, schema: u32) -> Vec<u8>;
    fn with_samples(self, samples: Value) -> Vec<u8>;
}

impl ReplaceSchema for Vec<u8> {
    fn replace_schema(self, schema: u32) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&self).unwrap();
        v["schema"] = schema.into();
        serde_json::to_vec(&v).unwrap()
    }

    fn with_samples(self, samples: Value) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(&self).unwrap();
        v["samples"] = samples;
        serde_json::to_vec(&v).unwrap()
    }
}

#[test]
fn concurrent_pushes_are_applied_exactly_once() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let server = Server::start(&sb, &db, 50, &["--buffer", "4", "--flush-secs", "1"]);
    let addr = server.addr.clone();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for k in 0..2 {
                    let v = model_version(&addr);
                    let (status, body) = http(
                        &addr,
                        "POST",
                        "/v1/updates",
                        Some(&token(i)),
                        &update(&format!("c-{i}-{k}"), v, &small_delta(i + k)),
                    );
                    statuses.push((status, body));
                }
                statuses
            })
        })
        .collect();
    for t in threads {
        for (status, body) in t.join().unwrap() {
            assert_eq!(status, 202, "{body}");
        }
    }
    // A retried update (same id) is recognised, not applied again.
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/updates",
        Some(&token(0)),
        &update("c-0-0", model_version(&addr), &small_delta(0)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");
    // The time flush empties the buffer.
    let start = Instant::now();
    let st = loop {
        let st = server_status(&sb, &db);
        if st["updates_pending"] == 0 {
            break st;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{st:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(st["updates_total"], 100, "{st:#}");
    // A client's second update replaced its first when that was still queued (one pending
    // slot per token); every other one was applied, once.
    let applied = st["updates_applied"].as_u64().unwrap();
    let superseded = st["updates_superseded"].as_u64().unwrap();
    assert_eq!(applied + superseded, 100, "{st:#}");
    assert!(
        applied >= 50,
        "every token got at least one update in: {st:#}"
    );
    assert_eq!(st["versions_updates_sum"], applied, "{st:#}");
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    let (_, metrics) = http(&addr, "GET", "/metrics", None, b"");
    assert_eq!(
        metric(&metrics, "fedtest_updates_superseded_total"),
        superseded as f64
    );

    // Rollback to the prior, while the server runs: it serves the rolled-back model at once.
    let before = model_version(&addr);
    sb.fedtest()
        .args(["serve", "rollback", "--to", "1", "--db"])
        .arg(&db)
        .assert()
        .success();
    let (_, body) = http(&addr, "GET", "/v1/model?schema=2", None, b"");
    let now: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(now["version"], before + 1);
    let st = server_status(&sb, &db);
    assert_eq!(st["versions"][0]["note"], "rollback to 1");
    assert_eq!(st["versions"][0]["norm_from_prior"], 0.0);
    drop(server);
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_applies_nothing_twice() {
    const CLIENTS: usize = 8;
    const EACH: usize = 15;
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let args = ["--buffer", "3", "--rate", "1000", "--burst", "1000"];
    let server = Arc::new(Mutex::new(Server::start(&sb, &db, CLIENTS, &args)));
    let addr = Arc::new(Mutex::new(server.lock().unwrap().addr.clone()));
    let done = Arc::new(AtomicUsize::new(0));
    let duplicates = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addr, done, duplicates) = (addr.clone(), done.clone(), duplicates.clone());
            std::thread::spawn(move || {
                for k in 0..EACH {
                    let id = format!("k-{i}-{k}");
                    // Retry the same id until the server confirms it: across the kill.
                    let start = Instant::now();
                    loop {
                        assert!(
                            start.elapsed() < Duration::from_secs(90),
                            "{id} never confirmed"
                        );
                        let a = addr.lock().unwrap().clone();
                        let Some(answer) = try_push(&a, i, &id, &small_delta(i * EACH + k)) else {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        match answer {
                            Ok((202, _)) => break,
                            Ok((200, _)) => {
                                duplicates.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Ok((409 | 429, _)) | Err(_) => {
                                std::thread::sleep(Duration::from_millis(20))
                            }
                            Ok((s, b)) => panic!("{id}: {s} {b}"),
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Kill the server with SIGKILL in the middle of the stream, then start it again.
    let killed_at = kill_a_third_in(&done, CLIENTS * EACH, &server);
    let restarted = Server::start(&sb, &db, CLIENTS, &args);
    *addr.lock().unwrap() = restarted.addr.clone();
    for t in threads {
        t.join().unwrap();
    }
    assert!(killed_at < CLIENTS * EACH, "the kill came after the stream");
    let st = server_status(&sb, &db);
    let (applied, _) = assert_each_update_counted_once(&st, (CLIENTS * EACH) as u64);
    assert!(applied > 0);
    drop(restarted);
    // Answers lost in the kill were retried and recognised by their id, not stored twice.
    let _ = duplicates.load(Ordering::Relaxed);
}

#[test]
fn a_token_has_one_pending_slot() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let server = Server::start(&sb, &db, 3, &["--buffer", "2"]);
    let a = &server.addr;
    let post = |tok: usize, id: &str| {
        http(
            a,
            "POST",
            "/v1/updates",
            Some(&token(tok)),
            &update(id, 1, &small_delta(tok)),
        )
    };
    // Three updates from one token fill one slot: no aggregation (K = 2 distinct tokens).
    for id in ["s-1", "s-2", "s-3"] {
        assert_eq!(post(0, id).0, 202);
    }
    assert_eq!(model_version(a), 1);
    // A re-send of a superseded update is still answered as the duplicate it is.
    let (status, body) = post(0, "s-1");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");
    assert_eq!(post(1, "t-1").0, 202);
    assert_eq!(model_version(a), 2);
    let st = server_status(&sb, &db);
    assert_eq!(
        (
            &st["updates_applied"],
            &st["updates_superseded"],
            &st["versions"][0]["updates"]
        ),
        (&json!(2), &json!(2), &json!(2)),
        "{st:#}"
    );
    let (_, metrics) = http(a, "GET", "/metrics", None, b"");
    assert_eq!(metric(&metrics, "fedtest_updates_superseded_total"), 2.0);
    assert_eq!(metric(&metrics, "fedtest_updates_accepted_total"), 4.0);
    let log = std::fs::read_to_string(sb.path().join("server/server.log")).unwrap();
    assert!(
        log.contains("update s-3 superseded the queued update s-2 of its token"),
        "{log}"
    );
}

#[test]
fn dp_noise_is_reported_as_epsilon_in_metrics_and_status() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    // DP needs a fixed clip bound.
    let out = sb
        .fedtest()
        .args(["serve", "--dp-noise-multiplier", "2", "--db"])
        .arg(&db)
        .env("FEDTEST_SERVER_TOKENS", token(0))
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(stderr(&out).contains("--clip"), "{}", stderr(&out));
    let server = Server::start(
        &sb,
        &db,
        3,
        &["--buffer", "1", "--clip", "1", "--dp-noise-multiplier", "2"],
    );
    let a = &server.addr;
    for i in 0..3 {
        let v = model_version(a);
        let (status, body) = http(
            a,
            "POST",
            "/v1/updates",
            Some(&token(i)),
            &update(&format!("dp-{i}"), v, &small_delta(i)),
        );
        assert_eq!(status, 202, "{body}");
    }
    let mut spent = fedtest::server::privacy::Spent::default();
    (0..3).for_each(|_| spent.add(2.0));
    let want = spent.epsilon(1e-5);
    assert!(want > 0.0 && want.is_finite());
    let (_, metrics) = http(a, "GET", "/metrics", None, b"");
    assert_eq!(metric(&metrics, "fedtest_dp_aggregations"), 3.0);
    let eps = metric(&metrics, "fedtest_dp_epsilon");
    assert!((eps - want).abs() < 1e-9, "{eps} vs {want}");
    let st = server_status(&sb, &db);
    assert_eq!(st["dp_aggregations"], 3, "{st:#}");
    assert!(
        (st["dp_epsilon"].as_f64().unwrap() - want).abs() < 1e-9,
        "{st:#}"
    );
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    let out = sb
        .fedtest()
        .args(["serve", "status", "--dp-delta", "1e-6", "--db"])
        .arg(&db)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "3 aggregations with DP noise: ε = {:.3} at δ = 1e-6",
            spent.epsilon(1e-6)
        )),
        "{text}"
    );
}

/// A port with nothing listening on it.
fn dead_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    format!("http://{a}")
}

#[test]
fn server_down_fails_open_and_strict_fails() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let model = std::fs::read(sb.model_path()).unwrap();
    let url = dead_address();
    let start = Instant::now();
    let out = sb
        .fedtest()
        .args(["sync", "--server", &url])
        .env("FEDTEST_TOKEN", token(0))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(start.elapsed() < Duration::from_secs(10));
    let err = stderr(&out);
    assert!(err.contains("warning: federation sync failed"), "{err}");
    assert!(err.contains("keeping the local model"), "{err}");
    assert_eq!(
        std::fs::read(sb.model_path()).unwrap(),
        model,
        "local model kept"
    );
    // In GitHub Actions the warning is an annotation.
    let out = sb
        .fedtest()
        .args(["sync", "--server", &url])
        .env("GITHUB_ACTIONS", "true")
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stderr(&out).contains("::warning title=fedtest::federation sync failed"));
    let out = sb
        .fedtest()
        .args(["sync", "--strict", "--server", &url])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("error: federation sync failed"),
        "{}",
        stderr(&out)
    );
    // `record` with FEDTEST_SERVER set syncs after retraining, and fails open too.
    let report = sb.write("reports/extra.xml", History::build(0).to_xml());
    let out = sb
        .fedtest()
        .args(["record", "--build", "extra", "--junit"])
        .arg(report)
        .env("FEDTEST_SERVER", &url)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stderr(&out).contains("federation sync failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_prints_the_body_and_sends_nothing() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = sb
        .fedtest()
        .args(["sync", "--dry-run", "--server", &url])
        .env("FEDTEST_TOKEN", token(0))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        listener.accept().is_err(),
        "a dry run connected to the server"
    );
    let body: Value = serde_json::from_slice(&out.stdout).expect("the body is JSON");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["base_version", "delta", "id", "samples", "schema"]);
    assert_eq!(body["delta"].as_array().unwrap().len(), VECTOR_LEN);
    assert_eq!(body["base_version"], 1);
    assert!(body["samples"].as_u64().unwrap() <= 1000);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} bytes above", out.stdout.len())),
        "{err}"
    );
    assert!(!sb.data_dir().join("model.global.json").exists());
}

/// Forward 127.0.0.1 connections to `target`, keeping every byte the client sent.
fn capturing_proxy(target: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let captured = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let Ok(mut upstream) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let seen = captured.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match client.read(&mut buf) {
                        Ok(0) | Err(_) => {
                            let _ = upstream.shutdown(std::net::Shutdown::Write);
                            break;
                        }
                        Ok(n) => {
                            seen.lock().unwrap().extend_from_slice(&buf[..n]);
                            if upstream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (format!("http://{addr}"), seen)
}

const MARKERS: &[&str] = &[
    "zqxclassmarker",
    "zqxnamemarker",
    "zqxfilemarker",
    "zqxcommitmarker",
    "zqxbranchmarker",
    "zqxmessagemarker",
];

fn marked_report(build: usize) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"zqxclassmarker_suite\">\n",
    );
    for k in 0..15 {
        let fails = (build + k).is_multiple_of(5);
        s.push_str(&format!(
            "<testcase classname=\"pkg.zqxclassmarker.Mod{m}\" name=\"test_zqxnamemarker_{k}\" file=\"src/zqxfilemarker/mod{m}.py\" time=\"0.{k}\">",
            m = k % 3
        ));
        if fails {
            s.push_str(
                "<failure message=\"zqxmessagemarker boom\">zqxmessagemarker trace</failure>",
            );
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite></testsuites>\n");
    s
}

#[test]
fn sync_sends_no_test_names_paths_commits_branches_or_messages() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let server = Server::start(
        &sb,
        &db,
        2,
        &["--buffer", "1", "--rate", "100", "--burst", "100"],
    );
    let (proxy, seen) = capturing_proxy(server.addr.clone());
    for b in 0..24 {
        let report = sb.write(&format!("reports/{b}.xml"), marked_report(b));
        let out = sb
            .fedtest()
            .args(["record", "--build", &format!("b{b}"), "--junit"])
            .arg(&report)
            .args([
                "--commit",
                &format!("zqxcommitmarker{b:02}"),
                "--branch",
                "zqxbranchmarker",
            ])
            .env("FEDTEST_SERVER", &proxy)
            .env("FEDTEST_TOKEN", token(0))
            .assert()
            .success()
            .get_output()
            .clone();
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    }
    let out = sb
        .fedtest()
        .args(["sync", "--strict", "--server", &proxy])
        .env("FEDTEST_TOKEN", token(1))
        .assert()
        .success()
        .get_output()
        .clone();
    let err = stderr(&out);
    assert!(err.contains("sync: pushed an update"), "{err}");
    assert!(err.contains("; using "), "{err}");
    let model: Value = serde_json::from_slice(&std::fs::read(sb.model_path()).unwrap()).unwrap();
    assert!(
        ["local", "global", "blend"].contains(&model["source"].as_str().unwrap()),
        "{model}"
    );
    assert!(sb.data_dir().join("model.global.json").exists());

    // The history does hold the markers (so the check below is not vacuous)…
    let store = std::fs::read(sb.store_path()).unwrap();
    let store = String::from_utf8_lossy(&store).to_lowercase();
    for m in [
        "zqxclassmarker",
        "zqxnamemarker",
        "zqxcommitmarker",
        "zqxbranchmarker",
    ] {
        assert!(store.contains(m), "the store does not hold {m}");
    }
    // …and none of them was sent: not in a path, a header or a body.
    let sent = String::from_utf8_lossy(&seen.lock().unwrap()).to_lowercase();
    assert!(sent.contains("post /v1/updates"), "{sent}");
    assert!(sent.matches("post /v1/updates").count() >= 2);
    for m in MARKERS {
        assert!(!sent.contains(m), "{m} was sent:\n{sent}");
    }
    assert!(!sent.contains("zqx"));
    let st = server_status(&sb, &db);
    assert!(st["updates_applied"].as_u64().unwrap() >= 2, "{st:#}");
    let _ = stdout(&out);
}

/// An HTTP/1.1 keep-alive connection, for the load benchmark.
pub(crate) struct KeepAlive {
    stream: std::io::BufReader<TcpStream>,
}

impl KeepAlive {
    pub(crate) fn connect(addr: &str) -> KeepAlive {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        KeepAlive {
            stream: std::io::BufReader::new(s),
        }
    }

    pub(crate) fn post(&mut self, path: &str, tok: &str, body: &[u8]) -> (u16, String) {
        self.request("POST", path, Some(tok), body)
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        tok: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        use std::io::BufRead;
        let auth = tok.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).unwrap();
        let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut len = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// What one load run measured.
pub(crate) struct Load {
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    /// Refusals by HTTP status.
    pub(crate) refused_by: std::collections::BTreeMap<u16, u64>,
    pub(crate) latencies: Vec<Duration>,
    /// Resident memory of each server, KiB, sampled once a second.
    pub(crate) rss: Vec<Vec<u64>>,
}

impl Load {
    fn pct(&self, p: f64) -> Duration {
        let l = &self.latencies;
        l[((l.len() as f64 * p) as usize).min(l.len() - 1)]
    }

    /// One line for the README; `st` is the final `serve status --json`.
    #[allow(clippy::print_stderr)]
    pub(crate) fn report(&self, what: &str, clients: usize, secs: u64, st: &Value) {
        let rss: Vec<String> = self
            .rss
            .iter()
            .map(|r| {
                format!(
                    "{}/{}/{}",
                    r.first().unwrap_or(&0),
                    r.last().unwrap_or(&0),
                    r.iter().max().unwrap_or(&0)
                )
            })
            .collect();
        eprintln!(
            "load ({what}): {clients} connections, {secs} s: {} accepted ({:.0}/s), {} refused {:?}; \
             latency p50 {:?} p99 {:?} max {:?}; server RSS KiB first/last/max {}; \
             versions {}; applied {}, superseded {}, pending {}; replay consistent {}",
            self.accepted,
            self.accepted as f64 / secs as f64,
            self.refused,
            self.refused_by,
            self.pct(0.5),
            self.pct(0.99),
            self.latencies.last().unwrap(),
            rss.join(" and "),
            st["version"],
            st["updates_applied"],
            st["updates_superseded"],
            st["updates_pending"],
            st["replay_consistent"]
        );
    }
}

/// Drive `servers` for `secs` from `clients` keep-alive clients, each holding one connection
/// per server and sending its requests to them in turn (round robin), with
/// `tokens_per_client` tokens of its own.
pub(crate) fn drive(
    servers: &[&Server],
    clients: usize,
    tokens_per_client: usize,
    secs: u64,
) -> Load {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<KeepAlive> =
                    addrs.iter().map(|a| KeepAlive::connect(a)).collect();
                let mut base = 1u64;
                let mut latencies = Vec::new();
                let mut accepted = 0u64;
                let mut other = std::collections::BTreeMap::<u16, u64>::new();
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let tok = token(c * tokens_per_client + n % tokens_per_client);
                    let body = update(&format!("b-{c}-{n}"), base, &small_delta(n + c));
                    let conn = &mut conns[(c + n) % addrs.len()];
                    let t0 = Instant::now();
                    let (status, answer) = conn.post("/v1/updates", &tok, &body);
                    latencies.push(t0.elapsed());
                    if status == 202 {
                        accepted += 1;
                        base = serde_json::from_str::<Value>(&answer).unwrap()["version"]
                            .as_u64()
                            .unwrap();
                    } else {
                        *other.entry(status).or_default() += 1;
                        if status == 409 {
                            let (_, m) = conn.request("GET", "/v1/model?schema=2", None, b"");
                            base = serde_json::from_str::<Value>(&m).unwrap()["version"]
                                .as_u64()
                                .unwrap();
                        }
                    }
                    n += 1;
                }
                (latencies, accepted, other)
            })
        })
        .collect();
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let mut rss = vec![Vec::new(); pids.len()];
    while Instant::now() < deadline {
        for (r, pid) in rss.iter_mut().zip(&pids) {
            r.push(rss_kib(*pid));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut load = Load {
        accepted: 0,
        refused: 0,
        refused_by: Default::default(),
        latencies: Vec::new(),
        rss,
    };
    for w in workers {
        let (l, a, o) = w.join().unwrap();
        load.latencies.extend(l);
        load.accepted += a;
        for (status, n) in o {
            load.refused += n;
            *load.refused_by.entry(status).or_default() += n;
        }
    }
    load.latencies.sort();
    load
}

/// Benchmark length and connections: `FEDTEST_BENCH_SECS` (default 20) and
/// `FEDTEST_BENCH_CLIENTS` (default 16).
pub(crate) fn bench_knobs() -> (u64, usize) {
    let get = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    (
        get("FEDTEST_BENCH_SECS", 20),
        get("FEDTEST_BENCH_CLIENTS", 16) as usize,
    )
}

/// Arguments of the benchmarked servers: these, then `FEDTEST_BENCH_SERVER_ARGS` (split on
/// whitespace, e.g. `--db-connections 2 --prune-keep 1000`).
pub(crate) fn bench_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "--buffer", "16", "--rate", "1000000", "--burst", "1000000", "--quiet",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Ok(extra) = std::env::var("FEDTEST_BENCH_SERVER_ARGS") {
        args.extend(extra.split_whitespace().map(str::to_owned));
    }
    args
}

/// The load benchmark (not run by default): accepted updates per second, latency and memory
/// of `fedtest serve` on SQLite. `FEDTEST_BENCH_SECS` (default 20) and `FEDTEST_BENCH_CLIENTS`
/// (default 16) set the length and the concurrent keep-alive connections;
/// `FEDTEST_BENCH_BIN` runs that server binary (e.g. `target/release/fedtest`) instead of the
/// test build's; `FEDTEST_BENCH_SERVER_ARGS` adds server arguments:
///
/// `cargo test --test it load_benchmark -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run it explicitly"]
fn load_benchmark() {
    let (secs, clients) = bench_knobs();
    const TOKENS_PER_CLIENT: usize = 4;
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let bin = std::env::var("FEDTEST_BENCH_BIN").ok();
    let args = bench_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_bin(&sb, bin.as_deref(), &db, clients * TOKENS_PER_CLIENT, &args);
    let load = drive(&[&server], clients, TOKENS_PER_CLIENT, secs);
    let st = server_status(&sb, &db);
    load.report("SQLite, one server", clients, secs, &st);
    assert_each_update_counted_once(&st, load.accepted);
}

#[test]
fn pruning_keeps_counts_replay_and_exactly_once() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    prune_keeps_counts_and_exactly_once(&sb, &db);
    let rows = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM updates", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&db), 75 - 13);
    // Three more rounds (versions 27–29) on a server that does not prune ...
    {
        let server = Server::start(&sb, &db, 2, &["--buffer", "2"]);
        for r in 0..3u64 {
            let v = model_version(&server.addr);
            for tok in 0..2 {
                let body = update(&format!("more-{r}-{tok}"), v, &small_delta(tok));
                let (status, text) = http(
                    &server.addr,
                    "POST",
                    "/v1/updates",
                    Some(&token(tok)),
                    &body,
                );
                assert_eq!(status, 202, "{text}");
            }
        }
        assert_eq!(model_version(&server.addr), 29);
    }
    // ... then one with --prune-keep: it prunes by itself at its first tick (then every
    // minute), through version 8 now: 6 more applied rows (versions 6–8) and the 3 superseded
    // ones based on them.
    let server = Server::start(&sb, &db, 2, &["--flush-secs", "1", "--prune-keep", "21"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = http(&server.addr, "GET", "/metrics", None, b"").1;
        if metric(&text, "fedtest_updates_pruned") == 22.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not prune: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = server_status(&sb, &db);
    assert_each_update_counted_once(&st, 81);
    assert_eq!(st["pruned_through"], 8, "{st:#}");
    assert_eq!(st["updates_pruned"], 13 + 9, "{st:#}");
    assert_eq!(rows(&db), 81 - 22);
}
