//! A connection's receive low-water mark (`SO_RCVLOWAT`), which a body arriving on it raises while
//! it gathers small frames: a backend's response on a pooled connection, a client's request.
//!
//! Tokio watches sockets edge-triggered, and every piece a peer writes makes an edge: a backend
//! that writes 4 KiB at a time wakes the serving thread once per piece, even while nobody reads
//! (a 256 MiB GET: some 40,000 wake-ups, most of the runner's CPU for it), and so does a client
//! whose upload trickles in. With the mark raised, the kernel wakes no reader until that many bytes
//! wait, so the pieces gather in the socket instead.
//! A mark above what the peer will still send would stall the body, so [`crate::frames`] raises
//! it only to what is left of a body that knows its length, only while its linger runs (which
//! bounds any wait), and lowers it again before the body is handed on.

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The low-water mark of one connection's socket, shared by the connection and the bodies that
/// arrive on it (through the extensions of the response or request). Setting it after the
/// connection closed does nothing.
#[derive(Clone)]
pub struct LowWater(Arc<Mutex<Mark>>);

/// The socket (until its connection is dropped) and the mark last set on it.
struct Mark {
    fd: Option<RawFd>,
    bytes: usize,
}

impl LowWater {
    fn of(fd: RawFd) -> LowWater {
        LowWater(Arc::new(Mutex::new(Mark { fd: Some(fd), bytes: 1 })))
    }

    /// Wake readers of the socket only once `bytes` (at least 1) are waiting, or a quarter of the
    /// socket's receive buffer if that is less (a mark near the buffer's size would make the kernel
    /// clamp the receive window to it). Lowering the mark wakes a reader at once if that many bytes
    /// are already there.
    pub fn set(&self, bytes: usize) {
        let Ok(mut mark) = self.0.lock() else { return };
        let Some(fd) = mark.fd else { return };
        let bytes = match bytes {
            0 | 1 => 1,
            n => n.min(option(fd, libc::SO_RCVBUF).unwrap_or(0) / 4).max(1),
        };
        if mark.bytes == bytes {
            return;
        }
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fd` is the open socket of a live `Watched` stream: its drop clears `fd` under
        // this same lock before the stream (and so the descriptor) is closed. The option value is
        // a `c_int` whose size is passed.
        #[allow(unsafe_code)]
        let done = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT, (&raw const value).cast(), OPTION_LEN) };
        if done == 0 {
            mark.bytes = bytes;
        }
    }

    /// The socket's low-water mark as the kernel has it (`None` once the connection is closed).
    pub fn get(&self) -> Option<usize> {
        let mark = self.0.lock().ok()?;
        option(mark.fd?, libc::SO_RCVLOWAT)
    }
}

/// The size of a `c_int` socket option.
const OPTION_LEN: libc::socklen_t = size_of::<libc::c_int>() as libc::socklen_t;

/// A `c_int` socket option of `fd` at `SOL_SOCKET` (the caller holds the lock that keeps `fd` open).
fn option(fd: RawFd, name: libc::c_int) -> Option<usize> {
    let mut value: libc::c_int = 0;
    let mut len = OPTION_LEN;
    // SAFETY: `fd` is open (see `LowWater::set`); `value` and `len` are valid for writes of the
    // sizes passed.
    #[allow(unsafe_code)]
    let done = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&raw mut value).cast(), &raw mut len) };
    (done == 0).then(|| usize::try_from(value).ok()).flatten()
}

/// A TCP stream whose low-water mark the bodies arriving on it can set.
pub struct Watched {
    io: TokioIo<tokio::net::TcpStream>,
    low: LowWater,
}

impl Watched {
    /// Watch `io`.
    pub fn new(io: TokioIo<tokio::net::TcpStream>) -> Watched {
        let low = LowWater::of(io.inner().as_raw_fd());
        Watched { io, low }
    }

    /// The stream's low-water mark.
    pub fn low_water(&self) -> LowWater {
        self.low.clone()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(mut mark) = self.low.0.lock() {
            mark.fd = None;
        }
    }
}

/// A pooled client connection: its responses carry the mark in their extensions.
impl Connection for Watched {
    fn connected(&self) -> Connected {
        self.io.connected().extra(self.low.clone())
    }
}

impl Read for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn watched() -> (Watched, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Watched::new(TokioIo::new(client)), server)
    }

    #[tokio::test]
    async fn the_mark_is_set_on_the_socket_and_kept_under_a_quarter_of_its_receive_buffer() {
        let (stream, _server) = watched().await;
        let low = stream.low.clone();
        assert_eq!(low.get(), Some(1));
        low.set(8192);
        assert_eq!(low.get(), Some(8192));
        low.set(usize::MAX);
        let buffer = option(stream.io.inner().as_raw_fd(), libc::SO_RCVBUF).unwrap();
        assert_eq!(low.get(), Some(buffer / 4));
        low.set(0);
        assert_eq!(low.get(), Some(1));
    }

    #[tokio::test]
    async fn a_mark_set_after_its_connection_closed_touches_nothing() {
        let (stream, _server) = watched().await;
        let low = stream.low.clone();
        drop(stream);
        low.set(8192);
        assert_eq!(low.get(), None);
    }
}
