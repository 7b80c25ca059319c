//! Issue 11: the server and the client under abuse — idle and half-sent connections, odd
//! tokens files, a foreign database, and poisoned global models. Each class with payloads of
//! its own; for bad input, what is stored stays the same byte for byte.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::federation::{
    Server, VECTOR_LEN, http, metric, model_version, server_status, small_delta, token, update,
};
use crate::util::{History, Sandbox, stderr};

/// Every file of the server database (the database, its WAL and shared memory), by name.
fn db_bytes(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[test]
fn idle_and_half_sent_connections_do_not_stop_honest_clients() {
    const CAP: usize = 16;
    const ABUSIVE: usize = 240; // 15 × the cap
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    let cap = CAP.to_string();
    let server = Server::start(
        &sb,
        &db,
        2,
        &[
            "--buffer",
            "1",
            "--max-connections",
            &cap,
            "--header-timeout",
            "2",
        ],
    );
    let addr = server.addr.clone();
    // Let the start-up writes settle, then take the database's bytes.
    std::thread::sleep(Duration::from_millis(300));
    let before = db_bytes(&db);
    // Connections that send nothing, half a request head, or a head and half a body.
    let mut abusive = Vec::new();
    for i in 0..ABUSIVE {
        let mut s = TcpStream::connect(&addr).unwrap();
        match i % 3 {
            0 => {}
            1 => s
                .write_all(b"POST /v1/updates HTTP/1.1\r\nHost: x\r\nContent-Len")
                .unwrap(),
            _ => s
                .write_all(
                    format!(
                        "POST /v1/updates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 4000\r\n\r\n{{\"id\":",
                        token(1)
                    )
                    .as_bytes(),
                )
                .unwrap(),
        }
        abusive.push(s);
    }
    // Honest clients, while all of those are open: each request answered promptly.
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let (status, body) = http(&addr, "GET", "/healthz", None, b"");
        latencies.push(start.elapsed());
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    let start = Instant::now();
    let v = model_version(&addr);
    latencies.push(start.elapsed());
    latencies.sort();
    let worst = *latencies.last().unwrap();
    // Nothing the abusive connections sent was stored.
    assert_eq!(db_bytes(&db), before, "the database changed");
    // An honest update goes in while they are still open.
    let start = Instant::now();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/updates",
        Some(&token(0)),
        &update("honest-1", v, &small_delta(1)),
    );
    let post = start.elapsed();
    assert_eq!(status, 202, "{body}");
    assert_eq!(model_version(&addr), v + 1);
    // The header timeout closes what is left: a half-sent connection gets EOF (or a 408).
    let mut closed = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in abusive.iter_mut().rev().take(30) {
        s.set_read_timeout(Some(
            deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
        ))
        .unwrap();
        let mut buf = Vec::new();
        // EOF, or a reset (the server dropped unread bytes): closed. A timeout: still open.
        match s.read_to_end(&mut buf) {
            Ok(_) => closed += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => closed += 1,
        }
    }
    assert_eq!(
        closed, 30,
        "connections still open after the header timeout"
    );
    let (_, text) = http(&addr, "GET", "/metrics", None, b"");
    let evicted = metric(&text, "fedtest_connections_evicted_total");
    assert!(evicted > 0.0, "{text}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{ABUSIVE} idle or half-sent connections, cap {CAP}: honest GET p50 {:?}, max {worst:?}; \
             honest POST {post:?}; {evicted} evicted, {} header timeouts",
            latencies[latencies.len() / 2],
            metric(&text, "fedtest_connections_header_timeout_total"),
        );
    }
    assert!(worst < Duration::from_secs(5), "{latencies:?}");
    drop(abusive);
}

#[test]
fn a_tokens_file_with_a_bom_and_a_hash_inside_a_token() {
    let sb = Sandbox::new();
    let db = sb.path().join("server/db.sqlite");
    // Windows line ends, a BOM, a `#` inside a token, a trailing comment, a comment line.
    let first = "first-0123456789abcdef";
    let hashed = "hash#0123456789abcdef";
    let tokens = sb.write(
        "server/tokens.txt",
        format!("\u{feff}{first}\r\n# a comment\r\n{hashed}   # the second one\r\n"),
    );
    let port = sb.path().join("server/port");
    let log = sb.path().join("server/log");
    let mut child = sb
        .std_fedtest()
        .args(["serve", "--listen", "127.0.0.1:0", "--buffer", "1", "--db"])
        .arg(&db)
        .arg("--tokens-file")
        .arg(&tokens)
        .arg("--port-file")
        .arg(&port)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let addr = loop {
        if let Ok(t) = std::fs::read_to_string(&port)
            && t.ends_with('\n')
        {
            break t.trim().to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = db_bytes(&db);
    // What the old parser accepted instead — the part before `#`, the BOM'd token — is
    // refused, and nothing is stored.
    for bad in [
        "hash",
        "\u{feff}first-0123456789abcdef",
        "hash#0123456789abcde",
    ] {
        let (status, _) = http(
            &addr,
            "POST",
            "/v1/updates",
            Some(bad),
            &update(&format!("bad-{}", bad.len()), 1, &small_delta(0)),
        );
        assert_eq!(status, 401, "{bad:?}");
    }
    assert_eq!(
        db_bytes(&db),
        before,
        "a refused token changed the database"
    );
    for (i, tok) in [first, hashed].iter().enumerate() {
        let v = model_version(&addr);
        let (status, body) = http(
            &addr,
            "POST",
            "/v1/updates",
            Some(tok),
            &update(&format!("good-{i}"), v, &small_delta(i)),
        );
        assert_eq!(status, 202, "{tok}: {body}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains("byte-order mark"), "{err}");
    assert!(err.contains("contains `#`"), "{err}");
}

#[test]
fn a_foreign_database_is_refused_untouched_and_ours_is_owner_only() {
    let sb = Sandbox::new();
    // An application's SQLite database, a rollback-journal one so that reading it creates
    // no side files, and a file that is not SQLite at all.
    let foreign = sb.path().join("app.sqlite");
    {
        let c = rusqlite::Connection::open(&foreign).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = DELETE;
             CREATE TABLE versions (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO versions (name) VALUES ('mine');",
        )
        .unwrap();
    }
    let text = sb.write("notes.txt", "not a database\n".repeat(200));
    for path in [&foreign, &text] {
        let before = std::fs::read(path).unwrap();
        for args in [
            vec!["serve", "status", "--db"],
            vec!["serve", "rollback", "--to", "1", "--db"],
            vec!["serve", "prune", "--db"],
        ] {
            let out = sb
                .fedtest()
                .args(&args)
                .arg(path)
                .assert()
                .failure()
                .get_output()
                .clone();
            let err = stderr(&out);
            assert!(
                err.contains("not a fedtest server database"),
                "{args:?} {}: {err}",
                path.display()
            );
            assert_eq!(std::fs::read(path).unwrap(), before, "{}", path.display());
            assert!(
                !PathBuf::from(format!("{}-wal", path.display())).exists(),
                "{}",
                path.display()
            );
        }
    }
    // Ours: created owner-only, with its WAL and shared memory, whatever the umask.
    let db = sb.path().join("server/db.sqlite");
    let server = Server::start(&sb, &db, 1, &["--buffer", "1"]);
    let (status, _) = http(
        &server.addr,
        "POST",
        "/v1/updates",
        Some(&token(0)),
        &update("u1", 1, &small_delta(0)),
    );
    assert_eq!(status, 202);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (p, _) in db_bytes(&db) {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    drop(server);
    // And it is recognised as ours (status works).
    assert_eq!(server_status(&sb, &db)["version"], 2);
}

/// A one-route stand-in for a compromised or broken server: `GET /v1/model` answers `model`,
/// `POST /v1/updates` 202.
fn fake_server(model: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let model = model.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Read the head and (if any) the body.
                loop {
                    let Ok(n) = conn.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            let (status, answer) = if head.starts_with("GET") {
                                ("200 OK", model.to_string())
                            } else {
                                (
                                    "202 Accepted",
                                    json!({"id": "x", "duplicate": false, "version": 2})
                                        .to_string(),
                                )
                            };
                            let _ = conn.write_all(
                                format!(
                                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                                    answer.len()
                                )
                                .as_bytes(),
                            );
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_poisoned_global_model_is_refused_and_never_becomes_the_anchor() {
    let sb = Sandbox::new();
    History::record(&sb, History::BUILDS);
    // A first, sane sync: the prior-sized model from a real server becomes the saved global.
    let db = sb.path().join("server/db.sqlite");
    let server = Server::start(&sb, &db, 1, &["--buffer", "1"]);
    let out = sb
        .fedtest()
        .args(["sync", "--server", &format!("http://{}", server.addr)])
        .env("FEDTEST_TOKEN", token(0))
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(!stderr(&out).contains("refused"), "{}", stderr(&out));
    let saved = |name: &str| std::fs::read(sb.data_dir().join(name)).unwrap();
    let (global, state, model) = (
        saved("model.global.json"),
        saved("federation.json"),
        std::fs::read(sb.model_path()).unwrap(),
    );
    let sane: Value = serde_json::from_slice(&global).unwrap();
    let mut vector: Vec<f64> = serde_json::from_value(sane["weights"].clone()).unwrap();
    vector.push(sane["intercept"].as_f64().unwrap());
    assert_eq!(vector.len(), VECTOR_LEN);
    // Poisoned answers: one absurd weight, every weight pushed far, no usable max_norm.
    let huge = {
        let mut v = vector.clone();
        v[0] = 1e6;
        v
    };
    let far: Vec<f64> = vector.iter().map(|w| w - 4.0).collect();
    let cases = [
        ("a weight of 1e6", huge, 10.0, "outside"),
        ("every weight moved by 4", far, 10.0, "from the prior"),
        ("max_norm 0", vector.clone(), 0.0, "max_norm"),
        ("max_norm -1", vector.clone(), -1.0, "max_norm"),
    ];
    for (what, v, max_norm, says) in cases {
        let url = fake_server(json!({
            "version": 7, "schema": 2, "vector": v, "updates": 9, "max_norm": max_norm
        }));
        let out = sb
            .fedtest()
            .args(["sync", "--server", &url])
            .env("FEDTEST_TOKEN", token(0))
            .assert()
            .success()
            .get_output()
            .clone();
        let err = stderr(&out);
        assert!(
            err.contains("warning: federation sync failed"),
            "{what}: {err}"
        );
        assert!(err.contains(says), "{what}: {err}");
        // Nothing of it was kept: not as the global model, not as the model planned with.
        assert_eq!(saved("model.global.json"), global, "{what}");
        assert_eq!(saved("federation.json"), state, "{what}");
        assert_eq!(std::fs::read(sb.model_path()).unwrap(), model, "{what}");
        // --strict makes it an error.
        sb.fedtest()
            .args(["sync", "--strict", "--server", &url])
            .env("FEDTEST_TOKEN", token(0))
            .assert()
            .failure();
    }
    // A poisoned model file put in place by hand (or an older fedtest) is not an anchor:
    // the dry run computes its delta against the prior's version instead.
    let mut poisoned = sane.clone();
    poisoned["weights"][0] = json!(1e6);
    std::fs::write(
        sb.data_dir().join("model.global.json"),
        serde_json::to_vec(&poisoned).unwrap(),
    )
    .unwrap();
    let out = sb
        .fedtest()
        .args(["sync", "--dry-run"])
        .assert()
        .success()
        .get_output()
        .clone();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["base_version"], 1, "{body}");
    let delta: Vec<f64> = serde_json::from_value(body["delta"].clone()).unwrap();
    assert!(delta.iter().all(|d| d.abs() < 100.0), "{delta:?}");
    drop(server);
}
