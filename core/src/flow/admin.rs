//! The operator endpoints' flows: `locate` answers from the ring, `health` asks every bucket at once.

use super::{call, Outbound, Transport};
use crate::admin::{self, AdminOp};
use crate::backend::Call;
use crate::context::Proxy;
use crate::error::S3Result;
use crate::reply::Reply;

/// Answer an operator request.
pub async fn run<T: Transport>(t: &T, proxy: &Proxy, op: AdminOp, now: u64) -> S3Result<Reply> {
    match op {
        AdminOp::Locate { key } => Ok(admin::locate(proxy, &key)),
        AdminOp::Health => Ok(health(t, proxy, now).await),
    }
}

/// Every backend bucket asked at once (each bounded by the backend timeouts), all reported: an
/// operator wants to see every shard that is down, not only the first.
async fn health<T: Transport>(t: &T, proxy: &Proxy, now: u64) -> Reply {
    let calls = (0..proxy.all_buckets.len()).map(|shard| async move {
        let request = proxy.request(shard, Call::new("HEAD"), now);
        match call::send(t, proxy, shard, &request, Outbound::Empty).await {
            Ok(sent) => Ok(sent.head.status),
            Err(err) => Err(err.message),
        }
    });
    let answers = futures::future::join_all(calls).await;
    admin::health(proxy, &answers)
}
