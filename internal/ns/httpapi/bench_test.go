package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
)

// BenchmarkBlobUpload measures uploading a 256 MiB blob through the HTTP API
// over loopback (hashing, writing, fsync, rename) against writing and
// fsyncing the same bytes to a file in the same folder tree, in the same
// run. It reports both rates and their ratio (upload / raw).
func BenchmarkBlobUpload(b *testing.B) {
	const size = 256 << 20
	data := make([]byte, size)
	rand.Read(data)
	var upload, raw time.Duration
	for i := 0; i < b.N; i++ {
		data[0] = byte(i) // a new blob every round
		sum := sha256.Sum256(data)
		d := hex.EncodeToString(sum[:])

		f := newBenchFixture(b)
		start := time.Now()
		req, _ := http.NewRequest("PUT", f.url+api.Prefix+"/blobs/"+d, bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			b.Fatalf("upload: %v %v", err, resp)
		}
		resp.Body.Close()
		upload += time.Since(start)

		start = time.Now()
		out, err := os.Create(filepath.Join(f.dir, "raw"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := out.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := out.Sync(); err != nil {
			b.Fatal(err)
		}
		out.Close()
		raw += time.Since(start)
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(upload), "upload-MB/s")
	b.ReportMetric(mbps(raw), "raw-write-MB/s")
	b.ReportMetric(mbps(upload)/mbps(raw), "ratio")
	b.ReportMetric(0, "ns/op")
}
