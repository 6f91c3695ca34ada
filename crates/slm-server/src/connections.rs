//! The accept loop: serves each connection with hyper's HTTP/1 server under time limits, and
//! shuts down gracefully (stop accepting, let every open connection finish its request).
//!
//! `axum::serve` runs hyper without a timer, so hyper's header read timeout never fires: a
//! client that opens a connection and sends nothing (or a header a byte a minute) holds it,
//! and the connection cap then lets a few hundred such sockets lock everyone out. Here every
//! connection must deliver a request's headers in time (`ServerConfig::header_read_timeout`,
//! default [`HEADER_READ_TIMEOUT`]; idle keep-alive connections included); request bodies are
//! bounded separately where the routes read them (`body_read_timeout`, default
//! [`BODY_READ_TIMEOUT`]: 408).

use crate::listener::LimitedListener;
use axum::serve::Listener;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;

/// Default time a connection has to send a request's headers, from when the server starts
/// waiting for them (a new connection, or an idle keep-alive one).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time a request has to send its whole body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open connections to
/// finish their requests (streams in flight run to their end). Connections get
/// `header_timeout` to send each request's headers.
pub async fn serve(
    mut listener: LimitedListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            (io, _addr) = listener.accept() => {
                let service = TowerToHyperService::new(app.clone());
                let conn = http.serve_connection(TokioIo::new(io), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client that breaks the protocol or times out just loses its connection.
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}
