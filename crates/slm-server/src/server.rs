//! [`Server`]: binds the socket, runs the router on its own tokio runtime thread, installs the
//! model when it is loaded (the server answers `/health` with 503 until then), and shuts down
//! gracefully: stop accepting, let in-flight requests finish, then stop the worker.

use crate::embeddings::EmbeddingService;
use crate::engine::Engine;
use crate::error::ServerError;
use crate::listener::LimitedListener;
use crate::metrics::Metrics;
use crate::params::RequestLimits;
use crate::routes::{self, AppState, Ready};
use crate::worker;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How the server listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `host:port` to listen on (port 0 picks a free one).
    pub addr: String,
    /// When set, `/v1/*` requires `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Requests that may wait for the worker before new ones get 503.
    pub queue_capacity: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Per-field request limits.
    pub limits: RequestLimits,
    /// Shut down on Ctrl-C / SIGTERM (the CLI); off for embedded servers and tests.
    pub handle_signals: bool,
    /// Threads of the async runtime (HTTP only; generation runs on the model's pool).
    pub http_threads: usize,
    /// Most connections open at once; more wait in the kernel's backlog until one closes.
    pub max_connections: usize,
    /// Time a connection has to send a request's headers (then it is closed).
    pub header_read_timeout: Duration,
    /// Time a request has to send its body once the headers are in (then 408).
    pub body_read_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            addr: "127.0.0.1:8080".into(),
            api_key: None,
            queue_capacity: 16,
            max_body_bytes: 1 << 20,
            limits: RequestLimits::default(),
            handle_signals: false,
            http_threads: 2,
            max_connections: 256,
            header_read_timeout: crate::connections::HEADER_READ_TIMEOUT,
            body_read_timeout: crate::connections::BODY_READ_TIMEOUT,
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Binds `config.addr` and starts serving (503 on model endpoints until [`install`](Self::install)).
    pub fn start(config: ServerConfig) -> Result<Server, ServerError> {
        if config.queue_capacity == 0
            || config.max_body_bytes == 0
            || config.http_threads == 0
            || config.max_connections == 0
            || config.header_read_timeout.is_zero()
            || config.body_read_timeout.is_zero()
        {
            return Err(ServerError::Config(
                "queue capacity, body limit, HTTP threads, connection limit and read timeouts must be at least 1"
                    .into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.http_threads)
            .thread_name("slm-http")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&config.addr))
            .map_err(|reason| ServerError::Bind {
                addr: config.addr.clone(),
                reason,
            })?;
        let addr = listener.local_addr().map_err(|reason| ServerError::Bind {
            addr: config.addr.clone(),
            reason,
        })?;
        let permits = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
        let open_connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let listener = LimitedListener::new(listener, permits, open_connections.clone());
        let state = Arc::new(AppState {
            open_connections,
            api_key: config.api_key.clone().filter(|k| !k.is_empty()),
            max_body_bytes: config.max_body_bytes,
            body_read_timeout: config.body_read_timeout,
            limits: config.limits,
            metrics: Arc::new(Metrics::default()),
            ready: OnceLock::new(),
            embeddings: OnceLock::new(),
            started: crate::respond::unix_now(),
        });
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let signals = config.handle_signals;
        let header_timeout = config.header_read_timeout;
        let thread = std::thread::Builder::new()
            .name("slm-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let shutdown = async move {
                        tokio::select! {
                            _ = stopped => {}
                            _ = shutdown_signal(), if signals => {}
                        }
                    };
                    crate::connections::serve(listener, app, header_timeout, shutdown).await;
                    Ok(())
                })
            })
            .map_err(ServerError::Runtime)?;
        Ok(Server {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Installs the loaded model and starts the worker; model endpoints answer from now on.
    pub fn install(&self, engine: Engine, queue_capacity: usize) -> Result<(), ServerError> {
        if self.state.ready.get().is_some() {
            return Err(ServerError::AlreadyLoaded);
        }
        let engine = Arc::new(engine);
        let (queue, handle) =
            worker::spawn(engine.clone(), queue_capacity, self.state.metrics.clone())
                .map_err(|e| ServerError::Config(e.to_string()))?;
        let ready = Ready {
            engine,
            queue,
            worker: Mutex::new(Some(handle)),
        };
        if let Err(ready) = self.state.ready.set(ready) {
            ready.queue.close();
            return Err(ServerError::AlreadyLoaded);
        }
        Ok(())
    }

    /// Installs the encoder behind `POST /v1/embeddings`.
    pub fn install_embeddings(&self, service: EmbeddingService) -> Result<(), ServerError> {
        self.state
            .embeddings
            .set(Arc::new(service))
            .map_err(|_| ServerError::AlreadyLoaded)
    }

    /// Blocks until the server stops (a signal with `handle_signals`, or [`shutdown`](Self::shutdown)
    /// from elsewhere), then finishes the worker.
    pub fn wait(mut self) -> Result<(), ServerError> {
        self.finish()
    }

    /// Stops accepting connections, lets in-flight requests finish, and stops the worker.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.finish()
    }

    fn finish(&mut self) -> Result<(), ServerError> {
        let served = match self.thread.take() {
            Some(t) => t.join().map_err(|_| {
                ServerError::Runtime(std::io::Error::other("the server thread panicked"))
            })?,
            None => Ok(()),
        };
        if let Some(ready) = self.state.ready.get() {
            ready.queue.close();
            if let Some(h) = ready.worker.lock().ok().and_then(|mut w| w.take()) {
                h.join().map_err(|_| {
                    ServerError::Runtime(std::io::Error::other("the worker thread panicked"))
                })?;
            }
        }
        served.map_err(ServerError::Runtime)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.finish();
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
