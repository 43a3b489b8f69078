#!/usr/bin/env python3
"""boto3 against an S3 endpoint: the calls ordinary tools make, each result checked.

    python3 tests/clients/boto3_flow.py --endpoint http://127.0.0.1:8080 [--bucket proxy-bucket]

Credentials come from --access-key/--secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; the
endpoint may also be given as S3_ENDPOINT and the bucket as S3_BUCKET. Everything is written under
--prefix (default "boto3/"), spread over several "<prefix><dir>/..." directories, and removed at the end.

Covered: put/get/head/delete; put with boto3's default checksum behaviour (over plain HTTP a CRC32
header; the aws-chunked body with a CRC32 trailer that boto3 >= 1.36 sends over TLS is forced too,
and the wire format is checked); upload_file large enough for multipart; download_file (ranged,
concurrent) compared with the source; a presigned GET fetched with urllib; the list_objects_v2
paginator, with and without delimiter; delete_objects. Exits 1 on the first failure.
"""

import argparse
import base64
import hashlib
import os
import random
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024
# Uploads with a CRC32 trailer: empty, tiny, one chunk, just under the 1 MiB the proxy holds, and a
# streamed one the proxy frames again with its trailer.
TRAILER_SIZES = (0, 1, 65_536, 1_000_003, 3_000_001)

# Ways s3s-fs (the test backend) differs from S3, tolerated only when asked (--allow NAME).
QUIRKS = {
    "stored-aws-chunked": "aws-chunked uploads keep 'aws-chunked' as the object's Content-Encoding",
    "stored-bad-checksum": "a put rejected with BadDigest still stores the object",
    "unencoded-list-keys": "encoding-type=url listings return keys not URL-encoded ('+' reads back as ' ')",
}


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def data(name, size):
    """Deterministic bytes for `name`."""
    rng = random.Random(name)
    return rng.randbytes(size)


def quirk(args, name, msg):
    """A difference from S3: fatal unless --allow name was given."""
    check(name in args.allow, f"{msg} [--allow {name} tolerates this]")
    print(f"boto3_flow: note (allowed {name}): {msg}", file=sys.stderr)


def error_code(fn):
    """Call fn, expect a ClientError, return (code, http status)."""
    try:
        fn()
    except ClientError as e:
        return e.response.get("Error", {}).get("Code"), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    raise Failure("expected an error, the call succeeded")


class Wire:
    """Records the headers of requests as sent (after signing and checksum handling)."""

    def __init__(self, client):
        self.sent = []
        client.meta.events.register("before-send.s3", self._before_send)

    def _before_send(self, request, **kwargs):
        self.sent.append((request.method, request.url, dict(request.headers)))

    def last(self, method):
        for m, url, headers in reversed(self.sent):
            if m == method:
                return url, {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()}
        raise Failure(f"no {method} request was sent")


def force_trailer(params, **kwargs):
    """Make PutObject/UploadPart send what boto3 >= 1.36 sends over TLS: an aws-chunked body with an
    unsigned CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER); over plain HTTP it sends a header."""
    algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
    if isinstance(algorithm, dict) and algorithm.get("in") == "header":
        algorithm["in"] = "trailer"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", default=os.environ.get("S3_ENDPOINT"))
    ap.add_argument("--bucket", default=os.environ.get("S3_BUCKET", "proxy-bucket"))
    ap.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    ap.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    ap.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    ap.add_argument("--prefix", default="boto3/")
    ap.add_argument("--big-mib", type=int, default=20, help="size of the multipart upload_file")
    ap.add_argument("--allow", action="append", default=[], choices=sorted(QUIRKS),
                    help="tolerate (with a note) one way s3s-fs differs from S3; repeatable: "
                    + "; ".join(f"{k}: {v}" for k, v in sorted(QUIRKS.items())))
    args = ap.parse_args()
    if not args.endpoint:
        ap.error("--endpoint (or S3_ENDPOINT) is required")
    if not args.access_key or not args.secret_key:
        ap.error("credentials: --access-key/--secret-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")

    version = tuple(int(x) for x in botocore.__version__.split(".")[:2])
    if version < (1, 36):
        raise Failure(f"botocore {botocore.__version__} predates default checksums (1.36); pip install -U boto3")

    session = boto3.session.Session(
        aws_access_key_id=args.access_key, aws_secret_access_key=args.secret_key, region_name=args.region
    )

    def client(**extra):
        return session.client(
            "s3",
            endpoint_url=args.endpoint,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1, "mode": "standard"},
                **extra,
            ),
        )

    s3 = client()
    wire = Wire(s3)
    bucket, p = args.bucket, args.prefix
    started = time.time()
    steps = []

    def step(name):
        steps.append(name)
        print(f"boto3_flow: {name}", flush=True)

    # --- put / get / head / delete -----------------------------------------------------------------
    step("put/get/head/delete")
    key = f"{p}basic-a/object.txt"
    body = b"hello from boto3\n" * 100
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="text/plain", Metadata={"origin": "boto3-flow"})
    check(put.get("ETag"), f"put_object {key}: no ETag in {put}")
    got = s3.get_object(Bucket=bucket, Key=key)
    check(got["Body"].read() == body, f"get_object {key}: body differs")
    check(got["ContentType"] == "text/plain", f"get_object {key}: ContentType {got['ContentType']!r}")
    check(got["Metadata"].get("origin") == "boto3-flow", f"get_object {key}: Metadata {got['Metadata']}")
    check(got["ETag"] == put["ETag"], f"get_object {key}: ETag {got['ETag']} != put ETag {put['ETag']}")
    head = s3.head_object(Bucket=bucket, Key=key)
    check(head["ContentLength"] == len(body), f"head_object {key}: ContentLength {head['ContentLength']}")
    check(head["ETag"] == put["ETag"], f"head_object {key}: ETag {head['ETag']} != {put['ETag']}")
    ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=5-20")
    check(ranged["Body"].read() == body[5:21], f"get_object {key} Range bytes=5-20: wrong bytes")
    check(ranged["ContentRange"] == f"bytes 5-20/{len(body)}", f"ContentRange {ranged.get('ContentRange')!r}")
    s3.delete_object(Bucket=bucket, Key=key)
    code, status = error_code(lambda: s3.head_object(Bucket=bucket, Key=key))
    check(status == 404, f"head_object after delete: status {status} ({code}), want 404")
    code, status = error_code(lambda: s3.get_object(Bucket=bucket, Key=key))
    check(code == "NoSuchKey" and status == 404, f"get_object after delete: {code} {status}, want NoSuchKey 404")
    s3.delete_object(Bucket=bucket, Key=key)  # deleting a missing key succeeds

    # --- default checksum behaviour -------------------------------------------------------------------
    step("put with default checksums (CRC32 header over HTTP)")
    key = f"{p}checksum-a/default-crc.bin"
    body = data(key, 300_000)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body)
    _, sent = wire.last("PUT")
    check("x-amz-checksum-crc32" in sent, f"boto3 {boto3.__version__} did not send x-amz-checksum-crc32: {sent}")
    check(s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body, f"get_object {key}: body differs")

    step("put with aws-chunked body and CRC32 trailer (boto3's TLS default, forced over HTTP)")
    trailer_s3 = client()
    trailer_wire = Wire(trailer_s3)
    trailer_s3.meta.events.register("before-call.s3.PutObject", force_trailer)
    trailer_s3.meta.events.register("before-call.s3.UploadPart", force_trailer)
    for size in TRAILER_SIZES:
        key = f"{p}checksum-b/trailer-{size}.bin"
        body = data(key, size)
        put = trailer_s3.put_object(Bucket=bucket, Key=key, Body=body)
        _, sent = trailer_wire.last("PUT")
        check(
            sent.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            and "aws-chunked" in sent.get("content-encoding", "")
            and sent.get("x-amz-trailer") == "x-amz-checksum-crc32",
            f"the forced trailer upload was not aws-chunked with a CRC32 trailer: {sent}",
        )
        check(put.get("ETag"), f"put_object {key} (aws-chunked, trailer): no ETag")
        got = s3.get_object(Bucket=bucket, Key=key)
        got_body = got["Body"].read()
        check(got_body == body, f"get_object {key}: {len(got_body)} bytes, want {len(body)} (aws-chunked framing leaked or lost?)")
        if got.get("ContentEncoding") not in (None, ""):
            # S3 strips aws-chunked from the stored Content-Encoding; s3s-fs keeps it.
            msg = f"get_object {key}: Content-Encoding {got.get('ContentEncoding')!r} was stored (S3 drops aws-chunked)"
            quirk(args, "stored-aws-chunked", msg)
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        check(head["ContentLength"] == size, f"head_object {key}: ContentLength {head['ContentLength']}, want {size}")
        crc32 = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
        check(head.get("ChecksumCRC32") == crc32, f"head_object {key}: ChecksumCRC32 {head.get('ChecksumCRC32')!r}, want {crc32!r} (the trailer's checksum was not stored)")

    step("a wrong CRC32 in the trailer is rejected")
    bad = client()
    bad.meta.events.register("before-call.s3.PutObject", force_trailer)

    def corrupt_trailer(request, **kwargs):
        # Replace the CRC32 botocore computes while streaming with a wrong one.
        b = request.body
        if isinstance(b, botocore.httpchecksum.AwsChunkedWrapper) and getattr(b, "_checksum", None) is not None:
            b._checksum = _WrongChecksum(b._checksum)
            corrupted.append(True)

    corrupted = []
    bad.meta.events.register("before-send.s3.PutObject", corrupt_trailer)
    key = f"{p}checksum-b/bad-trailer.bin"
    try:
        bad.put_object(Bucket=bucket, Key=key, Body=data(key, 10_000))
        code = None
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
    check(corrupted, f"botocore {botocore.__version__}: could not corrupt the trailer checksum (AwsChunkedWrapper changed?)")
    check(code in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest"),
          f"put_object with a wrong CRC32 trailer: got {code or 'success'}, want BadDigest")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        msg = f"put_object {key} failed with {code}, but the object was stored"
        quirk(args, "stored-bad-checksum", msg)
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        check(status == 404, f"head_object {key} after the failed put: {status}, want 404")

    # --- multipart upload_file / download_file --------------------------------------------------------
    step(f"upload_file {args.big_mib} MiB (multipart) and download_file")
    tmp = tempfile.mkdtemp(prefix="boto3-flow-")
    try:
        src = os.path.join(tmp, "big.bin")
        big = data("big", args.big_mib * MIB + 12_345)
        with open(src, "wb") as f:
            f.write(big)
        tc = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
        key = f"{p}multipart-a/big.bin"
        s3.upload_file(src, bucket, key, Config=tc, ExtraArgs={"Metadata": {"origin": "upload_file"}})
        check(any("uploadId=" in url and m == "PUT" for m, url, _ in wire.sent), "upload_file did not use multipart (no UploadPart)")
        head = s3.head_object(Bucket=bucket, Key=key)
        check(head["ContentLength"] == len(big), f"head_object {key}: ContentLength {head['ContentLength']}, want {len(big)}")
        check(head["Metadata"].get("origin") == "upload_file", f"head_object {key}: Metadata {head['Metadata']}")
        dst = os.path.join(tmp, "big.down")
        s3.download_file(bucket, key, dst, Config=tc)
        with open(dst, "rb") as f:
            down = f.read()
        check(hashlib.sha256(down).digest() == hashlib.sha256(big).digest(),
              f"download_file {key}: {len(down)} bytes, sha256 differs from the {len(big)} uploaded")

        # The same through the aws-chunked trailer path for the parts.
        key2 = f"{p}multipart-b/big-trailer.bin"
        trailer_s3.upload_file(src, bucket, key2, Config=tc)
        dst2 = os.path.join(tmp, "big2.down")
        s3.download_file(bucket, key2, dst2, Config=tc)
        with open(dst2, "rb") as f:
            check(hashlib.sha256(f.read()).digest() == hashlib.sha256(big).digest(),
                  f"download_file {key2} (parts uploaded aws-chunked): content differs")
    finally:
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
        os.rmdir(tmp)

    # --- presigned GET ---------------------------------------------------------------------------------
    step("presigned GET with urllib")
    key = f"{p}presign-a/file with space+plus.txt"
    body = data(key, 4321)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            check(resp.status == 200, f"presigned GET: status {resp.status}")
            fetched = resp.read()
    except urllib.error.HTTPError as e:
        raise Failure(f"presigned GET {url}: HTTP {e.code}: {e.read()[:500]!r}")
    check(fetched == body, f"presigned GET {url}: {len(fetched)} bytes, content differs")
    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    check(tampered != url, f"presigned URL has no X-Amz-Expires=300: {url}")
    try:
        urllib.request.urlopen(tampered, timeout=30).read()
        raise Failure(f"presigned GET with a tampered query succeeded: {tampered}")
    except urllib.error.HTTPError as e:
        check(e.code == 403, f"presigned GET with a tampered query: status {e.code}, want 403: {e.read()[:500]!r}")

    # --- keys that need URL encoding in listings --------------------------------------------------------
    step("listing keys with space, plus and non-ASCII (encoding-type=url)")
    odd = [f"{p}presign-a/file with space+plus.txt", f"{p}presign-a/ünï cødé/x", f"{p}presign-a/a%2Bb&c=d"]
    for k in odd[1:]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"odd")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{p}presign-a/").get("Contents", [])]
    if sorted(listed) != sorted(odd):
        quirk(args, "unencoded-list-keys", f"list_objects_v2 of {p}presign-a/: keys {listed}, want {sorted(odd)}")
    for k in odd:
        s3.delete_object(Bucket=bucket, Key=k)

    # --- listing --------------------------------------------------------------------------------------
    step("list_objects_v2 paginator")
    expected = set()
    for d in range(6):
        for f in range(4):
            k = f"{p}list-{d}/file-{f:02}.txt"
            s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
            expected.add(k)
    # Everything written so far and still there:
    expected |= {
        f"{p}checksum-a/default-crc.bin",
        f"{p}multipart-a/big.bin",
        f"{p}multipart-b/big-trailer.bin",
    } | {f"{p}checksum-b/trailer-{size}.bin" for size in TRAILER_SIZES}
    paginator = s3.get_paginator("list_objects_v2")
    for page_size in (1, 5, 1000):
        keys, pages = [], 0
        for page in paginator.paginate(Bucket=bucket, Prefix=p, PaginationConfig={"PageSize": page_size}):
            pages += 1
            contents = page.get("Contents", [])
            check(len(contents) <= page_size, f"list_objects_v2 MaxKeys={page_size}: a page of {len(contents)}")
            keys += [o["Key"] for o in contents]
        check(keys == sorted(keys), f"list_objects_v2 PageSize={page_size}: keys out of order: {keys}")
        check(len(keys) == len(set(keys)), f"list_objects_v2 PageSize={page_size}: duplicate keys")
        check(set(keys) == expected,
              f"list_objects_v2 PageSize={page_size}: missing {sorted(expected - set(keys))}, extra {sorted(set(keys) - expected)}")
        check(page_size >= len(expected) or pages >= len(expected) // page_size,
              f"list_objects_v2 PageSize={page_size}: only {pages} pages for {len(keys)} keys")
    # With a delimiter: the directories come back as common prefixes.
    dirs, objects = [], []
    for page in paginator.paginate(Bucket=bucket, Prefix=p, Delimiter="/", PaginationConfig={"PageSize": 2}):
        dirs += [c["Prefix"] for c in page.get("CommonPrefixes", [])]
        objects += page.get("Contents", [])
    want_dirs = sorted({k[: k.index("/", len(p)) + 1] for k in expected})
    check(sorted(dirs) == want_dirs and len(dirs) == len(set(dirs)),
          f"list_objects_v2 Delimiter=/: common prefixes {dirs}, want {want_dirs}")
    check(not objects, f"list_objects_v2 Delimiter=/: unexpected objects {objects}")
    # StartAfter
    after = f"{p}list-2/file-01.txt"
    keys = [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=p, StartAfter=after) for o in page.get("Contents", [])]
    check(keys == sorted(k for k in expected if k > after), f"list_objects_v2 StartAfter={after}: {keys}")

    # --- delete_objects -------------------------------------------------------------------------------
    step("delete_objects")
    all_keys = sorted(expected)
    for i in range(0, len(all_keys), 10):
        batch = all_keys[i : i + 10] + ([f"{p}never-existed/key"] if i == 0 else [])
        res = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False})
        check(not res.get("Errors"), f"delete_objects: errors {res.get('Errors')}")
        deleted = sorted(d["Key"] for d in res.get("Deleted", []))
        check(deleted == sorted(batch), f"delete_objects: Deleted {deleted}, want {sorted(batch)}")
    left = [o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=p) for o in page.get("Contents", [])]
    check(not left, f"after delete_objects, still listed: {left}")
    for k in all_keys[:3]:
        code, status = error_code(lambda: s3.head_object(Bucket=bucket, Key=k))
        check(status == 404, f"head_object {k} after delete_objects: {status}")

    print(f"boto3_flow OK: boto3 {boto3.__version__} botocore {botocore.__version__} against {args.endpoint}/{bucket}: "
          f"{len(steps)} steps in {time.time() - started:.1f}s")


class _WrongChecksum:
    """Wraps a botocore checksum; its digest is that of different data."""

    def __init__(self, real):
        self._real = real

    def update(self, chunk):
        self._real.update(chunk)

    def b64digest(self):
        self._real.update(b"tampered")
        return self._real.b64digest()


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"boto3_flow: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    except (ClientError, botocore.exceptions.BotoCoreError, urllib.error.URLError, OSError) as e:
        print(f"boto3_flow: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
