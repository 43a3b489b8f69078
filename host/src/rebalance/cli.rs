//! `tempo-s3-shard rebalance ARGS`: the rebalance tool's command line.

use super::{parse_bucket_list, run, Endpoint, Options, Progress};
use anyhow::{anyhow, bail, Context as _};
use tempo_s3_shard_core::ring::normalize_prefix;

const USAGE: &str = "\
usage: tempo-s3-shard rebalance --endpoint URL --access-key AK --secret-key SK [--region R] [--use-ssl] [--ca-cert PEM]
                                --buckets a,b,c,d [--previous-buckets a,b,c] [--key-prefix P] [--dry-run]
       tempo-s3-shard rebalance --config config.json [--buckets a,b,c,d] [--previous-buckets ...] [--dry-run]

Moves every object that is not on its ring owner (for --buckets, in that order) to it: server-side
copy, verify (size and ETag), then delete the misplaced copy. Safe to interrupt and run again.
Run it after every proxy serves the new ring with previous_buckets set to the old one.

options:
  --config FILE            the Go proxy's config.json (endpoint, credentials, region, use_ssl, buckets);
                           with --buckets, its buckets are the previous ring unless --previous-buckets is given
  --endpoint URL           http(s)://host[:port], or host[:port] with --use-ssl deciding the scheme
  --ca-cert FILE           also trust this CA (PEM or DER) for an https endpoint (repeatable)
  --buckets LIST           the ring (comma-separated or a JSON array, as the `buckets` variable)
  --previous-buckets LIST  the previous ring's buckets, scanned too (as `previous_buckets`)
  --key-prefix P           the proxy's key_prefix (Tempo's prefix): keys under it are placed by the
                           two segments after it, as the proxy places them
  --dry-run                print what would move and the share of objects and bytes; change nothing
  --max-moves N            stop after N misplaced keys (a staged run); run again to continue
  --concurrency N          keys handled at once (default 8)
  --quiet                  print only the final report
";

/// `tempo-s3-shard rebalance ARGS`.
pub async fn main(args: Vec<String>) -> anyhow::Result<()> {
    let mut ep = Endpoint {
        endpoint: String::new(),
        use_ssl: false,
        region: tempo_s3_shard_core::config::DEFAULT_REGION.into(),
        access_key_id: String::new(),
        secret_access_key: String::new(),
        ca_roots: vec![],
    };
    let mut opts = Options { verbose: true, ..Options::default() };
    let (mut buckets, mut previous, mut config) = (None, None, None);
    let (mut endpoint, mut ak, mut sk, mut region, mut use_ssl) = (None, None, None, None, false);
    let parsed = crate::args::parse(args, USAGE, |arg, v| {
        match arg {
            "--endpoint" => endpoint = Some(v.value(arg)?),
            "--access-key" => ak = Some(v.value(arg)?),
            "--secret-key" => sk = Some(v.value(arg)?),
            "--region" => region = Some(v.value(arg)?),
            "--use-ssl" => use_ssl = true,
            "--ca-cert" => ep.ca_roots.extend(crate::tls::load_roots(std::path::Path::new(&v.value(arg)?))?),
            "--buckets" => buckets = Some(parse_bucket_list(&v.value(arg)?).context("--buckets")?),
            "--previous-buckets" => previous = Some(parse_bucket_list(&v.value(arg)?).context("--previous-buckets")?),
            "--key-prefix" => {
                opts.key_prefix = normalize_prefix(&v.value(arg)?).map_err(|why| anyhow!("--key-prefix {why}"))?
            }
            "--config" => config = Some(crate::goconfig::GoConfig::load(std::path::Path::new(&v.value(arg)?))?),
            "--dry-run" => opts.dry_run = true,
            "--max-moves" => opts.max_moves = Some(v.parsed(arg, "a number")?),
            "--concurrency" => opts.concurrency = v.parsed(arg, "a number")?,
            "--quiet" => opts.verbose = false,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if parsed == crate::args::Parsed::Help {
        return Ok(());
    }
    if let Some(cfg) = config {
        ep.endpoint = cfg.endpoint.clone();
        ep.use_ssl = cfg.use_ssl;
        ep.access_key_id = cfg.access_key_id.clone();
        ep.secret_access_key = cfg.secret_access_key.clone();
        if let Some(r) = cfg.region.filter(|r| !r.is_empty()) {
            ep.region = r;
        }
        let from_config = parse_bucket_list(&serde_json::to_string(&cfg.buckets)?).context("buckets of --config")?;
        if buckets.is_some() && previous.is_none() {
            previous = Some(from_config);
        } else if buckets.is_none() {
            buckets = Some(from_config);
        }
    }
    if let Some(e) = endpoint {
        ep.endpoint = e;
    }
    ep.use_ssl |= use_ssl;
    if let Some(v) = ak {
        ep.access_key_id = v;
    }
    if let Some(v) = sk {
        ep.secret_access_key = v;
    }
    if let Some(v) = region {
        ep.region = v;
    }
    if ep.endpoint.is_empty() {
        bail!("--endpoint (or --config) is required\n\n{USAGE}");
    }
    opts.buckets = buckets.with_context(|| format!("--buckets (or --config) is required\n\n{USAGE}"))?;
    opts.previous_buckets = previous.unwrap_or_default();

    let progress = Progress::default();
    let report = run(&ep, &opts, &progress).await?;
    print!("{report}");
    if !report.errors.is_empty() {
        bail!("{} objects could not be moved (they were left where they were); run again", report.errors.len());
    }
    if !report.conflicts.is_empty() {
        bail!("{} conflicts need a decision (both copies were kept)", report.conflicts.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lists_parse_like_the_proxy() {
        assert_eq!(parse_bucket_list("a-1, b-2 ,c-3").unwrap(), ["a-1", "b-2", "c-3"]);
        assert_eq!(parse_bucket_list(r#"["a-1","b-2"]"#).unwrap(), ["a-1", "b-2"]);
        assert!(parse_bucket_list("a-1,,b-2").is_err());
        assert!(parse_bucket_list("Bad_Name").is_err());
    }
}
