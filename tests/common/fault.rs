//! A fault-injecting TCP proxy in front of one backend shard: it passes bytes through, or stalls,
//! cuts the response, refuses or resets connections, delays the first byte, or answers S3's
//! `503 SlowDown` itself — switchable while a test runs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward both ways unchanged.
    Pass,
    /// Accept and read, never answer.
    Stall,
    /// Forward, but close the connection after this many bytes of the response.
    CutAfter(usize),
    /// Forward this many bytes of the response, then go silent (keep the connection open).
    StallAfter(usize),
    /// Not listening: connecting is refused.
    Refuse,
    /// Accept, then close at once (a reset, before any answer).
    Reset,
    /// Forward, holding back the response's first byte this long.
    SlowFirstByte(Duration),
    /// Answer every request `503 SlowDown` (S3 XML) without asking the backend.
    SlowDown,
}

/// The running proxy; dropping it stops it.
pub struct FaultHandle {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultHandle {
    /// Listen on a free loopback port, forwarding to `backend`.
    pub async fn start(backend: SocketAddr) -> FaultHandle {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let (fault, watching) = watch::channel(Fault::Pass);
        let task = tokio::spawn(accept_loop(Some(listener), addr, backend, watching));
        FaultHandle { addr, fault, task }
    }

    /// `http://127.0.0.1:PORT`, for `shard_endpoints`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switch to `fault`. Open connections are closed, so every request from now on (also on
    /// connections the proxy's pool would reuse) meets the new behaviour.
    pub async fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
        // Let the connection tasks see the change and close, and the listener close or reopen.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }
}

impl Drop for FaultHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accept connections while not refusing; drop the listener while refusing and bind again after.
async fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: SocketAddr,
    backend: SocketAddr,
    mut watching: watch::Receiver<Fault>,
) {
    let connections = Arc::new(Mutex::new(Vec::<tokio::task::JoinHandle<()>>::new()));
    loop {
        // `None`: the fault changed. A closed channel means the handle is gone.
        let accepted = match &listener {
            Some(l) => tokio::select! {
                a = l.accept() => Some(a),
                changed = watching.changed() => match changed {
                    Ok(()) => None,
                    Err(_) => return,
                },
            },
            None => match watching.changed().await {
                Ok(()) => None,
                Err(_) => return,
            },
        };
        match accepted {
            Some(Ok((socket, _))) => {
                let _ = socket.set_nodelay(true);
                let fault = *watching.borrow();
                let mut lock = connections.lock().unwrap();
                lock.retain(|t| !t.is_finished());
                lock.push(tokio::spawn(connection(socket, backend, fault)));
            }
            Some(Err(_)) => continue,
            None => {
                // The fault changed: close every open connection, then refuse or listen.
                for t in connections.lock().unwrap().drain(..) {
                    t.abort();
                }
                let refusing = *watching.borrow_and_update() == Fault::Refuse;
                if refusing {
                    listener = None;
                } else if listener.is_none() {
                    listener = Some(
                        TcpListener::bind(addr)
                            .await
                            .expect("listen again on the fault proxy's port"),
                    );
                }
            }
        }
    }
}

/// Serve one connection under `fault`.
async fn connection(mut client: TcpStream, backend: SocketAddr, fault: Fault) {
    match fault {
        Fault::Refuse | Fault::Reset => {
            // A zero linger makes the close a reset; it never blocks (nothing is left to send).
            #[allow(deprecated)]
            let _ = client.set_linger(Some(Duration::ZERO));
        }
        Fault::Stall => {
            let mut sink = [0u8; 64 * 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            // The peer closed its side; stay silent until it goes away.
            std::future::pending::<()>().await;
        }
        Fault::SlowDown => slow_down(client).await,
        Fault::Pass => drop(forward(client, backend, usize::MAX, Duration::ZERO).await),
        Fault::CutAfter(n) => drop(forward(client, backend, n, Duration::ZERO).await),
        Fault::StallAfter(n) => {
            let _open = forward(client, backend, n, Duration::ZERO).await;
            std::future::pending::<()>().await;
        }
        Fault::SlowFirstByte(delay) => drop(forward(client, backend, usize::MAX, delay).await),
    }
}

/// Forward to `backend`: the request unchanged, the response up to `limit` bytes, its first byte
/// after `delay`. Returns the connection's halves (still open unless the response ended before
/// `limit`), so a caller can hold it silent.
async fn forward(
    client: TcpStream,
    backend: SocketAddr,
    limit: usize,
    delay: Duration,
) -> Option<impl Sized> {
    let Ok(upstream) = TcpStream::connect(backend).await else {
        return None;
    };
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    {
        let requests = async {
            let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
            let _ = up_write.shutdown().await;
        };
        let responses = relay_response(&mut up_read, &mut client_write, limit, delay);
        // The response ending ends the connection (a cut closes it while the backend still sends).
        tokio::pin!(requests, responses);
        tokio::select! {
            _ = &mut requests => {
                // The client finished sending; keep answering until the response ends.
                responses.await;
            }
            _ = &mut responses => {}
        }
    }
    Some((client_read, client_write, up_read, up_write))
}

/// Copy the backend's response to the client: at most `limit` bytes, the first after `delay`.
/// Closes the client's side only when the response ends first (a cut or a stall is the caller's).
async fn relay_response(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    limit: usize,
    delay: Duration,
) {
    let mut sent = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if sent == 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let n = n.min(limit - sent);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        sent += n;
        if sent >= limit {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Read a request head and answer `503 SlowDown` as S3 does, then close.
async fn slow_down(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULT0000000001</RequestId></Error>";
    let response = format!(
        "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\nx-amz-request-id: FAULT0000000001\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
    // Drain what the client still sends (a body) briefly, so it reads the answer instead of a reset.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}
