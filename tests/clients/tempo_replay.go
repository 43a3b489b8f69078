// tempo_replay replays, with minio-go v7, the S3 calls Grafana Tempo's S3 backend makes
// (tempodb/backend/s3), against an S3 endpoint, and checks every answer.
//
// Tempo drives minio-go through `minio.Core`: a ListObjects start-up check, PutObject of small block
// files (meta.json, bloom-N, index), multipart uploads of block data (NewMultipartUpload,
// PutObjectPart, CompleteMultipartUpload), ranged GetObject reads, V1 listings with a "/" delimiter and
// marker paging (tenants and blocks), V2 listings without delimiter split over several goroutines by
// start-after (block listing), and RemoveObject when a block is deleted.
//
// With an empty -access-key requests are anonymous; with keys minio-go signs, and because the endpoint
// is plain HTTP it uploads with chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
//
// Build (Debian: apt-get install golang-go golang-github-minio-minio-go-v7-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o tempo_replay tests/clients/tempo_replay.go
//
// Tempo's optional write settings: -sse (SSE-S3, SSE-KMS with -kms-key-id/-kms-context, SSE-C with a
// customer key) on single PUTs, multipart create/parts/complete, copies (source key too) and reads;
// -storage-class and -tags on single and multipart writes; -expect-sse checks the backend applied them
// (response headers); -ssec-refused instead expects every SSE-C call to be refused over plain HTTP.
// -tls with -ca talks HTTPS. Tempo 3's key shapes: root-level work.json and tempo_cluster_seed.json,
// per-tenant index.json.gz, and overrides rewritten and re-read by ETag (-conditional: with If-Match).
// Compacted blocks are marked the way Tempo does it: CopyObject meta.json -> meta.compacted.json, then
// RemoveObject meta.json.
//
// Everything written is derived from -seed, so runs are reproducible. Exits 1 on the first mismatch.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	minio "github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

var (
	endpoint   = flag.String("endpoint", "127.0.0.1:8080", "S3 endpoint host:port (plain HTTP)")
	bucket     = flag.String("bucket", "proxy-bucket", "bucket Tempo is configured with")
	accessKey  = flag.String("access-key", "", "access key (empty: anonymous requests)")
	secretKey  = flag.String("secret-key", "", "secret key")
	region     = flag.String("region", "", "region (empty, as Tempo's default: minio-go asks GetBucketLocation)")
	prefix     = flag.String("prefix", "", "Tempo storage prefix (e.g. \"run1/\"); keys are <prefix>tenant-N/<block>/<file>")
	tenants    = flag.Int("tenants", 3, "number of tenants")
	blocks     = flag.Int("blocks", 4, "blocks per tenant")
	partSize   = flag.Int("part-size", 5<<20, "multipart part size (S3 minimum is 5 MiB)")
	parts      = flag.Int("parts", 2, "full-size parts per block data object (a small last part is added)")
	listers    = flag.Int("list-concurrency", 4, "goroutines per tenant for V2 block listing (Tempo's ListBlocksConcurrency)")
	seed       = flag.Int64("seed", 1, "seed for block IDs and contents")
	manifest   = flag.String("manifest", "", "write \"present KEY\" / \"deleted KEY\" lines for every key written to this file")
	skipV2     = flag.Bool("skip-v2", false, "skip the V2 block listing (for s3s-fs directly: it takes an empty delimiter= as a delimiter)")
	sseType    = flag.String("sse", "", "Tempo's sse.type: SSE-S3, SSE-KMS or SSE-C (empty: none)")
	kmsKeyID   = flag.String("kms-key-id", "tempo-replay-key", "SSE-KMS key id")
	kmsContext = flag.String("kms-context", `{"app":"tempo"}`, "SSE-KMS encryption context (JSON object)")
	storageCls = flag.String("storage-class", "", "x-amz-storage-class of every write (empty: none)")
	tags       = flag.String("tags", "", "object tags of every write, k=v&k2=v2 (Tempo's tags)")
	expectSSE  = flag.Bool("expect-sse", false, "check the answers name the encryption (and storage class) applied (a backend that stores them)")
	ssecRefusd = flag.Bool("ssec-refused", false, "only check that SSE-C calls are refused with 400 InvalidRequest (plain HTTP)")
	useTLS     = flag.Bool("tls", false, "HTTPS to the endpoint")
	caFile     = flag.String("ca", "", "PEM CA certificate to trust for -tls")
	tempo3     = flag.Bool("tempo3", true, "also Tempo 3's root-level work.json / tempo_cluster_seed.json and overrides objects")
	conditionl = flag.Bool("conditional", false, "re-read overrides with If-Match / If-None-Match (a backend with conditional reads)")
	bloomCount = 3
	sse        encrypt.ServerSide // from -sse
	userTags   map[string]string  // from -tags
)

const lastPartSize = 123457 // the small last part of every data object

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tempo_replay: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// errorf builds an error naming the call, including the S3 error code and request id when there is one.
func callErr(what string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code != "" {
		return fmt.Errorf("%s: %v (S3 code %s, status %d, resource %q, request id %q)", what, err, resp.Code, resp.StatusCode, resp.Resource, resp.RequestID)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// content is the deterministic body of key: a PRNG stream seeded from the run seed and the key.
func content(key string, size int) []byte {
	h := sha256.Sum256([]byte(key))
	r := rand.New(rand.NewSource(*seed ^ int64(binary.BigEndian.Uint64(h[:8]))))
	buf := make([]byte, size)
	r.Read(buf)
	return buf
}

// uuidFrom formats 16 random bytes as a version-4 UUID string.
func uuidFrom(r *rand.Rand) string {
	var b [16]byte
	r.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

type block struct {
	tenant    string // "<prefix>tenant-N"
	id        string
	compacted bool // has meta.compacted.json instead of meta.json
}

func (b block) dir() string { return b.tenant + "/" + b.id + "/" }

func (b block) metaName() string {
	if b.compacted {
		return "meta.compacted.json"
	}
	return "meta.json"
}

// smallFiles are the files Tempo writes with a single PutObject, with their sizes.
func (b block) smallFiles() map[string]int {
	files := map[string]int{b.metaName(): 300 + len(b.id), "index": 4096 + 17}
	for i := 0; i < bloomCount; i++ {
		files[fmt.Sprintf("bloom-%d", i)] = 1000 + 100*i
	}
	return files
}

func dataSize() int { return *parts**partSize + lastPartSize }

func (b block) allKeys() []string {
	keys := []string{b.dir() + "data.parquet"}
	for f := range b.smallFiles() {
		keys = append(keys, b.dir()+f)
	}
	sort.Strings(keys)
	return keys
}

type stats struct {
	sync.Mutex
	puts, parts, multiparts, gets, ranged, lists, deletes int
	bytesUp, bytesDown                                    int64
}

func (s *stats) add(f func(*stats)) {
	s.Lock()
	f(s)
	s.Unlock()
}

var st stats

func main() {
	flag.Parse()
	if *tenants < 1 || *blocks < 2 || *parts < 1 {
		fail("need -tenants >= 1, -blocks >= 2, -parts >= 1")
	}
	if *prefix != "" && !strings.HasSuffix(*prefix, "/") {
		fail("-prefix must end with /")
	}
	ctx := context.Background()
	anonymous := *accessKey == ""
	setWriteOptions()
	core := newClient()
	start := time.Now()
	if *ssecRefusd {
		checkSSECRefused(ctx, core)
		fmt.Printf("tempo_replay OK: SSE-C refused over plain HTTP on PUT, GET, HEAD, multipart and copy (%.1fs)\n", time.Since(start).Seconds())
		return
	}

	// Tempo's start-up check: a one-key listing of the configured bucket must succeed.
	if _, err := core.ListObjects(*bucket, *prefix, "", "/", 1); err != nil {
		fail("%v", callErr("start-up ListObjects(prefix="+*prefix+", delimiter=/, max-keys=1)", err))
	}
	if _, err := core.ListObjects(*bucket, *prefix, "", "/", 0); err != nil {
		fail("%v", callErr("start-up ListObjects(prefix="+*prefix+", delimiter=/)", err))
	}

	// The plan: tenants x blocks, with seeded IDs; the second block of each tenant is compacted.
	r := rand.New(rand.NewSource(*seed))
	var all [][]block
	var tenantNames []string
	for t := 0; t < *tenants; t++ {
		name := fmt.Sprintf("%stenant-%d", *prefix, t)
		tenantNames = append(tenantNames, name)
		var bs []block
		for i := 0; i < *blocks; i++ {
			bs = append(bs, block{tenant: name, id: uuidFrom(r), compacted: i == 1})
		}
		all = append(all, bs)
	}

	// Write: each tenant from its own goroutine (Tempo has many ingesters/compactors writing at once).
	runAll(len(all), func(t int) error {
		for _, b := range all[t] {
			if err := writeBlock(ctx, core, b); err != nil {
				return err
			}
		}
		key := tenantNames[t] + "/index.json.gz"
		return putSmall(ctx, core, key, 2048+t)
	})

	// Read back: whole small files, ranged reads of data (Tempo reads pages of data.parquet by range).
	runAll(len(all), func(t int) error {
		for _, b := range all[t] {
			if err := readBlock(ctx, core, b); err != nil {
				return err
			}
		}
		return readWhole(ctx, core, tenantNames[t]+"/index.json.gz", 2048+t)
	})

	// Tempo 3: objects at the storage root and per-tenant overrides, rewritten and re-read by ETag.
	if *tempo3 {
		runAll(1, func(int) error { return tempo3Objects(ctx, core, tenantNames) })
	}

	// V1: tenants (common prefixes of the root) and blocks of each tenant, paged with markers.
	roots := tenantNames
	if *tempo3 {
		roots = append(append([]string(nil), tenantNames...), *prefix+"overrides")
	}
	if err := checkTenantListing(core, roots); err != nil {
		fail("%v", err)
	}
	for t := range all {
		if err := checkBlockListingV1(core, tenantNames[t], all[t], nil); err != nil {
			fail("%v", err)
		}
	}

	// V2: Tempo's ListBlocks, every tenant at once, each split over several goroutines.
	if !*skipV2 {
		runAll(len(all), func(t int) error { return checkBlockListingV2(core, tenantNames[t], all[t], nil) })
	}

	// Delete one block (Tempo's retention: RemoveObject of every file), then check it is gone everywhere.
	victim := all[0][0]
	for _, key := range victim.allKeys() {
		if err := core.RemoveObject(ctx, *bucket, key, minio.RemoveObjectOptions{}); err != nil {
			fail("%v", callErr("RemoveObject "+key, err))
		}
		st.add(func(s *stats) { s.deletes++ })
	}
	for _, key := range victim.allKeys() {
		_, err := core.StatObject(ctx, *bucket, key, minio.StatObjectOptions{ServerSideEncryption: sse})
		if err == nil {
			fail("StatObject %s after RemoveObject: still there", key)
		}
		if code := minio.ToErrorResponse(err).Code; code != "NoSuchKey" {
			fail("StatObject %s after RemoveObject: want NoSuchKey, got %v (code %q)", key, err, code)
		}
		body, _, _, err := core.GetObject(ctx, *bucket, key, readOptions())
		if err == nil {
			body.Close()
			fail("GetObject %s after RemoveObject: still there", key)
		}
		if code := minio.ToErrorResponse(err).Code; code != "NoSuchKey" {
			fail("GetObject %s after RemoveObject: want NoSuchKey, got %v (code %q)", key, err, code)
		}
	}
	// Removing what is already gone succeeds, as on S3 (Tempo retries deletes).
	if err := core.RemoveObject(ctx, *bucket, victim.dir()+"meta.json", minio.RemoveObjectOptions{}); err != nil {
		fail("%v", callErr("RemoveObject of an already removed key", err))
	}
	gone := map[string]bool{victim.id: true}
	if err := checkBlockListingV1(core, victim.tenant, all[0], gone); err != nil {
		fail("after delete: %v", err)
	}
	if !*skipV2 {
		if err := checkBlockListingV2(core, victim.tenant, all[0], gone); err != nil {
			fail("after delete: %v", err)
		}
	}

	if *manifest != "" {
		var lines []string
		for _, bs := range all {
			for _, b := range bs {
				state := "present"
				if gone[b.id] {
					state = "deleted"
				}
				for _, k := range b.allKeys() {
					lines = append(lines, state+" "+k)
				}
			}
		}
		for _, t := range tenantNames {
			lines = append(lines, "present "+t+"/index.json.gz")
			if *tempo3 {
				lines = append(lines, "present "+overridesKey(t))
			}
		}
		if *tempo3 {
			lines = append(lines, "present "+*prefix+"work.json", "present "+*prefix+"tempo_cluster_seed.json")
		}
		if err := os.WriteFile(*manifest, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			fail("write manifest: %v", err)
		}
	}

	mode := "signed (chunked uploads)"
	if *useTLS {
		mode = "signed (HTTPS)"
	}
	if anonymous {
		mode = "anonymous"
	}
	if *sseType != "" {
		mode += ", " + *sseType
	}
	fmt.Printf("tempo_replay OK: %s %s/%s, %d tenants x %d blocks: %d puts, %d multipart uploads (%d parts), %d whole + %d ranged gets, %d listings, %d deletes, %.1f MiB up, %.1f MiB down, %.1fs\n",
		mode, *endpoint, *bucket, *tenants, *blocks, st.puts, st.multiparts, st.parts, st.gets, st.ranged, st.lists, st.deletes,
		float64(st.bytesUp)/(1<<20), float64(st.bytesDown)/(1<<20), time.Since(start).Seconds())
}

// runAll runs f(0..n-1) concurrently and fails on the first error.
func runAll(n int, f func(int) error) {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- f(i)
		}(i)
	}
	wg.Wait()
	close(errs)
	var msgs []string
	for err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		sort.Strings(msgs)
		fail("%s", strings.Join(msgs, "\n  and: "))
	}
}

func putSmall(ctx context.Context, core *minio.Core, key string, size int) error {
	data := content(key, size)
	opts := writeOptions()
	opts.PartSize, opts.ContentType = uint64(*partSize), "application/octet-stream"
	if strings.HasSuffix(key, ".json") {
		opts.ContentType = "application/json"
		opts.UserMetadata = map[string]string{"tempo-replay": "meta"}
	}
	info, err := core.Client.PutObject(ctx, *bucket, key, bytes.NewReader(data), int64(size), opts)
	if err != nil {
		return callErr("PutObject "+key, err)
	}
	if info.Size != int64(size) {
		return fmt.Errorf("PutObject %s: uploaded size %d, want %d", key, info.Size, size)
	}
	st.add(func(s *stats) { s.puts++; s.bytesUp += int64(size) })
	return checkStored(ctx, core, key)
}

func writeBlock(ctx context.Context, core *minio.Core, b block) error {
	// Data first, by multipart upload (Tempo's StreamWriter / Append path), then the small files.
	key := b.dir() + "data.parquet"
	data := content(key, dataSize())
	uploadID, err := core.NewMultipartUpload(ctx, *bucket, key, writeOptions())
	if err != nil {
		return callErr("NewMultipartUpload "+key, err)
	}
	if uploadID == "" {
		return fmt.Errorf("NewMultipartUpload %s: empty upload id", key)
	}
	var completed []minio.CompletePart
	for n, off := 1, 0; off < len(data); n++ {
		end := off + *partSize
		if end > len(data) {
			end = len(data)
		}
		part, err := core.PutObjectPart(ctx, *bucket, key, uploadID, n, bytes.NewReader(data[off:end]), int64(end-off), "", "", sse)
		if err != nil {
			return callErr(fmt.Sprintf("PutObjectPart %s part %d (upload %s)", key, n, uploadID), err)
		}
		if part.ETag == "" {
			return fmt.Errorf("PutObjectPart %s part %d: no ETag", key, n)
		}
		if part.Size != int64(end-off) {
			return fmt.Errorf("PutObjectPart %s part %d: size %d, want %d", key, n, part.Size, end-off)
		}
		completed = append(completed, minio.CompletePart{PartNumber: n, ETag: part.ETag})
		st.add(func(s *stats) { s.parts++; s.bytesUp += int64(end - off) })
		off = end
	}
	etag, err := core.CompleteMultipartUpload(ctx, *bucket, key, uploadID, completed, minio.PutObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return callErr(fmt.Sprintf("CompleteMultipartUpload %s (upload %s, %d parts)", key, uploadID, len(completed)), err)
	}
	if etag == "" {
		return fmt.Errorf("CompleteMultipartUpload %s: empty ETag", key)
	}
	st.add(func(s *stats) { s.multiparts++ })
	if err := checkStored(ctx, core, key); err != nil {
		return err
	}

	files := b.smallFiles()
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		// Tempo writes meta.json last: a block is visible to readers only once it is complete.
		if strings.HasPrefix(f, "meta") {
			continue
		}
		if err := putSmall(ctx, core, b.dir()+f, files[f]); err != nil {
			return err
		}
	}
	if !b.compacted {
		return putSmall(ctx, core, b.dir()+"meta.json", files["meta.json"])
	}
	// Tempo's compactor marks a block compacted: copy meta.json to meta.compacted.json, remove meta.json.
	meta, compacted := b.dir()+"meta.json", b.dir()+"meta.compacted.json"
	if err := putSmall(ctx, core, meta, files["meta.compacted.json"]); err != nil {
		return err
	}
	src := minio.CopySrcOptions{Bucket: *bucket, Object: meta}
	if sse != nil && sse.Type() == encrypt.SSEC {
		src.Encryption = sse
	}
	dst := minio.CopyDestOptions{Bucket: *bucket, Object: compacted, Encryption: sse}
	if _, err := core.Client.CopyObject(ctx, dst, src); err != nil {
		return callErr("CopyObject "+meta+" -> "+compacted, err)
	}
	if err := checkStored(ctx, core, compacted); err != nil {
		return err
	}
	if err := core.RemoveObject(ctx, *bucket, meta, minio.RemoveObjectOptions{}); err != nil {
		return callErr("RemoveObject "+meta, err)
	}
	return nil
}

func readWhole(ctx context.Context, core *minio.Core, key string, size int) error {
	return readWholeAs(ctx, core, key, contentKey(key), size)
}

// contentKey is the key whose content an object holds: a copy holds its source's.
func contentKey(key string) string {
	if strings.HasSuffix(key, "/meta.compacted.json") {
		return strings.TrimSuffix(key, "meta.compacted.json") + "meta.json"
	}
	return key
}

func readWholeAs(ctx context.Context, core *minio.Core, key, from string, size int) error {
	body, info, _, err := core.GetObject(ctx, *bucket, key, readOptions())
	if err != nil {
		return callErr("GetObject "+key, err)
	}
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		return fmt.Errorf("GetObject %s: reading body: %v", key, err)
	}
	if err := sameBytes("GetObject "+key, got, content(from, size)); err != nil {
		return err
	}
	if info.Size != int64(size) {
		return fmt.Errorf("GetObject %s: Content-Length %d, want %d", key, info.Size, size)
	}
	if info.ETag == "" {
		return fmt.Errorf("GetObject %s: no ETag", key)
	}
	if strings.HasSuffix(key, ".json") && info.UserMetadata["Tempo-Replay"] != "meta" && info.Metadata.Get("X-Amz-Meta-Tempo-Replay") != "meta" {
		return fmt.Errorf("GetObject %s: user metadata x-amz-meta-tempo-replay lost (headers %v)", key, info.Metadata)
	}
	st.add(func(s *stats) { s.gets++; s.bytesDown += int64(size) })
	return nil
}

func sameBytes(what string, got, want []byte) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: got %d bytes, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%s: byte %d is %#02x, want %#02x", what, i, got[i], want[i])
		}
	}
	return nil
}

func readBlock(ctx context.Context, core *minio.Core, b block) error {
	for f, size := range b.smallFiles() {
		if err := readWhole(ctx, core, b.dir()+f, size); err != nil {
			return err
		}
	}
	key := b.dir() + "data.parquet"
	size := dataSize()
	data := content(key, size)
	stat, err := core.StatObject(ctx, *bucket, key, minio.StatObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return callErr("StatObject "+key, err)
	}
	if stat.Size != int64(size) {
		return fmt.Errorf("StatObject %s: size %d, want %d", key, stat.Size, size)
	}
	ps := *partSize
	type rng struct{ start, end int64 } // SetRange arguments; minio-go: (0,-n) suffix, (s,0) open-ended
	ranges := []rng{
		{0, 0},                                      // first byte
		{0, 1023},                                   // Tempo reads the footer/header pages
		{int64(ps - 100), int64(ps + 99)},           // across the first part boundary
		{int64(ps), int64(2*ps - 1)},                // exactly the second part
		{int64(2*ps - 7), int64(size - 1)},          // into the last part, to the end
		{int64(size - 1), int64(size - 1)},          // last byte
		{0, -4096},                                  // suffix: the last 4 KiB (footer)
		{int64(size - 5000), 0},                     // open-ended
		{int64(ps/2 + 3), int64(ps/2 + 3 + 300000)}, // a page in the middle
	}
	for _, want := range ranges {
		opts := readOptions()
		if err := opts.SetRange(want.start, want.end); err != nil {
			return fmt.Errorf("SetRange(%d, %d): %v", want.start, want.end, err)
		}
		lo, hi := want.start, want.end
		switch {
		case lo == 0 && hi < 0:
			lo, hi = int64(size)+hi, int64(size-1)
		case lo > 0 && hi == 0:
			hi = int64(size - 1)
		}
		what := fmt.Sprintf("GetObject %s Range %s", key, opts.Header().Get("Range"))
		body, info, hdr, err := core.GetObject(ctx, *bucket, key, opts)
		if err != nil {
			return callErr(what, err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			return fmt.Errorf("%s: reading body: %v", what, err)
		}
		if err := sameBytes(what, got, data[lo:hi+1]); err != nil {
			return err
		}
		if info.Size != hi-lo+1 {
			return fmt.Errorf("%s: Content-Length %d, want %d", what, info.Size, hi-lo+1)
		}
		wantCR := fmt.Sprintf("bytes %d-%d/%d", lo, hi, size)
		if cr := hdr.Get("Content-Range"); cr != wantCR {
			return fmt.Errorf("%s: Content-Range %q, want %q", what, cr, wantCR)
		}
		st.add(func(s *stats) { s.ranged++; s.bytesDown += hi - lo + 1 })
	}
	return nil
}

// checkTenantListing is Tempo's tenant discovery: V1, delimiter "/", at the storage prefix.
func checkTenantListing(core *minio.Core, tenantNames []string) error {
	prefixes, _, err := listV1(core, *prefix, 1)
	if err != nil {
		return err
	}
	want := append([]string(nil), tenantNames...)
	for i := range want {
		want[i] += "/"
	}
	sort.Strings(want)
	if !equal(prefixes, want) {
		return fmt.Errorf("ListObjects(prefix=%q, delimiter=/) paged by 1: common prefixes %v, want %v", *prefix, prefixes, want)
	}
	return nil
}

// checkBlockListingV1 lists <tenant>/ with delimiter "/" and small pages: the block directories are
// the common prefixes, index.json.gz the only object.
func checkBlockListingV1(core *minio.Core, tenant string, bs []block, gone map[string]bool) error {
	var want []string
	for _, b := range bs {
		if !gone[b.id] {
			want = append(want, b.dir())
		}
	}
	sort.Strings(want)
	for _, maxKeys := range []int{0, 1, 2, 3} {
		prefixes, objects, err := listV1(core, tenant+"/", maxKeys)
		if err != nil {
			return err
		}
		if !equal(prefixes, want) {
			return fmt.Errorf("ListObjects(prefix=%q, delimiter=/, max-keys=%d) with marker paging: common prefixes\n    %v\n  want\n    %v", tenant+"/", maxKeys, prefixes, want)
		}
		if wantObj := []string{tenant + "/index.json.gz"}; !equal(objects, wantObj) {
			return fmt.Errorf("ListObjects(prefix=%q, delimiter=/, max-keys=%d): objects %v, want %v", tenant+"/", maxKeys, objects, wantObj)
		}
	}
	return nil
}

// listV1 pages through a V1 listing with delimiter "/" the way Tempo's List does (marker = NextMarker).
func listV1(core *minio.Core, pfx string, maxKeys int) (prefixes, objects []string, err error) {
	marker := ""
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, nil, fmt.Errorf("ListObjects(prefix=%q, delimiter=/, max-keys=%d): more than 10000 pages, marker not advancing (%q)", pfx, maxKeys, marker)
		}
		res, err := core.ListObjects(*bucket, pfx, marker, "/", maxKeys)
		what := fmt.Sprintf("ListObjects(prefix=%q, marker=%q, delimiter=/, max-keys=%d)", pfx, marker, maxKeys)
		if err != nil {
			return nil, nil, callErr(what, err)
		}
		st.add(func(s *stats) { s.lists++ })
		n := len(res.Contents) + len(res.CommonPrefixes)
		if maxKeys > 0 && n > maxKeys {
			return nil, nil, fmt.Errorf("%s: %d entries, more than max-keys", what, n)
		}
		var last string
		for _, o := range res.Contents {
			if !strings.HasPrefix(o.Key, pfx) || strings.Contains(o.Key[len(pfx):], "/") {
				return nil, nil, fmt.Errorf("%s: object %q does not belong under prefix %q with delimiter /", what, o.Key, pfx)
			}
			if marker != "" && o.Key <= marker {
				return nil, nil, fmt.Errorf("%s: object %q is not after the marker", what, o.Key)
			}
			objects = append(objects, o.Key)
			if o.Key > last {
				last = o.Key
			}
		}
		for _, p := range res.CommonPrefixes {
			if !strings.HasPrefix(p.Prefix, pfx) || !strings.HasSuffix(p.Prefix, "/") || strings.Contains(p.Prefix[len(pfx):len(p.Prefix)-1], "/") {
				return nil, nil, fmt.Errorf("%s: common prefix %q is not <prefix><segment>/", what, p.Prefix)
			}
			if marker != "" && p.Prefix <= marker {
				return nil, nil, fmt.Errorf("%s: common prefix %q is not after the marker", what, p.Prefix)
			}
			prefixes = append(prefixes, p.Prefix)
			if p.Prefix > last {
				last = p.Prefix
			}
		}
		if !res.IsTruncated {
			break
		}
		if res.NextMarker == "" {
			return nil, nil, fmt.Errorf("%s: truncated without NextMarker (a delimiter was given, so S3 returns one)", what)
		}
		if res.NextMarker != last {
			return nil, nil, fmt.Errorf("%s: NextMarker %q, want the last entry returned %q", what, res.NextMarker, last)
		}
		marker = res.NextMarker
	}
	sort.Strings(prefixes)
	sort.Strings(objects)
	if dup := firstDup(prefixes); dup != "" {
		return nil, nil, fmt.Errorf("ListObjects(prefix=%q, delimiter=/, max-keys=%d): common prefix %q returned twice", pfx, maxKeys, dup)
	}
	if dup := firstDup(objects); dup != "" {
		return nil, nil, fmt.Errorf("ListObjects(prefix=%q, delimiter=/, max-keys=%d): object %q returned twice", pfx, maxKeys, dup)
	}
	return prefixes, objects, nil
}

// checkBlockListingV2 is Tempo's ListBlocks: the block-ID space is cut into -list-concurrency ranges,
// each listed by its own goroutine with V2, no delimiter, start-after = <tenant>/<range start>, paging
// by continuation token (start-after still sent, as minio-go does) until a block ID reaches the range
// end. Blocks are recognised by their meta.json / meta.compacted.json.
func checkBlockListingV2(core *minio.Core, tenant string, bs []block, gone map[string]bool) error {
	pfx := tenant + "/"
	n := *listers
	bounds := make([]string, n+1) // uuid-formatted range boundaries, bounds[n] = max
	for i := 0; i <= n; i++ {
		var b [16]byte
		if i == n {
			for j := range b {
				b[j] = 0xff
			}
		} else {
			binary.BigEndian.PutUint64(b[:8], uint64(i)*(^uint64(0)/uint64(n)))
		}
		bounds[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	type found struct {
		id, meta string
	}
	results := make([][]found, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			min, max := bounds[i], bounds[i+1]
			startAfter := pfx + min
			token := ""
			prev := startAfter
			for page := 0; ; page++ {
				what := fmt.Sprintf("ListObjectsV2(prefix=%q, start-after=%q, continuation-token=%q, delimiter=\"\", max-keys=3) page %d", pfx, startAfter, token, page)
				if page > 10000 {
					errs[i] = fmt.Errorf("%s: more than 10000 pages", what)
					return
				}
				res, err := core.ListObjectsV2(*bucket, pfx, startAfter, token, "", 3)
				if err != nil {
					errs[i] = callErr(what, err)
					return
				}
				st.add(func(s *stats) { s.lists++ })
				if len(res.Contents) > 3 {
					errs[i] = fmt.Errorf("%s: %d keys, more than max-keys", what, len(res.Contents))
					return
				}
				if len(res.CommonPrefixes) > 0 {
					errs[i] = fmt.Errorf("%s: common prefixes %v without a delimiter", what, res.CommonPrefixes)
					return
				}
				for _, o := range res.Contents {
					if !strings.HasPrefix(o.Key, pfx) {
						errs[i] = fmt.Errorf("%s: key %q outside the prefix", what, o.Key)
						return
					}
					if o.Key <= startAfter {
						errs[i] = fmt.Errorf("%s: key %q is not after start-after %q", what, o.Key, startAfter)
						return
					}
					if o.Key <= prev {
						errs[i] = fmt.Errorf("%s: key %q is not after the previous key %q (order or duplicate)", what, o.Key, prev)
						return
					}
					prev = o.Key
					segs := strings.Split(o.Key[len(pfx):], "/")
					if len(segs) != 2 {
						continue // e.g. <tenant>/index.json.gz
					}
					if segs[0] >= max {
						return // Tempo stops at the first block ID of the next range
					}
					if segs[1] == "meta.json" || segs[1] == "meta.compacted.json" {
						results[i] = append(results[i], found{segs[0], segs[1]})
					}
				}
				if !res.IsTruncated {
					return
				}
				if res.NextContinuationToken == "" {
					errs[i] = fmt.Errorf("%s: truncated without NextContinuationToken", what)
					return
				}
				token = res.NextContinuationToken
			}
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var got, want []string
	for _, r := range results {
		for _, f := range r {
			got = append(got, f.id+"/"+f.meta)
		}
	}
	for _, b := range bs {
		if !gone[b.id] {
			want = append(want, b.id+"/"+b.metaName())
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !equal(got, want) {
		return fmt.Errorf("ListBlocks of %q (V2, %d goroutines by start-after): found\n    %v\n  want\n    %v", tenant, n, got, want)
	}
	return nil
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func firstDup(sorted []string) string {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i]
		}
	}
	return ""
}

// setWriteOptions reads -sse and -tags into sse and userTags.
func setWriteOptions() {
	var err error
	switch *sseType {
	case "":
	case "SSE-S3":
		sse = encrypt.NewSSE()
	case "SSE-KMS":
		var kmsCtx map[string]interface{}
		if err := json.Unmarshal([]byte(*kmsContext), &kmsCtx); err != nil {
			fail("-kms-context is not a JSON object: %v", err)
		}
		sse, err = encrypt.NewSSEKMS(*kmsKeyID, kmsCtx)
	case "SSE-C":
		key := sha256.Sum256([]byte(fmt.Sprintf("tempo-replay customer key %d", *seed)))
		sse, err = encrypt.NewSSEC(key[:])
	default:
		fail("-sse %q: want SSE-S3, SSE-KMS or SSE-C", *sseType)
	}
	if err != nil {
		fail("-sse %s: %v", *sseType, err)
	}
	if *ssecRefusd && (sse == nil || sse.Type() != encrypt.SSEC) {
		fail("-ssec-refused needs -sse SSE-C")
	}
	if *tags != "" {
		q, err := url.ParseQuery(*tags)
		if err != nil {
			fail("-tags %q: %v", *tags, err)
		}
		userTags = map[string]string{}
		for k, v := range q {
			userTags[k] = v[0]
		}
	}
}

// newClient is Tempo's minio-go client: path-style, over HTTPS with -tls (trusting -ca).
func newClient() *minio.Core {
	opts := &minio.Options{
		Creds:        credentials.NewStaticV4(*accessKey, *secretKey, ""),
		Secure:       *useTLS,
		Region:       *region,
		BucketLookup: minio.BucketLookupPath, // Tempo's forcepathstyle: true
	}
	if *useTLS && *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fail("-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail("-ca %s holds no PEM certificate", *caFile)
		}
		tr, err := minio.DefaultTransport(true)
		if err != nil {
			fail("minio.DefaultTransport: %v", err)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts.Transport = tr
	}
	client, err := minio.New(*endpoint, opts)
	if err != nil {
		fail("minio.New: %v", err)
	}
	return &minio.Core{Client: client}
}

// writeOptions are the options Tempo writes with: encryption, storage class, tags.
func writeOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{ServerSideEncryption: sse, StorageClass: *storageCls, UserTags: userTags}
}

// readOptions carry the customer key for SSE-C (minio-go sends no other encryption header on reads).
func readOptions() minio.GetObjectOptions {
	return minio.GetObjectOptions{ServerSideEncryption: sse}
}

// checkStored checks, with -expect-sse, that the object's HEAD names the encryption, storage class
// and tags it was written with (a backend that stores them answers so through the proxy).
func checkStored(ctx context.Context, core *minio.Core, key string) error {
	if !*expectSSE {
		return nil
	}
	info, err := core.StatObject(ctx, *bucket, key, minio.StatObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return callErr("StatObject "+key+" (checking encryption)", err)
	}
	h := info.Metadata
	want := map[string]string{}
	switch *sseType {
	case "SSE-S3":
		want["X-Amz-Server-Side-Encryption"] = "AES256"
	case "SSE-KMS":
		want["X-Amz-Server-Side-Encryption"] = "aws:kms"
		want["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] = *kmsKeyID
	case "SSE-C":
		want["X-Amz-Server-Side-Encryption-Customer-Algorithm"] = "AES256"
	}
	// A copy is STANDARD unless it names a class, as on S3 (Tempo's copies name none).
	if *storageCls != "" && *storageCls != "STANDARD" && !strings.HasSuffix(key, "meta.compacted.json") {
		want["X-Amz-Storage-Class"] = *storageCls
	}
	for name, value := range want {
		if got := h.Get(name); !strings.HasSuffix(got, value) {
			return fmt.Errorf("StatObject %s: %s is %q, want %q (headers %v)", key, name, got, value, h)
		}
	}
	if len(userTags) > 0 {
		got, err := core.Client.GetObjectTagging(ctx, *bucket, key, minio.GetObjectTaggingOptions{})
		if err != nil {
			return callErr("GetObjectTagging "+key, err)
		}
		if m := got.ToMap(); fmt.Sprint(m) != fmt.Sprint(userTags) {
			return fmt.Errorf("GetObjectTagging %s: %v, want %v", key, m, userTags)
		}
	}
	return nil
}

func overridesKey(tenant string) string {
	return *prefix + "overrides/" + strings.TrimPrefix(tenant, *prefix) + "/overrides.json"
}

// tempo3Objects writes and reads Tempo 3's objects outside blocks: the cluster seed and the backend
// scheduler's work.json at the storage root, and each tenant's user-configurable overrides, which
// Tempo rewrites and re-reads by ETag (a changed ETag means new overrides).
func tempo3Objects(ctx context.Context, core *minio.Core, tenantNames []string) error {
	seedKey := *prefix + "tempo_cluster_seed.json"
	if err := putSmall(ctx, core, seedKey, 180); err != nil {
		return err
	}
	if err := readWhole(ctx, core, seedKey, 180); err != nil {
		return err
	}
	keys := []string{*prefix + "work.json"}
	for _, t := range tenantNames {
		keys = append(keys, overridesKey(t))
	}
	for _, key := range keys {
		var old string
		for version := 0; version < 3; version++ {
			etag, err := putVersion(ctx, core, key, version)
			if err != nil {
				return err
			}
			if etag == old {
				return fmt.Errorf("PutObject %s version %d: ETag %s did not change", key, version, etag)
			}
			if err := readVersion(ctx, core, key, version, etag, old); err != nil {
				return err
			}
			old = etag
		}
	}
	return nil
}

func versionBody(key string, version int) []byte {
	return content(fmt.Sprintf("%s#v%d", key, version), 400+37*version)
}

func putVersion(ctx context.Context, core *minio.Core, key string, version int) (string, error) {
	data := versionBody(key, version)
	opts := writeOptions()
	opts.ContentType = "application/json"
	opts.UserMetadata = map[string]string{"tempo-replay": "meta"}
	info, err := core.Client.PutObject(ctx, *bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return "", callErr(fmt.Sprintf("PutObject %s version %d", key, version), err)
	}
	st.add(func(s *stats) { s.puts++; s.bytesUp += int64(len(data)) })
	return strings.Trim(info.ETag, `"`), checkStored(ctx, core, key)
}

// readVersion: HEAD and GET show the ETag of the last write and its bytes; with -conditional,
// If-Match on it succeeds, on the previous ETag fails, and If-None-Match on it is not modified.
func readVersion(ctx context.Context, core *minio.Core, key string, version int, etag, previous string) error {
	what := fmt.Sprintf("%s version %d", key, version)
	stat, err := core.StatObject(ctx, *bucket, key, minio.StatObjectOptions{ServerSideEncryption: sse})
	if err != nil {
		return callErr("StatObject "+what, err)
	}
	if got := strings.Trim(stat.ETag, `"`); got != etag {
		return fmt.Errorf("StatObject %s: ETag %s, want %s (the last write)", what, got, etag)
	}
	get := func(opts minio.GetObjectOptions) ([]byte, string, error) {
		body, info, _, err := core.GetObject(ctx, *bucket, key, opts)
		if err != nil {
			return nil, "", err
		}
		defer body.Close()
		data, err := io.ReadAll(body)
		return data, strings.Trim(info.ETag, `"`), err
	}
	data, got, err := get(readOptions())
	if err != nil {
		return callErr("GetObject "+what, err)
	}
	if got != etag {
		return fmt.Errorf("GetObject %s: ETag %s, want %s", what, got, etag)
	}
	if err := sameBytes("GetObject "+what, data, versionBody(key, version)); err != nil {
		return err
	}
	st.add(func(s *stats) { s.gets++; s.bytesDown += int64(len(data)) })
	if !*conditionl {
		return nil
	}
	opts := readOptions()
	opts.SetMatchETag(etag)
	if _, _, err := get(opts); err != nil {
		return callErr("GetObject "+what+" If-Match the current ETag", err)
	}
	if previous != "" {
		opts := readOptions()
		opts.SetMatchETag(previous)
		_, _, err := get(opts)
		if code := minio.ToErrorResponse(err).Code; code != "PreconditionFailed" {
			return fmt.Errorf("GetObject %s If-Match the previous ETag: want PreconditionFailed, got %v (code %q)", what, err, code)
		}
	}
	opts = readOptions()
	opts.SetMatchETagExcept(etag)
	if _, _, err := get(opts); err == nil || minio.ToErrorResponse(err).StatusCode != 304 {
		return fmt.Errorf("GetObject %s If-None-Match the current ETag: want 304 Not Modified, got %v", what, err)
	}
	return nil
}

// checkSSECRefused: over plain HTTP every call carrying a customer key gets S3's 400 InvalidRequest.
func checkSSECRefused(ctx context.Context, core *minio.Core) error {
	key := *prefix + "tenant-0/ssec-block/meta.json"
	data := content(key, 300)
	refused := func(what string, err error, head bool) {
		resp := minio.ToErrorResponse(err)
		if err == nil {
			fail("%s with an SSE-C key over plain HTTP: accepted, want 400 InvalidRequest", what)
		}
		if resp.StatusCode != 400 {
			fail("%s with an SSE-C key over plain HTTP: status %d (%v), want 400", what, resp.StatusCode, err)
		}
		if !head && (resp.Code != "InvalidRequest" || !strings.Contains(resp.Message, "secure connection")) {
			fail("%s with an SSE-C key over plain HTTP: %q %q, want InvalidRequest ... secure connection", what, resp.Code, resp.Message)
		}
	}
	opts := writeOptions()
	_, err := core.Client.PutObject(ctx, *bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	refused("PutObject", err, false)
	_, _, _, err = core.GetObject(ctx, *bucket, key, readOptions())
	refused("GetObject", err, false)
	ranged := readOptions()
	ranged.SetRange(0, 99)
	_, _, _, err = core.GetObject(ctx, *bucket, key, ranged)
	refused("GetObject with a Range", err, false)
	_, err = core.StatObject(ctx, *bucket, key, minio.StatObjectOptions{ServerSideEncryption: sse})
	refused("StatObject (HEAD)", err, true)
	_, err = core.NewMultipartUpload(ctx, *bucket, key, opts)
	refused("NewMultipartUpload", err, false)
	_, err = core.PutObjectPart(ctx, *bucket, key, "no-such-upload", 1, bytes.NewReader(data), int64(len(data)), "", "", sse)
	refused("PutObjectPart", err, false)
	src := minio.CopySrcOptions{Bucket: *bucket, Object: key, Encryption: sse}
	_, err = core.Client.CopyObject(ctx, minio.CopyDestOptions{Bucket: *bucket, Object: key + ".copy"}, src)
	refused("CopyObject (source key)", err, false)
	return nil
}
