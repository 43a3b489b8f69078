//! HTTPS to backends with operator-supplied trust roots (e.g. a private CA), on top of the public
//! web PKI roots: one TLS connection per request, verified against those roots and the host name,
//! within the request's connect and first-byte timeouts.

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::Arc;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::WasiBody;

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

type IoFuture = Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

/// Send one request over a fresh TLS connection verified with `config`; connecting (TCP and TLS)
/// within `limits.connect` (else `ConnectionTimeout`), the response head within `limits.first_byte`
/// (else `ConnectionReadTimeout`); `nodelay`: whether the connection sets `TCP_NODELAY`. The caller
/// bounds the body's pauses.
pub async fn send(
    config: Arc<rustls::ClientConfig>,
    request: hyper::Request<WasiBody>,
    limits: crate::outbound::Limits,
    nodelay: bool,
) -> wasmtime_wasi_http::Result<(hyper::Response<WasiBody>, IoFuture)> {
    use wasmtime_wasi_http::Error;
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(443);
    let connecting = connect(config, &host, port, nodelay);
    let stream = tokio::time::timeout(limits.connect, connecting).await.map_err(|_| Error::ConnectionTimeout)??;
    crate::outbound::first_byte_within(limits.first_byte, exchange(stream, request, uri)).await?
}

/// A verified TLS connection to `host:port`.
async fn connect(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    nodelay: bool,
) -> wasmtime_wasi_http::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use wasmtime_wasi_http::Error;
    let tcp = tokio::net::TcpStream::connect((host, port)).await.map_err(|_| Error::ConnectionRefused)?;
    let _ = tcp.set_nodelay(nodelay);
    let name = ServerName::try_from(host.to_string()).map_err(|_| Error::TlsCertificateError)?;
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
        eprintln!("tempo-s3-shard host: TLS to {host}:{port} failed: {e} (is its CA trusted? see --ca-cert)");
        Error::TlsCertificateError
    })
}

/// One HTTP/1.1 request and its response head over `stream`.
async fn exchange(
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    request: hyper::Request<WasiBody>,
    uri: http::Uri,
) -> wasmtime_wasi_http::Result<(hyper::Response<WasiBody>, IoFuture)> {
    use http_body_util::BodyExt;
    use wasmtime_wasi_http::Error;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Error::HttpProtocolError)?;
    let io: IoFuture = Box::new(async move { conn.await.map_err(|_| Error::HttpProtocolError) });
    // Origin-form request target over the connection.
    let mut request = request;
    if let Some(pq) = uri.path_and_query() {
        *request.uri_mut() = pq.as_str().parse().map_err(|_| Error::HttpProtocolError)?;
    }
    let (io_task, response) = {
        let handle = tokio::spawn(Box::into_pin(io));
        let response = sender.send_request(request).await.map_err(|_| Error::HttpProtocolError)?;
        (handle, response)
    };
    let io: IoFuture = Box::new(async move { io_task.await.unwrap_or(Ok(())) });
    Ok((response.map(|b| b.map_err(Error::from).boxed_unsync()), io))
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
