//! `tempo-s3-shard`: run the proxy component locally (with local S3 backends by default), or only
//! the backends (for `spin up`), or the original Go proxy's `config.json` against a real endpoint.

mod bench;

use anyhow::{bail, Context as _};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use tempo_s3_shard_host::backends::{BackendOptions, S3Backend, LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::goconfig::GoConfig;
use tempo_s3_shard_host::service::{self, METRICS_PATH};
use tempo_s3_shard_host::pool::Pool;
use tempo_s3_shard_host::threads::{self, Threads};
use tempo_s3_shard_host::{component, wasm, ComponentHost};
use tokio::net::TcpListener;

const USAGE: &str = "\
usage: tempo-s3-shard [OPTIONS]              run local S3 backends and the proxy on 127.0.0.1:8080
       tempo-s3-shard --config config.json   run the proxy with the Go proxy's config.json
       tempo-s3-shard backends               run only the local S3 backends (for `spin up`)
       tempo-s3-shard rebalance --help       move objects to their ring owner after a ring change
       tempo-s3-shard ring-plan --help       how a ring spreads keys; what a proposed ring would move
       tempo-s3-shard bench [--quick]        benchmark the proxy against the direct backend
                                             (writes target/bench/report.json)

options:
  --listen ADDR        proxy address (default 127.0.0.1:8080; with --config its listen_addr, else :8080)
  --metrics-listen ADDR  serve GET /metrics here instead of on the proxy's address
  --backend-listen ADDR  local backends' address (default 127.0.0.1:9000)
  --data DIR           where the local backends keep objects (default ./data)
  --backend-latency MS the local backends wait MS milliseconds before each request (a remote store's
                       round trip; decimals allowed, e.g. 0.5)
  --wasm FILE          use this component instead of building it from the workspace
  --var NAME=VALUE     set a Spin variable (repeatable; overrides the defaults)
  --ca-cert FILE       trust this CA (PEM or DER) for https backends, besides the public roots
  --spin-sockets       accepted and outbound connections without TCP_NODELAY, as Spin 3.6 leaves
                       them, and bodies handed to the component frame by frame as read, as Spin does
                       (also TEMPO_S3_SHARD_SPIN_SOCKETS=1; bench: this project's proxy runs so)
  --spin-instances     instantiate each request's instance as it arrives and tear it down as it ends,
                       as Spin does (also TEMPO_S3_SHARD_IDLE_WORK=0); by default a serving thread does
                       both while its requests wait on backends (bench: this project's proxy runs so)
  --max-instances N    component instances running at once (default 1000, as Spin; env SPIN_MAX_INSTANCE_COUNT)
  --instance-wait SECS how long a request waits for a free instance before 503 SlowDown (default 1;
                       env TEMPO_S3_SHARD_INSTANCE_WAIT)
  --quick              bench: shorter runs and 256 MiB instead of 1 GiB large objects
  --only 1,3,4,5,7     bench: only these scenario groups (1-2 small objects, 3 large, 4 LIST, 5 fixed work, 7 HTTPS backend)
  --seed-bin FILE      bench: also measure the original Go proxy (this binary, started per backend
                       with a generated config.json); this project then serves anonymous requests too
  --spin-bin FILE      bench: serve this project through the real Spin (`FILE up` on spin.toml, started
                       per backend, variables as SPIN_VARIABLE_*) instead of the runner
  --spin-static-variables  bench: with --spin-bin, give Spin the variables through a static provider in
                       the runtime config (runtime-config.toml's example) instead of the environment
  --rounds N           bench: alternate the targets N times per row (each round as long as by default)
                       and run each large transfer N times; steadier ratios on a noisy machine
  --backend-cores      bench: the backend on half of the cores, the client and the proxies on the
                       other half, as S3 runs on other machines (their CPU then never slows it)

bench: `cargo run --release -p tempo-s3-shard-host -- bench [--quick]` measures an optimised runner, as
Spin is one (the dev profile, which builds dependencies at opt-level 2 and our crates at 1, costs about
13% more proxy CPU per small request). The component is always built with the release-like `component`
profile. The full run takes a few minutes on 2 cores.
";

struct Args {
    command: Option<String>,
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    metrics_listen: Option<SocketAddr>,
    backend_listen: SocketAddr,
    /// Added to every local backend request.
    backend_latency: Option<std::time::Duration>,
    data: PathBuf,
    vars: HashMap<String, String>,
    ca_cert: Option<PathBuf>,
    quick: bool,
    only: Option<String>,
    spin_sockets: bool,
    spin_instances: bool,
    seed_bin: Option<PathBuf>,
    spin_bin: Option<PathBuf>,
    spin_static_variables: bool,
    rounds: Option<usize>,
    backend_cores: bool,
    max_instances: Option<String>,
    instance_wait: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        command: None,
        config: None,
        listen: None,
        metrics_listen: None,
        backend_listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
        backend_latency: None,
        data: PathBuf::from("data"),
        vars: HashMap::new(),
        ca_cert: None,
        quick: false,
        only: None,
        spin_sockets: false,
        spin_instances: false,
        seed_bin: None,
        spin_bin: None,
        spin_static_variables: false,
        rounds: None,
        backend_cores: false,
        max_instances: std::env::var(tempo_s3_shard_host::pool::INSTANCES_ENV).ok(),
        instance_wait: std::env::var(tempo_s3_shard_host::pool::WAIT_ENV).ok(),
    };
    let parsed = tempo_s3_shard_host::args::parse(std::env::args().skip(1), USAGE, |arg, v| {
        match arg {
            "--config" => args.config = Some(PathBuf::from(v.value(arg)?)),
            "--listen" => args.listen = Some(v.parsed(arg, "host:port")?),
            "--metrics-listen" => args.metrics_listen = Some(v.parsed(arg, "host:port")?),
            "--backend-listen" => args.backend_listen = v.parsed(arg, "host:port")?,
            "--backend-latency" => args.backend_latency = Some(v.millis(arg)?),
            "--quick" => args.quick = true,
            "--spin-sockets" => args.spin_sockets = true,
            "--spin-instances" => args.spin_instances = true,
            "--backend-cores" => args.backend_cores = true,
            "--seed-bin" => args.seed_bin = Some(PathBuf::from(v.value(arg)?)),
            "--spin-bin" => args.spin_bin = Some(PathBuf::from(v.value(arg)?)),
            "--spin-static-variables" => args.spin_static_variables = true,
            "--ca-cert" => args.ca_cert = Some(PathBuf::from(v.value(arg)?)),
            "--only" => args.only = Some(v.value(arg)?),
            "--rounds" => args.rounds = Some(v.parsed(arg, "a number of rounds")?),
            "--max-instances" => args.max_instances = Some(v.value(arg)?),
            "--instance-wait" => args.instance_wait = Some(v.value(arg)?),
            "--data" => args.data = PathBuf::from(v.value(arg)?),
            "--wasm" => std::env::set_var("TEMPO_S3_SHARD_WASM", v.value(arg)?),
            "--var" => {
                let var = v.value(arg)?;
                let (name, value) = var.split_once('=').context("--var takes NAME=VALUE")?;
                args.vars.insert(name.to_string(), value.to_string());
            }
            cmd if !cmd.starts_with('-') && args.command.is_none() => args.command = Some(cmd.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if parsed == tempo_s3_shard_host::args::Parsed::Help {
        std::process::exit(0);
    }
    Ok(args)
}

const LOCAL_BUCKETS: [&str; 3] = ["shard1", "shard2", "shard3"];

/// mimalloc: glibc's malloc and free were a tenth of the runner's CPU per request (wasmtime's
/// per-request stores, wasi-http's tables, hyper's buffers, all short-lived and across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Subcommands with their own options.
    match std::env::args().nth(1).as_deref() {
        Some("rebalance") => return tempo_s3_shard_host::rebalance::main(std::env::args().skip(2).collect()).await,
        Some("ring-plan") => return tempo_s3_shard_host::ring_plan::main(std::env::args().skip(2).collect()),
        _ => {}
    }
    let args = parse_args()?;
    match args.command.as_deref() {
        None => run_proxy(args).await,
        Some("backends") => {
            let backend = start_local_backends(&args).await?;
            println!("local S3 backends on {} (buckets {}), data in {}", backend.endpoint(), LOCAL_BUCKETS.join(", "), args.data.display());
            println!("credentials: access key {LOCAL_ACCESS_KEY}, secret {LOCAL_SECRET_KEY}");
            tokio::signal::ctrl_c().await?;
            Ok(())
        }
        Some("bench") => {
            let options = bench::Options {
                quick: args.quick,
                only: args.only.clone(),
                spin_sockets: args.spin_sockets,
                spin_instances: args.spin_instances,
                seed_bin: args.seed_bin.clone(),
                spin_bin: args.spin_bin.clone(),
                spin_static_variables: args.spin_static_variables,
                rounds: args.rounds,
                backend_cores: args.backend_cores,
            };
            bench::run(&options).await
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

async fn start_local_backends(args: &Args) -> anyhow::Result<S3Backend> {
    let buckets: Vec<String> = LOCAL_BUCKETS.iter().map(|b| b.to_string()).collect();
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create {}", args.data.display()))?;
    let opts = BackendOptions { listen: args.backend_listen, latency: args.backend_latency, ..BackendOptions::default() };
    S3Backend::start(&args.data, &buckets, opts)
        .await
        .with_context(|| format!("cannot start the local backends on {} (is another instance running? use --backend-listen)", args.backend_listen))
}

async fn run_proxy(args: Args) -> anyhow::Result<()> {
    let mut vars = HashMap::new();
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let _backend;
    let mut access_log = true;
    if let Some(path) = &args.config {
        let cfg = GoConfig::load(path)?;
        vars = cfg.variables();
        listen = cfg.listen()?;
        access_log = cfg.access_log();
    } else {
        let backend = start_local_backends(&args).await?;
        vars.insert("buckets".into(), LOCAL_BUCKETS.join(","));
        vars.insert("endpoint".into(), backend.endpoint());
        vars.insert("access_key_id".into(), LOCAL_ACCESS_KEY.into());
        vars.insert("secret_access_key".into(), LOCAL_SECRET_KEY.into());
        vars.insert("client_credentials".into(), format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}"));
        vars.insert("allow_anonymous".into(), "true".into());
        println!("local S3 backends: {} with buckets {} (data in {})", backend.endpoint(), LOCAL_BUCKETS.join(", "), args.data.display());
        _backend = backend;
    }
    vars.extend(args.vars.clone());
    if let Some(addr) = args.listen {
        listen = addr;
    }

    let wasm = wasm::ensure_component()?;
    let pool = Pool::parse(args.max_instances.as_deref(), args.instance_wait.as_deref())?;
    let engine = component::engine_for(&pool)?;
    let mut host = ComponentHost::load(&engine, &wasm, vars.clone())?.with_pool(pool);
    if let Some(path) = &args.ca_cert {
        host = host.with_ca_roots(&tempo_s3_shard_host::tls::load_roots(path)?)?;
    }
    if !access_log {
        host = host.without_stdout();
        println!("access log off (log_level in the config file)");
    }
    if args.spin_instances {
        host = host.idle_work(false);
        println!("Spin's instance timing: each request instantiates as it arrives and tears down as it ends");
    }
    if args.spin_sockets {
        host = host.spin_sockets(true);
        println!("Spin-faithful sockets: no TCP_NODELAY on accepted or outbound connections");
    }
    if let Some(addr) = args.metrics_listen {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
        println!("metrics on http://{}{METRICS_PATH}", listener.local_addr()?);
        tokio::spawn(service::serve_metrics(host.metrics().clone(), listener));
        host = host.without_metrics_on_port();
    }
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen} (use --listen)"))?;
    let shutdown = service::shutdown_signal().context("cannot install the SIGTERM handler")?;
    let server = Threads::serve(&host, listener, threads::per_core(), "tempo-s3-shard")?;
    let addr = server.addr();
    let bucket = vars.get("virtual_bucket").cloned().unwrap_or_else(|| "proxy-bucket".into());
    println!("tempo-s3-shard component {} serving bucket '{bucket}' on http://{addr}", wasm.display());
    if args.metrics_listen.is_none() {
        println!("metrics on http://{addr}{METRICS_PATH}");
    }
    if vars.get("allow_anonymous").is_some_and(|v| v == "true") {
        println!("WARNING: anonymous access is ENABLED: unsigned requests may read and write (set --var allow_anonymous=false to require signatures)");
    }
    if args.config.is_none() {
        println!(
            "\nTry it:\n  export AWS_ACCESS_KEY_ID={LOCAL_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={LOCAL_SECRET_KEY} AWS_DEFAULT_REGION=us-east-1\n  \
             aws --endpoint-url http://{addr} s3 cp README.md s3://{bucket}/single-tenant/block-1/README.md\n  \
             aws --endpoint-url http://{addr} s3 ls --recursive s3://{bucket}/\n\n\
             Tempo (storage.trace):\n  backend: s3\n  s3:\n    bucket: {bucket}\n    endpoint: {addr}\n    insecure: true\n    forcepathstyle: true\n    access_key: {LOCAL_ACCESS_KEY}\n    secret_key: {LOCAL_SECRET_KEY}\n"
        );
    }
    // Returns once a shutdown signal came and the requests in flight have finished.
    server.stop(shutdown).await;
    println!("tempo-s3-shard: stopped");
    Ok(())
}
