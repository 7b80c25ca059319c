//! `fedtest serve --db postgres://…`: two replicas on one real PostgreSQL.
//!
//! Each test starts its own PostgreSQL (`initdb` into a temp dir, `postgres` on a free
//! 127.0.0.1 port, as the `postgres` user when the tests run as root, which `initdb`
//! refuses), or, when `FEDTEST_TEST_POSTGRES_URL` is set, creates a fresh database on that
//! server. Only when neither is possible, and only outside CI, does a test print `SKIPPED: …`
//! and return; under CI (`CI` set; `.ci/run` installs PostgreSQL and sets it) it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::federation::{
    Server, assert_each_update_counted_once, bench_args, bench_knobs, drive,
    every_rejection_reason, http, kill_a_third_in, metric, model_version,
    prune_keeps_counts_and_exactly_once, server_status, small_delta, token, try_push, update,
};
use crate::util::Sandbox;

/// A PostgreSQL for one test; stopped (immediate shutdown) and removed when dropped.
pub(crate) struct Postgres {
    /// URL of the test's own, empty database.
    pub(crate) url: String,
    server: Option<(Child, tempfile::TempDir)>,
    /// On a server given by FEDTEST_TEST_POSTGRES_URL: its URL and the database to drop.
    given: Option<(String, String)>,
}

/// Run one statement on `url` (a fresh current-thread runtime: the tests are synchronous).
fn execute(url: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let result = client.batch_execute(sql).await.map_err(|e| e.to_string());
        drop(client);
        let _ = driver.await;
        result
    })
}

/// `initdb` on PATH, else the newest Debian/Ubuntu install under /usr/lib/postgresql.
fn initdb() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("initdb"))
            .find(|p| p.is_file())
    }) {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin/initdb")))
        .filter(|p| p.is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::parent)
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

/// uid and gid of the first of `names` in /etc/passwd.
fn account(names: &[&str]) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    names.iter().find_map(|name| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == *name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// A PostgreSQL with a fresh database for `test`, or `None` (after printing why) when
    /// none can be had.
    pub(crate) fn start(test: &str) -> Option<Postgres> {
        // A test database: no need to survive a power cut.
        Postgres::start_with(test, &["fsync=off"])
    }

    /// [`Postgres::start`] with these `name=value` settings.
    pub(crate) fn start_with(test: &str, settings: &[&str]) -> Option<Postgres> {
        if let Ok(base) = std::env::var("FEDTEST_TEST_POSTGRES_URL") {
            static N: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "fedtest_it_{}_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            execute(&base, &format!("CREATE DATABASE {name}"))
                .unwrap_or_else(|e| panic!("FEDTEST_TEST_POSTGRES_URL ({test}): {e}"));
            let (head, _) = base.rsplit_once('/').expect("URL ends in /dbname");
            return Some(Postgres {
                url: format!("{head}/{name}"),
                server: None,
                given: Some((base, name)),
            });
        }
        let Some(initdb) = initdb() else {
            skip(
                test,
                "no initdb found (install PostgreSQL or set FEDTEST_TEST_POSTGRES_URL)",
            );
            return None;
        };
        let postgres = initdb.with_file_name("postgres");
        // initdb refuses to run as root: hand the directory to an unprivileged account.
        let owner = if is_root() {
            match account(&["postgres", "nobody"]) {
                Some(a) => Some(a),
                None => {
                    skip(test, "running as root and no postgres or nobody account");
                    return None;
                }
            }
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("fedtest-pg-")
            .tempdir()
            .expect("temp dir");
        let as_owner = |cmd: &mut Command| {
            if let Some((uid, gid)) = owner {
                use std::os::unix::process::CommandExt;
                cmd.uid(uid).gid(gid);
            }
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let data = dir.path().join("data");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "fedtest",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null());
        as_owner(&mut cmd);
        let out = cmd.output().expect("run initdb");
        if !out.status.success() {
            skip(
                test,
                &format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)),
            );
            return None;
        }
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("postgres.log")).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path().join("postgres.log"), Some(uid), Some(gid))
                .unwrap();
        }
        let mut cmd = Command::new(&postgres);
        cmd.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-p", &port.to_string(), "-h", "127.0.0.1"])
            // Enough connections for two replicas' pools and the admin commands.
            .args(["-c", "max_connections=100"])
            .args(settings.iter().flat_map(|s| ["-c", s]))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        as_owner(&mut cmd);
        let child = cmd.spawn().expect("start postgres");
        let admin = format!("postgres://fedtest@127.0.0.1:{port}/postgres");
        let mut pg = Postgres {
            url: format!("postgres://fedtest@127.0.0.1:{port}/fed"),
            server: Some((child, dir)),
            given: None,
        };
        let start = Instant::now();
        loop {
            match execute(&admin, "CREATE DATABASE fed") {
                Ok(()) => break,
                Err(e) => {
                    if let Some((child, dir)) = &mut pg.server
                        && let Ok(Some(status)) = child.try_wait()
                    {
                        panic!(
                            "postgres exited with {status}: {}",
                            std::fs::read_to_string(dir.path().join("postgres.log"))
                                .unwrap_or_default()
                        );
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "postgres did not start: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Some(pg)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some((base, name)) = &self.given {
            let _ = execute(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
        if let Some((child, _dir)) = &mut self.server {
            // SIGQUIT is PostgreSQL's immediate shutdown: it stops its backends too.
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Outside CI a machine without PostgreSQL skips these tests, saying so; under CI (`CI` set,
/// as `.ci/run` sets it) that is a failure: the suite must not pass by skipping.
#[allow(clippy::print_stderr)]
fn skip(test: &str, why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: no PostgreSQL could be started: {why} (.ci/run installs it; CI requires it)"
    );
    eprintln!(
        "SKIPPED: {test}: no PostgreSQL could be started: {why} (a local run only: CI fails here)"
    );
}

fn post(addr: &str, tok: usize, body: &[u8]) -> (u16, String) {
    http(addr, "POST", "/v1/updates", Some(&token(tok)), body)
}

fn metrics(addr: &str) -> String {
    http(addr, "GET", "/metrics", None, b"").1
}

/// Wait until the time flush has emptied the buffer; the final status.
fn drained(sb: &Sandbox, db: &Path) -> Value {
    let start = Instant::now();
    loop {
        let st = server_status(sb, db);
        if st["updates_pending"] == 0 {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{st:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_replicas_apply_every_update_exactly_once() {
    const CLIENTS: usize = 100;
    const EACH: usize = 3;
    let Some(pg) = Postgres::start("two_replicas_apply_every_update_exactly_once") else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    let args = [
        "--buffer",
        "4",
        "--flush-secs",
        "1",
        "--rate",
        "1000",
        "--burst",
        "1000",
    ];
    let replicas = [
        Server::start(&sb, &db, CLIENTS + 20, &args),
        Server::start(&sb, &db, CLIENTS + 20, &args),
    ];
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    // 100 concurrent clients, each alternating between the replicas (round robin).
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|k| {
                        let a = &addrs[(i + k) % 2];
                        let v = model_version(a);
                        post(a, i, &update(&format!("p-{i}-{k}"), v, &small_delta(i + k)))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (status, body) in t.join().unwrap() {
            assert_eq!(status, 202, "{body}");
        }
    }
    // The same id sent to both replicas at the same moment is taken once.
    let races: Vec<_> = (0..20)
        .map(|j| {
            let addrs = addrs.clone();
            std::thread::spawn(move || {
                let body = update(
                    &format!("race-{j}"),
                    model_version(&addrs[0]),
                    &small_delta(j),
                );
                let both: Vec<_> = addrs
                    .iter()
                    .map(|a| {
                        let (a, body) = (a.clone(), body.clone());
                        std::thread::spawn(move || post(&a, CLIENTS + j, &body))
                    })
                    .collect();
                both.into_iter()
                    .map(|h| h.join().unwrap().0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for r in races {
        let mut statuses = r.join().unwrap();
        statuses.sort();
        assert_eq!(statuses, [200, 202], "one accepted, one duplicate");
    }
    // A re-sent id is a duplicate on the other replica too.
    let (status, body) = post(
        &addrs[1],
        0,
        &update("p-0-0", model_version(&addrs[1]), &small_delta(0)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\":true"), "{body}");

    let st = drained(&sb, &db);
    let total = (CLIENTS * EACH + 20) as u64;
    assert_eq!(st["updates_total"], total, "{st:#}");
    let applied = st["updates_applied"].as_u64().unwrap();
    let superseded = st["updates_superseded"].as_u64().unwrap();
    assert_eq!(applied + superseded, total, "{st:#}");
    assert!(applied >= CLIENTS as u64, "{st:#}");
    assert_eq!(st["versions_updates_sum"], applied, "{st:#}");
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    // Per-replica counters add up to the shared state.
    let (m0, m1) = (metrics(&addrs[0]), metrics(&addrs[1]));
    let sum = |series: &str| metric(&m0, series) + metric(&m1, series);
    assert_eq!(sum("fedtest_updates_accepted_total"), total as f64);
    assert_eq!(sum("fedtest_updates_duplicate_total"), 21.0);
    assert_eq!(sum("fedtest_updates_superseded_total"), superseded as f64);
    let version = st["version"].as_u64().unwrap();
    assert_eq!(sum("fedtest_aggregations_total"), (version - 1) as f64);
    // Both serve the same model.
    let model = |a: &str| http(a, "GET", "/v1/model?schema=2", None, b"").1;
    assert_eq!(model(&addrs[0]), model(&addrs[1]));
    assert_eq!(metric(&m0, "fedtest_model_version"), version as f64);
}

#[test]
fn a_replica_killed_mid_stream_loses_nothing_and_applies_nothing_twice() {
    const CLIENTS: usize = 8;
    const EACH: usize = 15;
    let Some(pg) = Postgres::start("a_replica_killed_mid_stream") else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    let args = ["--buffer", "3", "--rate", "1000", "--burst", "1000"];
    let killed = Arc::new(Mutex::new(Server::start(&sb, &db, CLIENTS, &args)));
    let other = Server::start(&sb, &db, CLIENTS, &args);
    let addrs = Arc::new(Mutex::new([
        killed.lock().unwrap().addr.clone(),
        other.addr.clone(),
    ]));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (addrs, done) = (addrs.clone(), done.clone());
            std::thread::spawn(move || {
                for k in 0..EACH {
                    let id = format!("k-{i}-{k}");
                    // Retry the same id until a replica confirms it, alternating replicas:
                    // across the kill and the restart.
                    let start = Instant::now();
                    for attempt in 0.. {
                        assert!(
                            start.elapsed() < Duration::from_secs(90),
                            "{id} never confirmed"
                        );
                        let a = addrs.lock().unwrap()[(i + k + attempt) % 2].clone();
                        let Some(answer) = try_push(&a, i, &id, &small_delta(i * EACH + k)) else {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        match answer {
                            Ok((202 | 200, _)) => break,
                            Ok((409 | 429 | 503, _)) | Err(_) => {
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
    let killed_at = kill_a_third_in(&done, CLIENTS * EACH, &killed);
    let restarted = Server::start(&sb, &db, CLIENTS, &args);
    addrs.lock().unwrap()[0] = restarted.addr.clone();
    for t in threads {
        t.join().unwrap();
    }
    assert!(killed_at < CLIENTS * EACH, "the kill came after the stream");
    let st = server_status(&sb, &db);
    let (applied, pending) = assert_each_update_counted_once(&st, (CLIENTS * EACH) as u64);
    assert!(pending <= CLIENTS as u64, "one slot per token: {st:#}");
    assert!(applied > 0);
}

#[test]
fn a_rollback_is_served_by_every_replica_at_once() {
    let Some(pg) = Postgres::start("a_rollback_is_served_by_every_replica") else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    let args = ["--buffer", "2", "--rate", "1000", "--burst", "1000"];
    let a = Server::start(&sb, &db, 4, &args);
    let b = Server::start(&sb, &db, 4, &args);
    let prior = http(&a.addr, "GET", "/v1/model?schema=2", None, b"").1;
    for round in 0..3 {
        for tok in 0..2 {
            let addr = if tok == 0 { &a.addr } else { &b.addr };
            let v = model_version(addr);
            let (status, body) = post(
                addr,
                tok,
                &update(&format!("r-{round}-{tok}"), v, &small_delta(round + tok)),
            );
            assert_eq!(status, 202, "{body}");
        }
    }
    assert_eq!(model_version(&a.addr), 4);
    assert_eq!(model_version(&b.addr), 4);
    // One update waits in the buffer; the rollback discards it.
    assert_eq!(
        post(&a.addr, 3, &update("waiting", 4, &small_delta(9))).0,
        202
    );
    sb.fedtest()
        .args(["serve", "rollback", "--to", "1", "--db"])
        .arg(&db)
        .assert()
        .success();
    for addr in [&a.addr, &b.addr] {
        let (_, body) = http(addr, "GET", "/v1/model?schema=2", None, b"");
        let now: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(now["version"], 5, "{body}");
        let before: Value = serde_json::from_str(&prior).unwrap();
        assert_eq!(now["vector"], before["vector"]);
    }
    let st = server_status(&sb, &db);
    assert_eq!(st["versions"][0]["note"], "rollback to 1", "{st:#}");
    assert_eq!(st["updates_discarded"], 1, "{st:#}");
    assert_eq!(st["updates_pending"], 0, "{st:#}");
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    // Unknown versions are refused; both replicas keep serving.
    sb.fedtest()
        .args(["serve", "rollback", "--to", "99", "--db"])
        .arg(&db)
        .assert()
        .failure();
    let (status, body) = post(&b.addr, 1, &update("after", 5, &small_delta(1)));
    assert_eq!(status, 202, "{body}");
}

#[test]
fn pruning_keeps_counts_replay_and_exactly_once_on_postgres() {
    let Some(pg) = Postgres::start("pruning_on_postgres") else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    prune_keeps_counts_and_exactly_once(&sb, &db);
    let rows = query_column(&pg.url, "SELECT count(*) FROM fedtest_updates");
    assert_eq!(rows, vec![(75 - 13).to_string()]);
}

/// Run one query on `url` and return the first column of its rows, as text.
fn query_column(url: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let rows = client.simple_query(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
        rows.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    })
}

/// Every refusal reason on PostgreSQL: the accept's checks run inside one SQL function there,
/// so this is what shows they refuse exactly what the SQLite store refuses.
#[test]
fn every_rejection_reason_is_answered_and_counted_on_postgres() {
    let Some(pg) = Postgres::start("every_rejection_reason_on_postgres") else {
        return;
    };
    let sb = Sandbox::new();
    every_rejection_reason(&sb, &PathBuf::from(&pg.url));
}

/// The load benchmark on PostgreSQL (not run by default): two replicas on one database, each
/// client alternating between them. The database runs with PostgreSQL's defaults (`fsync` and
/// `synchronous_commit` on: every accepted update is flushed to disk before its 202) unless
/// `FEDTEST_BENCH_PG_SYNC_COMMIT=off`. Knobs as for `federation::load_benchmark`
/// (`FEDTEST_BENCH_SECS`, `FEDTEST_BENCH_CLIENTS`, `FEDTEST_BENCH_BIN`,
/// `FEDTEST_BENCH_SERVER_ARGS`, e.g. `--db-connections 2`):
///
/// `FEDTEST_BENCH_BIN=target/release/fedtest FEDTEST_BENCH_SECS=60 cargo test --test it postgres_load_benchmark -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run it explicitly"]
fn postgres_load_benchmark() {
    let (secs, clients) = bench_knobs();
    const TOKENS_PER_CLIENT: usize = 4;
    let sync = std::env::var("FEDTEST_BENCH_PG_SYNC_COMMIT").unwrap_or_else(|_| "on".into());
    let setting = format!("synchronous_commit={sync}");
    let Some(pg) = Postgres::start_with("postgres_load_benchmark", &["fsync=on", &setting]) else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    let bin = std::env::var("FEDTEST_BENCH_BIN").ok();
    let tokens = clients * TOKENS_PER_CLIENT;
    let args = bench_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let replicas = [
        Server::start_bin(&sb, bin.as_deref(), &db, tokens, &args),
        Server::start_bin(&sb, bin.as_deref(), &db, tokens, &args),
    ];
    let load = drive(
        &[&replicas[0], &replicas[1]],
        clients,
        TOKENS_PER_CLIENT,
        secs,
    );
    let st = server_status(&sb, &db);
    load.report(
        &format!("PostgreSQL, two replicas, synchronous_commit={sync}"),
        clients,
        secs,
        &st,
    );
    assert_each_update_counted_once(&st, load.accepted);
}

#[test]
fn dp_noise_and_its_cost_are_shared_by_the_replicas() {
    let Some(pg) = Postgres::start("dp_noise_and_its_cost_are_shared") else {
        return;
    };
    let sb = Sandbox::new();
    let db = PathBuf::from(&pg.url);
    let args = [
        "--buffer",
        "1",
        "--clip",
        "1",
        "--dp-noise-multiplier",
        "2",
        "--rate",
        "100",
    ];
    let replicas = [
        Server::start(&sb, &db, 4, &args),
        Server::start(&sb, &db, 4, &args),
    ];
    for i in 0..4 {
        let a = &replicas[i % 2].addr;
        let (status, body) = post(
            a,
            i,
            &update(&format!("dp-{i}"), model_version(a), &small_delta(i)),
        );
        assert_eq!(status, 202, "{body}");
    }
    let st = server_status(&sb, &db);
    assert_eq!(st["version"], 5, "{st:#}");
    assert_eq!(st["dp_aggregations"], 4, "{st:#}");
    assert_eq!(st["replay_consistent"], true, "{st:#}");
    let eps: Vec<f64> = replicas
        .iter()
        .map(|r| metric(&metrics(&r.addr), "fedtest_dp_epsilon"))
        .collect();
    assert!(eps[0] > 0.0 && eps[0] == eps[1], "{eps:?}");
    assert!((st["dp_epsilon"].as_f64().unwrap() - eps[0]).abs() < 1e-9);
}
