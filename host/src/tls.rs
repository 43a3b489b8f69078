//! TLS: the pooled HTTPS client's connector (connections verified against the public web PKI roots
//! plus any the operator trusts, e.g. a private CA, and the host name; kept and reused across
//! requests and instances, as Spin pools its outbound HTTPS), and serving over HTTPS for tests.

use crate::outbound::ConnectFailure;
use anyhow::Context as _;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A rustls client configuration trusting the web PKI plus `extra_roots` (DER certificates).
pub fn client_config(extra_roots: &[Vec<u8>]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots.add(CertificateDer::from(der.clone())).context("not a usable CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Read CA certificates from a PEM or DER file.
pub fn load_roots(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read CA file {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Ok(vec![bytes]);
    }
    let mut out = vec![];
    for block in text.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let b64: String = block.split("-----END CERTIFICATE-----").next().unwrap_or("").split_whitespace().collect();
        let der = tempo_s3_shard_core::codec::base64_decode(&b64)
            .with_context(|| format!("{} holds a malformed PEM certificate", path.display()))?;
        out.push(der);
    }
    Ok(out)
}

/// The pooled HTTPS client's connector: TCP as for plain HTTP, then a TLS handshake verified with
/// `config` and the URI's host, both within the request's connect timeout. (The bench's client
/// uses it too, to reach an HTTPS backend directly.)
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    config: Arc<rustls::ClientConfig>,
}

impl Connector {
    /// Connections verified with `config`; `nodelay`: whether they set `TCP_NODELAY`.
    pub fn new(config: Arc<rustls::ClientConfig>, nodelay: bool) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(nodelay);
        tcp.set_connect_timeout(None);
        Connector { tcp, config }
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<Tls, ConnectFailure>> + Send>>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = Tls;
    type Error = ConnectFailure;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        self.tcp.poll_ready(cx).map_err(|e| ConnectFailure::Refused(Box::new(e)))
    }

    fn call(&mut self, uri: http::Uri) -> Connecting {
        let limit = crate::outbound::connect_limit();
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let (connecting, config) = (self.tcp.call(uri), self.config.clone());
        Box::pin(async move {
            let handshake = async {
                let tcp = connecting.await.map_err(|e| ConnectFailure::Refused(Box::new(e)))?.into_inner();
                let name = ServerName::try_from(host.clone()).map_err(|_| ConnectFailure::Tls)?;
                let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
                    eprintln!("tempo-s3-shard host: TLS to {host} failed: {e} (is its CA trusted? see --ca-cert)");
                    ConnectFailure::Tls
                })?;
                Ok(Tls(TokioIo::new(stream)))
            };
            tokio::time::timeout(limit, handshake).await.unwrap_or(Err(ConnectFailure::TimedOut))
        })
    }
}

/// A pooled client's TLS connection.
pub struct Tls(TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>);

impl Connection for Tls {
    fn connected(&self) -> Connected {
        self.0.inner().get_ref().0.connected()
    }
}

impl hyper::rt::Read for Tls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: hyper::rt::ReadBufCursor<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Tls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A TLS acceptor serving the certificate `chain` with its PKCS#8 `key` (DER).
pub fn acceptor(chain: &[Vec<u8>], key: &[u8]) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certs: Vec<CertificateDer<'static>> = chain.iter().map(|c| CertificateDer::from(c.clone())).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl crate::ComponentHost {
    /// Serve the component over HTTPS on `addr` with `acceptor`: the component sees each request's
    /// scheme as `https`, as a runtime terminating TLS itself reports it. Returns the bound address
    /// and the server task.
    pub async fn bind_tls(
        self,
        addr: std::net::SocketAddr,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
        use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let _ = socket.set_nodelay(true);
                let (host, acceptor) = (self.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(socket).await else { return };
                    let service = hyper::service::service_fn(move |req| {
                        let host = host.clone();
                        async move { host.handle_as(req, Scheme::Https).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((local, task))
    }
}
