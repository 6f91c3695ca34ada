//! [`LimitedListener`]: the TCP listener with a cap on open connections (each holds a semaphore
//! permit until it closes; at the cap, new connections wait in the kernel's backlog), and
//! `TCP_NODELAY` so streamed tokens are not held back by Nagle's algorithm.

use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A TCP listener that keeps at most `max` connections open.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    open: Arc<AtomicUsize>,
}

impl LimitedListener {
    /// Wraps `inner`; `permits` holds one permit per allowed connection. `open` counts the
    /// connections accepted and not yet closed (the permits alone would also count the one the
    /// accept loop holds while it waits for the next connection).
    pub fn new(
        inner: TcpListener,
        permits: Arc<Semaphore>,
        open: Arc<AtomicUsize>,
    ) -> LimitedListener {
        LimitedListener {
            inner,
            permits,
            open,
        }
    }
}

/// A connection holding its permit.
pub struct LimitedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    open: Arc<AtomicUsize>,
    /// Still counted in `open` (until shut down or dropped).
    counted: bool,
}

impl LimitedStream {
    /// Stops counting this connection as open (once).
    fn uncount(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.open.fetch_sub(1, Relaxed);
        }
    }
}

impl Drop for LimitedStream {
    fn drop(&mut self) {
        self.uncount();
    }
}

impl Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        // The semaphore is never closed, so this only waits.
        let permit = loop {
            match self.permits.clone().acquire_owned().await {
                Ok(p) => break p,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Best effort: a socket that refuses it still works, only with more latency.
                    let _ = stream.set_nodelay(true);
                    self.open.fetch_add(1, Relaxed);
                    let open = self.open.clone();
                    return (
                        LimitedStream {
                            stream,
                            _permit: permit,
                            open,
                            counted: true,
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The client sees the connection end during this call, before the task drops it, so
        // it stops counting first (a new connection must never see this one as open).
        self.uncount();
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
