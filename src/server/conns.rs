//! The accept loop: a cap on open connections, a time limit on reading a request's head (which
//! also closes an idle keep-alive connection), and room for honest clients when the cap is
//! reached.
//!
//! `axum::serve` has neither a cap nor a header timeout (hyper's needs a timer it is not
//! given), so a few hundred idle or half-sent connections held the server (issue 11). Here,
//! a connection that has not sent a whole request head within `header_timeout` is closed, and
//! when `max` connections are open, a new one takes the place of the connection that has
//! been idle (no request in progress: nothing sent, half a head, or between keep-alive
//! requests) the longest — or, when none is idle, of a request that has been running for
//! more than a second (a body trickling in). So connections that send nothing or send
//! slowly cannot keep one that sends a request out. When every slot is busy with a young
//! request, the accept waits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_service::Service;

/// Limits of the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most.
    pub max: usize,
    /// Time to send a whole request head, counted from the connection's start or the end of
    /// its previous request.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// A request in progress longer than this may be cut to make room (honest requests take
/// milliseconds; a body trickling in would otherwise hold its slot for the body timeout).
const BUSY_GRACE: Duration = Duration::from_secs(1);

/// What the loop knows of one connection.
struct Slot {
    /// Requests in progress, and since when it has had none (or has had some).
    state: Mutex<(usize, Instant)>,
    /// Told to close (evicted to make room).
    close: Notify,
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Table {
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    /// A connection ended or a request finished: room may have been made.
    changed: Notify,
    next: AtomicU64,
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub open: AtomicU64,
    pub evicted: AtomicU64,
    pub header_timeouts: AtomicU64,
}

impl Table {
    /// Make room for one more connection: nothing to do under the cap; over it, close the
    /// connection idle the longest; none idle: wait for a change.
    async fn make_room(&self, max: usize, counters: &Counters) {
        loop {
            let changed = self.changed.notified();
            {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                if open.len() < max.max(1) {
                    return;
                }
                // Idle the longest first; then a request that has run longer than
                // BUSY_GRACE (a body trickling in), counted from the end of its grace.
                let victim = open
                    .iter()
                    .filter_map(|(id, s)| {
                        let st = s.state.lock().unwrap_or_else(|e| e.into_inner());
                        match st.0 {
                            0 => Some((st.1, *id)),
                            _ if st.1.elapsed() > BUSY_GRACE => Some((st.1 + BUSY_GRACE, *id)),
                            _ => None,
                        }
                    })
                    .min();
                if let Some((_, id)) = victim
                    && let Some(slot) = open.remove(&id)
                {
                    slot.closed.store(true, Ordering::SeqCst);
                    slot.close.notify_one();
                    counters.evicted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            // Every connection is in a request: wait for one to finish (bounded, in case a
            // notification was missed).
            let _ = tokio::time::timeout(Duration::from_millis(50), changed).await;
        }
    }
}

/// Accept connections on `listener` and serve `router` on each until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    counters: Arc<Counters>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let table = Arc::new(Table::default());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: let connections close, then go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        table.make_room(limits.max, &counters).await;
        let id = table.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            state: Mutex::new((0, Instant::now())),
            close: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        table
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, slot.clone());
        counters.open.fetch_add(1, Ordering::Relaxed);
        let (table, counters, router) = (table.clone(), counters.clone(), router.clone());
        tokio::spawn(async move {
            connection(stream, router, slot, limits, &counters).await;
            table
                .open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            counters.open.fetch_sub(1, Ordering::Relaxed);
            table.changed.notify_waiters();
        });
    }
    Ok(())
}

async fn connection(
    stream: tokio::net::TcpStream,
    router: Router,
    slot: Arc<Slot>,
    limits: Limits,
    counters: &Counters,
) {
    let io = TokioIo::new(stream);
    let tracked = slot.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut router = router.clone();
        let slot = tracked.clone();
        async move {
            if slot.closed.load(Ordering::SeqCst) {
                // Evicted while its head arrived: rare; the client retries.
                let mut r = Response::new(Body::from("server busy\n"));
                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return Ok::<_, Infallible>(r);
            }
            {
                let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
                st.0 += 1;
                st.1 = Instant::now();
            }
            let response = router.call(req.map(Body::new)).await;
            {
                let mut st = slot.state.lock().unwrap_or_else(|e| e.into_inner());
                st.0 -= 1;
                st.1 = Instant::now();
            }
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, service);
    // hyper's header timeout starts with the first byte of a head; this one also closes a
    // connection that sends nothing at all, or nothing after its last answer.
    let idle = async {
        loop {
            let (busy, since) = *slot.state.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = since + limits.header_timeout;
            let now = Instant::now();
            if busy == 0 && now >= deadline {
                return;
            }
            let wait = if busy == 0 {
                deadline - now
            } else {
                limits.header_timeout
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    };
    tokio::select! {
        result = conn => {
            if let Err(e) = result
                && e.is_timeout()
            {
                counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Dropping the connection closes the socket.
        () = slot.close.notified() => {}
        () = idle => {
            counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
        }
    }
}
