package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/recording-storage/recording-storage/infra/dracoon/emulator"
)

// BenchmarkChunkUpload measures raw proxy chunk POST throughput (32 MiB
// chunks over loopback) into the emulator storing to disk and in benchmark
// mode (Config.DiscardContent).
func BenchmarkChunkUpload(b *testing.B) {
	const chunk = 32 << 20
	const chunksPerUpload = 8 // a new channel every 256 MiB keeps the disk use bounded
	data := pattern(chunk, 1)
	for _, mode := range []struct {
		name    string
		discard bool
	}{{"disk", false}, {"discard", true}} {
		b.Run(mode.name, func(b *testing.B) {
			emu, err := emulator.New(emulator.Config{DataDir: b.TempDir(), Seed: testSeed(false), DiscardContent: mode.discard})
			if err != nil {
				b.Fatal(err)
			}
			srv := httptest.NewServer(emu)
			b.Cleanup(func() {
				srv.Close()
				_ = emu.Close()
			})
			hc := srv.Client()
			token := benchLogin(b, hc, srv.URL)
			var ch uploadChannel
			newChannel := func() {
				if ch.UploadURL != "" {
					req, _ := http.NewRequest(http.MethodDelete, ch.UploadURL, nil)
					benchDo(b, hc, req, http.StatusNoContent, nil)
				}
				raw, _ := json.Marshal(map[string]any{"parentId": roomPlain, "name": "bench.bin"})
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v4/nodes/files/uploads", bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				benchDo(b, hc, req, http.StatusCreated, &ch)
			}
			newChannel()
			b.SetBytes(chunk)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off := int64(i%chunksPerUpload) * chunk
				if i > 0 && off == 0 {
					b.StopTimer()
					newChannel()
					b.StartTimer()
				}
				req, _ := http.NewRequest(http.MethodPost, ch.UploadURL, bytes.NewReader(data))
				req.Header.Set("Content-Type", "application/octet-stream")
				req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", off, off+chunk-1))
				benchDo(b, hc, req, http.StatusCreated, nil)
			}
		})
	}
}

func benchLogin(b *testing.B, hc *http.Client, base string) string {
	b.Helper()
	form := url.Values{"grant_type": {"password"}, "username": {"svc"}, "password": {"svc-pw"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+stdBasic(clientID, clientSecret))
	var tr tokenResp
	benchDo(b, hc, req, http.StatusOK, &tr)
	return tr.AccessToken
}

func benchDo(b *testing.B, hc *http.Client, req *http.Request, want int, out any) {
	b.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatal(err)
		}
	}
}
