//! Accepting connections with bounds, so that clients that open connections and
//! send nothing (or a request head a byte at a time) cannot hold the server's file
//! descriptors: a request head must arrive whole within `--header-read-timeout`,
//! and at most `--max-connections` are open at once (further clients wait in the
//! listen backlog, and the log says so once). On stop, no new connection is taken
//! and each open one finishes the request it is serving.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a failed `accept` waits before the next (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` is cancelled, then waits for the
/// open connections to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let open = std::sync::Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut at_limit = false;
    loop {
        if open.available_permits() == 0 && !at_limit {
            at_limit = true;
            tracing::warn!(
                max_connections = limits.max_connections,
                "at the connection limit (--max-connections): new connections wait"
            );
        }
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => permit.expect("never closed"),
            () = stop.cancelled() => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        at_limit = false;
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => return log_ended(served),
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            log_ended(connection.await);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

fn log_ended(served: Result<(), hyper::Error>) {
    if let Err(error) = served {
        tracing::debug!(%error, "connection ended");
    }
}
