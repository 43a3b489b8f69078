//! The instance pool's size, the bounded wait for a free instance, and the S3 XML answers the host
//! gives itself when no instance can answer (503 SlowDown when the pool is full, 500 when one failed).

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::time::Duration;
use tempo_s3_shard_core::access_log::AccessLog;
use tempo_s3_shard_core::error::{ErrorCode, S3Error};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Instances that may run at once by default: Spin's pool size (`SPIN_MAX_INSTANCE_COUNT`).
pub const DEFAULT_INSTANCES: u32 = 1_000;
/// How long a request waits for a free instance by default before it is answered 503 SlowDown.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// Environment variable for the pool size (the name Spin uses).
pub const INSTANCES_ENV: &str = "SPIN_MAX_INSTANCE_COUNT";
/// Environment variable for the wait, in seconds (decimals allowed).
pub const WAIT_ENV: &str = "TEMPO_S3_SHARD_INSTANCE_WAIT";

/// How many component instances run at once, and how long a request waits for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub instances: u32,
    pub wait: Duration,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool { instances: DEFAULT_INSTANCES, wait: DEFAULT_WAIT }
    }
}

impl Pool {
    /// The pool from [`INSTANCES_ENV`] and [`WAIT_ENV`], defaults for those unset.
    pub fn from_env() -> anyhow::Result<Pool> {
        let instances = std::env::var(INSTANCES_ENV).ok();
        let wait = std::env::var(WAIT_ENV).ok();
        Pool::parse(instances.as_deref(), wait.as_deref())
    }

    /// The pool from an instance count and a wait in seconds, defaults for those absent.
    pub fn parse(instances: Option<&str>, wait: Option<&str>) -> anyhow::Result<Pool> {
        let mut pool = Pool::default();
        if let Some(n) = instances {
            pool.instances = n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("the instance count {n:?} ({INSTANCES_ENV} / --max-instances) is not a positive number"))?;
        }
        if let Some(s) = wait {
            pool.wait = s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 3600.0)
                .map(Duration::from_secs_f64)
                .with_context(|| format!("the instance wait {s:?} ({WAIT_ENV} / --instance-wait) is not 0 to 3600 seconds"))?;
        }
        Ok(pool)
    }

    /// Size wasmtime's pooling allocator as Spin sizes it: one memory and two tables per instance
    /// (the component needs more than one table), and room for its core instances; plus room for
    /// the instances serving threads make ahead or have yet to tear down ([`crate::idle`]).
    pub fn configure(&self, pooling: &mut wasmtime::PoolingAllocationConfig) {
        let ahead = crate::idle::INSTANCES_PER_THREAD.saturating_mul(crate::idle::threads() as u32);
        let n = self.instances.saturating_add(ahead);
        pooling
            .total_component_instances(n)
            .total_memories(n)
            .total_tables(n.saturating_mul(2))
            .total_stacks(n)
            .total_core_instances(n.saturating_mul(4));
    }
}

/// Whether instantiating failed only because the pool had no free slot.
pub fn is_pool_full(err: &wasmtime::Error) -> bool {
    err.is::<wasmtime::PoolConcurrencyLimitError>()
}

/// An answer the host gives itself, and its access-log line (JSON) for stdout.
pub type HostAnswer = (hyper::Response<HyperOutgoingBody>, String);

/// The answer when every instance stayed busy for the whole wait: `503 SlowDown` as S3 sends it
/// (clients back off and retry).
pub fn slow_down(method: &str, path: &str, waited: Duration) -> HostAnswer {
    let err = S3Error::new(ErrorCode::SlowDown, "Please reduce your request rate.").with_resource(path);
    let detail = format!("every instance was busy for {} ms", waited.as_millis());
    answer(method, &err, "Overloaded", &detail)
}

/// The answer when the component failed before it answered (a trap): `500 InternalError`.
pub fn internal_error(method: &str, path: &str, detail: &str) -> HostAnswer {
    let err = S3Error::internal("The proxy failed while handling the request; retry it.").with_resource(path);
    answer(method, &err, "HostError", detail)
}

/// `err` as an S3 XML response with a fresh request id, and its access-log line.
fn answer(method: &str, err: &S3Error, operation: &str, detail: &str) -> HostAnswer {
    let request_id = request_id();
    let log = AccessLog {
        request_id: request_id.clone(),
        time: unix_now(),
        method: method.to_string(),
        operation: operation.to_string(),
        status: err.status(),
        error: Some(format!("{}: {detail}", err.code.as_str())),
        ..Default::default()
    };
    let body = if method == "HEAD" { String::new() } else { tempo_s3_shard_core::xml::error(err, &request_id) };
    let mut response = hyper::Response::new(
        http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync(),
    );
    *response.status_mut() = hyper::StatusCode::from_u16(err.status()).unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE);
    let headers = response.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/xml"));
    if let Ok(id) = hyper::header::HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", id);
    }
    if err.code == ErrorCode::SlowDown {
        headers.insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    (response, log.to_json())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A request id in the component's format (clock nanoseconds, hex), plus a counter so that two
/// answers in the same nanosecond differ.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    format!("{:016X}", nanos.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_settings_parse_with_clear_errors() {
        assert_eq!(Pool::parse(None, None).unwrap(), Pool::default());
        assert_eq!(Pool::parse(Some("8"), Some("0.25")).unwrap(), Pool { instances: 8, wait: Duration::from_millis(250) });
        let e = Pool::parse(Some("0"), None).unwrap_err().to_string();
        assert!(e.contains(INSTANCES_ENV), "{e}");
        let e = Pool::parse(None, Some("soon")).unwrap_err().to_string();
        assert!(e.contains(WAIT_ENV), "{e}");
    }

    #[tokio::test]
    async fn slow_down_is_an_s3_error_with_a_request_id() {
        let (response, log) = slow_down("GET", "/proxy-bucket/k", Duration::from_secs(1));
        assert_eq!(response.status(), 503);
        let log: serde_json::Value = serde_json::from_str(&log).unwrap();
        assert_eq!((log["status"].as_u64(), log["operation"].as_str()), (Some(503), Some("Overloaded")));
        assert!(response.headers().contains_key("x-amz-request-id"));
        let body = response.into_body().collect().await.ok().unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("<Code>SlowDown</Code>") && body.contains("<RequestId>"), "{body}");
        let (head, _) = slow_down("HEAD", "/proxy-bucket/k", Duration::from_secs(1));
        assert!(head.into_body().collect().await.ok().unwrap().to_bytes().is_empty());
    }
}
