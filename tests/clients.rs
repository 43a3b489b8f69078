//! Real S3 clients against the real component: minio-go replaying Grafana Tempo's S3 calls (signed
//! with chunked uploads, and anonymous; with Tempo's prefix, encryption, storage class and tags; SSE-C
//! over HTTPS and refused over HTTP), boto3, and the aws CLI. Each client program lives in
//! tests/clients/ and checks every answer itself; here it runs against a fresh harness and must exit 0.
//!
//! Needs: `go` with minio-go v7 in GOPATH mode (Debian/Ubuntu:
//! `apt-get install golang-go golang-github-minio-minio-go-v7-dev`), python3 with boto3, and the aws CLI
//! (`pip install boto3 awscli`). `./test` installs them all; the Python tools go into `target/venv`,
//! which these tests put first on PATH when it exists. A missing tool fails the test with what to install; nothing is skipped.

use crate::common;

use common::{Harness, VIRTUAL_BUCKET};
use tempo_s3_shard_host::backends::RecordedRequest;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tempo_s3_shard_host::backends::{LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY};
use tempo_s3_shard_host::wasm::workspace_dir;

const SHARDS: [&str; 3] = ["shard1", "shard2", "shard3"];

/// Client programs get this long before they are killed and the test fails.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(900);

const GO_INSTALL: &str = "apt-get install golang-go golang-github-minio-minio-go-v7-dev";
const MINIO_GO_PKG: &str = "src/github.com/minio/minio-go/v7";

fn clients_dir() -> PathBuf {
    workspace_dir().join("tests/clients")
}

/// `client_credentials` granting the local keys, as the lead's default harness would.
fn client_credentials() -> String {
    format!("{LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}")
}

async fn harness(extra: &[(&str, &str)]) -> Harness {
    let creds = client_credentials();
    let mut vars = vec![("client_credentials", creds.as_str())];
    vars.extend_from_slice(extra);
    Harness::start_with(&SHARDS, &vars).await
}

/// The GOPATH holding minio-go v7: $GOPATH if it has it, else Debian's /usr/share/gocode.
fn gopath() -> PathBuf {
    let candidates: Vec<PathBuf> = std::env::var_os("GOPATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/share/gocode")])
        .collect();
    candidates.iter().find(|p| p.join(MINIO_GO_PKG).is_dir()).cloned().unwrap_or_else(|| {
        panic!(
            "minio-go v7 is not installed (looked for {MINIO_GO_PKG} under {}); install it with: {GO_INSTALL}",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Build tests/clients/tempo_replay.go once per test run into target/clients/tempo_replay.
fn tempo_replay_binary() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        match std::process::Command::new("go").arg("version").output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => return Err(format!("`go version` failed ({}); install Go with: {GO_INSTALL}", out.status)),
            Err(e) => return Err(format!("`go` is not installed ({e}); install it with: {GO_INSTALL}")),
        }
        let gopath = gopath();
        let out_dir = workspace_dir().join("target/clients");
        std::fs::create_dir_all(&out_dir).map_err(|e| format!("create {}: {e}", out_dir.display()))?;
        let bin = out_dir.join("tempo_replay");
        let out = std::process::Command::new("go")
            .current_dir(workspace_dir())
            .args(["build", "-o"])
            .arg(&bin)
            .arg("tests/clients/tempo_replay.go")
            .env("GO111MODULE", "off")
            .env("GOPATH", &gopath)
            .env("GOCACHE", out_dir.join("go-build-cache"))
            .env("GOFLAGS", "")
            .output()
            .map_err(|e| format!("run go build: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "go build of tests/clients/tempo_replay.go failed ({}), GOPATH={} (needs: {GO_INSTALL}):\n{}{}",
                out.status,
                gopath.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(bin)
    })
    .clone()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Run a client to completion; panic with its output unless it exits 0. Returns its stdout.
async fn run_client(what: &str, mut cmd: tokio::process::Command) -> String {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // python3 and aws from the test command's virtualenv, when it made one.
    cmd.env("PATH", common::tools_path());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let out = match tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: waiting for it: {e}")),
        Err(_) => panic!("{what}: did not finish within {CLIENT_TIMEOUT:?} (killed)"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}) against the proxy\n----- stdout -----\n{stdout}\n----- stderr -----\n{stderr}",
        out.status
    );
    eprintln!("{what}: {}", stdout.lines().last().unwrap_or("(no output)"));
    if !stderr.trim().is_empty() {
        eprintln!("{what} stderr:\n{stderr}");
    }
    stdout
}

fn host_port(h: &Harness) -> String {
    h.proxy.to_string()
}

/// Run the Tempo replay; then check, directly on the backends, that a sample of what it wrote sits
/// only on its ring owner and that the block it deleted is gone from every shard.
async fn tempo_replay(h: &Harness, keys: Option<(&str, &str)>, name: &str) {
    tempo_replay_with(h, keys, name, &["-tenants", "3", "-blocks", "4"]).await;
}

/// [`tempo_replay`] with more flags for the replay (Tempo's prefix, encryption, ...). Returns the
/// requests the s3s-fs backends received from the proxy during the replay.
async fn tempo_replay_with(h: &Harness, keys: Option<(&str, &str)>, name: &str, flags: &[&str]) -> Vec<RecordedRequest> {
    let bin = tempo_replay_binary();
    let manifest = common::temp_dir(name).join("manifest.txt");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(["-endpoint", &host_port(h), "-bucket", VIRTUAL_BUCKET, "-manifest"]).arg(&manifest).args(flags);
    if h.https {
        cmd.args(["-tls", "-ca"]).arg(workspace_dir().join("tests/data/tls/ca.pem"));
    }
    if let Some((ak, sk)) = keys {
        cmd.args(["-access-key", ak, "-secret-key", sk]);
    }
    run_client(name, cmd).await;
    let sent = h.backend_requests.lock().unwrap().clone();

    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{name}: no manifest {}: {e}", manifest.display()));
    let entries: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let present: Vec<&str> = entries.iter().filter(|(s, _)| *s == "present").map(|(_, k)| *k).collect();
    let deleted: Vec<&str> = entries.iter().filter(|(s, _)| *s == "deleted").map(|(_, k)| *k).collect();
    assert!(present.len() > 20 && !deleted.is_empty(), "{name}: manifest too small: {} present, {} deleted", present.len(), deleted.len());
    let mut owners = std::collections::BTreeSet::new();
    for key in present.iter().step_by(4).chain(present.iter().filter(|k| k.ends_with("data.parquet"))) {
        let owner = h.owner(key);
        assert_eq!(h.holders(key).await, vec![owner.clone()], "{name}: {key} must be stored only on its ring owner");
        owners.insert(owner);
    }
    assert!(owners.len() > 1, "{name}: all sampled keys on {owners:?}: blocks should spread over the shards");
    for key in &deleted {
        assert!(h.holders(key).await.is_empty(), "{name}: deleted {key} is still on {:?}", h.holders(key).await);
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_tempo_replay_signed_with_chunked_uploads() {
    let h = harness(&[]).await;
    tempo_replay(&h, Some((LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)), "tempo_replay (signed)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_tempo_replay_anonymous() {
    // Tempo with empty access and secret keys sends unsigned requests.
    let h = harness(&[("allow_anonymous", "true")]).await;
    tempo_replay(&h, None, "tempo_replay (anonymous)").await;
}

/// Tempo's write options through the proxy, for a backend that does not act on them (s3s-fs, which
/// also refuses storage classes but STANDARD): the backend requests must carry them.
const KMS_FLAGS: [&str; 14] = [
    "-tenants", "2", "-blocks", "3", "-prefix", "traces/", "-sse", "SSE-KMS", "-storage-class", "STANDARD",
    "-tags", "team=observability&env=test", "-kms-key-id", "tempo-key",
];

/// Whether a backend request creates a multipart upload.
fn is_create(r: &RecordedRequest) -> bool {
    r.method == "POST" && r.target.contains("?uploads") && !r.target.contains("uploadId")
}

/// The requests the backends got that write an object: single PUTs, multipart creates, copies.
fn object_writes(all: Vec<RecordedRequest>) -> Vec<RecordedRequest> {
    all.into_iter()
        .filter(|r| {
            let single = r.method == "PUT" && !r.target.contains("partNumber=") && !r.target.contains("tagging");
            (single && r.target.matches('/').count() > 1) || is_create(r)
        })
        .collect()
}

/// Every `name: value` pair is on each request (a value `*` only needs the header present).
fn assert_all_carry(what: &str, requests: &[RecordedRequest], expected: &[(&str, &str)]) {
    assert!(!requests.is_empty(), "{what}: no such backend request");
    for r in requests {
        for (name, value) in expected {
            let got = r.header(name);
            assert!(got.is_some_and(|g| *value == "*" || g == *value), "{what}: {} {} has {name}: {got:?}, want {value:?}", r.method, r.target);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_tempo_replay_with_prefix_sse_kms_storage_class_and_tags() {
    let h = harness(&[("key_prefix", "traces")]).await;
    let sent = tempo_replay_with(&h, Some((LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)), "tempo_replay (prefix, SSE-KMS, signed)", &KMS_FLAGS).await;
    let writes = object_writes(sent);
    let context = "eyJhcHAiOiJ0ZW1wbyJ9"; // base64 of {"app":"tempo"}
    assert_all_carry(
        "SSE-KMS writes",
        &writes,
        &[
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "tempo-key"),
            ("x-amz-server-side-encryption-context", context),
        ],
    );
    let copies: Vec<RecordedRequest> = writes.iter().filter(|r| r.header("x-amz-copy-source").is_some()).cloned().collect();
    assert_all_carry("copies (meta.json -> meta.compacted.json)", &copies, &[("x-amz-server-side-encryption", "aws:kms")]);
    let fresh: Vec<RecordedRequest> = writes.iter().filter(|r| r.header("x-amz-copy-source").is_none()).cloned().collect();
    assert!(fresh.iter().any(|r| r.method == "POST"), "multipart creates are among them");
    assert_all_carry("single and multipart writes", &fresh, &[("x-amz-storage-class", "STANDARD"), ("x-amz-tagging", "*")]);
    for r in &fresh {
        let tags = r.header("x-amz-tagging").unwrap_or_default();
        assert!(tags.contains("team=observability") && tags.contains("env=test"), "{} {}: x-amz-tagging {tags:?}", r.method, r.target);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_tempo_replay_anonymous_with_prefix_and_sse_s3() {
    let h = harness(&[("key_prefix", "traces"), ("allow_anonymous", "true")]).await;
    let flags = ["-tenants", "2", "-blocks", "3", "-prefix", "traces/", "-sse", "SSE-S3"];
    let sent = tempo_replay_with(&h, None, "tempo_replay (prefix, SSE-S3, anonymous)", &flags).await;
    assert_all_carry("SSE-S3 writes", &object_writes(sent), &[("x-amz-server-side-encryption", "AES256")]);
}

/// moto stores encryption, storage class and tags, so the replay checks what it answers through the
/// proxy (`-expect-sse`), and rereads the overrides with If-Match / If-None-Match.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_tempo_replay_on_moto_gets_encryption_storage_class_and_tags_back() {
    let h = Harness::start_moto(&SHARDS, &[("key_prefix", "traces")]).await;
    let flags = [
        "-tenants", "2", "-blocks", "2", "-prefix", "traces/", "-sse", "SSE-S3", "-storage-class", "STANDARD_IA",
        "-tags", "team=observability", "-expect-sse", "-conditional",
    ];
    let bin = tempo_replay_binary();
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(["-endpoint", &host_port(&h), "-bucket", VIRTUAL_BUCKET]).args(flags);
    cmd.args(["-access-key", LOCAL_ACCESS_KEY, "-secret-key", LOCAL_SECRET_KEY]);
    run_client("tempo_replay (moto: SSE-S3, storage class, tags, conditional)", cmd).await;
}

/// SSE-C: over HTTPS the customer key reaches the backend on every call that needs it; the same
/// calls over plain HTTP are refused before any backend sees the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn minio_go_sse_c_passes_over_tls_and_is_refused_over_plain_http() {
    let h = Harness::start_https(&SHARDS, &[("client_credentials", &client_credentials()), ("key_prefix", "traces")]).await;
    let flags = ["-tenants", "2", "-blocks", "2", "-prefix", "traces/", "-sse", "SSE-C"];
    let all = tempo_replay_with(&h, Some((LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)), "tempo_replay (SSE-C over HTTPS)", &flags).await;
    let key = ("x-amz-server-side-encryption-customer-key", "*");
    let algorithm = ("x-amz-server-side-encryption-customer-algorithm", "AES256");
    let md5 = ("x-amz-server-side-encryption-customer-key-md5", "*");
    let of = |f: &dyn Fn(&RecordedRequest) -> bool| all.iter().filter(|r| f(r)).cloned().collect::<Vec<_>>();
    let object = |r: &RecordedRequest| r.target.contains("/traces/") && !r.target.contains("list-type") && !r.target.contains("delimiter");
    assert_all_carry("PUTs", &of(&|r| r.method == "PUT" && object(r) && r.header("x-amz-copy-source").is_none()), &[algorithm, key, md5]);
    assert_all_carry("ranged GETs", &of(&|r| r.method == "GET" && object(r) && r.header("range").is_some()), &[algorithm, key, md5]);
    assert_all_carry("HEADs", &of(&|r| r.method == "HEAD" && object(r)), &[algorithm, key, md5]);
    assert_all_carry("multipart creates", &of(&is_create), &[algorithm, key, md5]);
    assert_all_carry("parts", &of(&|r| r.method == "PUT" && r.target.contains("partNumber=")), &[algorithm, key, md5]);
    let copy_key = [
        ("x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256"),
        ("x-amz-copy-source-server-side-encryption-customer-key", "*"),
        ("x-amz-copy-source-server-side-encryption-customer-key-md5", "*"),
    ];
    let copies = of(&|r| r.header("x-amz-copy-source").is_some());
    let streamed = of(&|r| r.method == "GET" && r.target.ends_with("/meta.json") && r.header("range").is_none());
    // A copy within a shard carries both keys; across shards the source's key is on its GET.
    for c in &copies {
        assert_all_carry("copies", std::slice::from_ref(c), &copy_key);
    }
    assert!(!copies.is_empty() || !streamed.is_empty(), "no copy reached a backend");
    assert_all_carry("copy source reads", &streamed, &[algorithm, key, md5]);

    // Plain HTTP: refused with S3's InvalidRequest, and no backend ever sees the key.
    let plain = harness(&[]).await;
    let mut cmd = tokio::process::Command::new(tempo_replay_binary());
    cmd.args(["-endpoint", &host_port(&plain), "-bucket", VIRTUAL_BUCKET, "-sse", "SSE-C", "-ssec-refused"])
        .args(["-access-key", LOCAL_ACCESS_KEY, "-secret-key", LOCAL_SECRET_KEY]);
    run_client("tempo_replay (SSE-C over plain HTTP)", cmd).await;
    let leaked = plain.backend_requests.lock().unwrap().iter().filter(|r| r.headers.iter().any(|(n, _)| n.contains("customer-key"))).count();
    assert_eq!(leaked, 0, "a customer key sent over plain HTTP reached a backend");
}

fn python_with_boto3() -> &'static str {
    let ok = common::tool("python3")
        .args(["-c", "import boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "python3 with boto3 is needed: pip install boto3");
    "python3"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boto3_flow() {
    let h = harness(&[]).await;
    let mut cmd = tokio::process::Command::new(python_with_boto3());
    cmd.arg(clients_dir().join("boto3_flow.py"))
        .args(["--endpoint", &h.proxy_url(), "--bucket", VIRTUAL_BUCKET])
        // s3s-fs answers encoding-type=url listings with <EncodingType>url</EncodingType> but keys
        // not encoded, so keys with '+' or '%XX' come back altered, directly and (as the proxy
        // decodes what the backend says is encoded) through the proxy. S3 and MinIO encode.
        .args(["--allow", "unencoded-list-keys"])
        .env("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    run_client("boto3_flow", cmd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awscli_flow() {
    let aws = common::tool("aws").arg("--version").output();
    assert!(
        matches!(&aws, Ok(o) if o.status.success()),
        "the aws CLI is needed (pip install awscli): `aws --version` gave {aws:?}"
    );
    let h = harness(&[]).await;
    let script = clients_dir().join("awscli_flow.sh");
    assert!(Path::new(&script).exists(), "{} is missing", script.display());
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(&script)
        .arg(h.proxy_url())
        .arg(VIRTUAL_BUCKET)
        .env("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY)
        .env_remove("TAGGING") // the s3s-fs backends have no object tagging
        .env("TMPDIR", common::temp_dir("awscli"));
    run_client("awscli_flow", cmd).await;
}

/// The operator flow again with object tagging, against a moto backend (s3s-fs has no tagging).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awscli_flow_with_tagging() {
    let h = Harness::start_moto(&["shard1", "shard2", "shard3"], &[]).await;
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(clients_dir().join("awscli_flow.sh"))
        .arg(h.proxy_url())
        .arg(VIRTUAL_BUCKET)
        .env("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY)
        .env("TAGGING", "1")
        .env("BIG_MIB", "12")
        .env("TMPDIR", common::temp_dir("awscli-tagging"));
    run_client("awscli_flow (tagging, moto)", cmd).await;
}

/// Control: the same clients straight against the s3s-fs backends (no proxy), so a failure above can
/// be told apart from a client or tool change. s3s-fs's known differences from S3 are tolerated here
/// only: it takes minio-go's empty `delimiter=` as a delimiter (so no V2 block listing), keeps
/// `aws-chunked` as Content-Encoding, stores a put that failed its checksum, and does not URL-encode
/// listed keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_clients_pass_directly_against_the_backends() {
    let h = harness(&[]).await;
    let endpoint = h.backend.endpoint();

    let mut go = tokio::process::Command::new(tempo_replay_binary());
    go.args(["-endpoint", endpoint.trim_start_matches("http://"), "-bucket", "shard1", "-skip-v2"])
        .args(["-tenants", "2", "-blocks", "3", "-access-key", LOCAL_ACCESS_KEY, "-secret-key", LOCAL_SECRET_KEY]);
    run_client("tempo_replay (directly on s3s-fs)", go).await;

    let mut py = tokio::process::Command::new(python_with_boto3());
    py.arg(clients_dir().join("boto3_flow.py"))
        .args(["--endpoint", &endpoint, "--bucket", "shard2"])
        .args(["--allow", "stored-aws-chunked", "--allow", "stored-bad-checksum", "--allow", "unencoded-list-keys"])
        .args(["--access-key", LOCAL_ACCESS_KEY, "--secret-key", LOCAL_SECRET_KEY])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    run_client("boto3_flow (directly on s3s-fs)", py).await;

    let mut sh = tokio::process::Command::new("bash");
    sh.arg(clients_dir().join("awscli_flow.sh"))
        .arg(&endpoint)
        .arg("shard3")
        .env("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY)
        .env("BIG_MIB", "20")
        .env_remove("TAGGING")
        .env("TMPDIR", common::temp_dir("awscli-direct"));
    run_client("awscli_flow (directly on s3s-fs)", sh).await;
}
