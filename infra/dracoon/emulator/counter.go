package emulator

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// RequestsPath is the emulator's own endpoint that reports the requests it
// has served by route (GET, JSON RequestCounts). It is not part of the
// DRACOON API (speccheck skips it).
const RequestsPath = "/emulator/requests"

// Route classes: what a request costs a client, by kind. RouteClass maps a
// route to its class; a route it does not know is ClassOther.
const (
	ClassLogin         = "login"          // POST /oauth/token
	ClassKeyPair       = "keypair"        // GET /v4/user/account/keypair(s)
	ClassNodeList      = "node_list"      // GET /v4/nodes (children, filtered)
	ClassNodeRead      = "node_read"      // GET /v4/nodes/{node_id}
	ClassRoomCreate    = "room_create"    // POST /v4/nodes/rooms
	ClassUploadChannel = "upload_channel" // POST /v4/nodes/files/uploads
	ClassPartURLs      = "part_urls"      // POST .../s3_urls
	ClassPartPut       = "part_put"       // a presigned S3 part, or a proxy chunk
	ClassCompletion    = "completion"     // PUT the upload (proxy) or its /s3 (S3 direct)
	ClassStatusPoll    = "status_poll"    // GET /v4/nodes/files/uploads/{upload_id}
	ClassMissingKeys   = "missing_keys"   // GET /v4/nodes/missingFileKeys
	ClassKeyUpload     = "key_upload"     // POST /v4/nodes/files/keys
	ClassOther         = "other"
)

// RouteClass returns the class of route (as RequestCounts.Routes names it).
func RouteClass(route string) string {
	switch route {
	case "POST /oauth/token":
		return ClassLogin
	case "GET /api/v4/user/account/keypair", "GET /api/v4/user/account/keypairs":
		return ClassKeyPair
	case "GET /api/v4/nodes":
		return ClassNodeList
	case "GET /api/v4/nodes/{node_id}":
		return ClassNodeRead
	case "POST /api/v4/nodes/rooms":
		return ClassRoomCreate
	case "POST /api/v4/nodes/files/uploads":
		return ClassUploadChannel
	case "POST /api/v4/nodes/files/uploads/{upload_id}/s3_urls":
		return ClassPartURLs
	case "PUT " + S3PathPrefix + "{upload_id}/{part}", "POST /api/v4/uploads/{token}",
		"POST /api/v4/nodes/files/uploads/{upload_id}":
		return ClassPartPut
	case "PUT /api/v4/uploads/{token}", "PUT /api/v4/nodes/files/uploads/{upload_id}",
		"PUT /api/v4/nodes/files/uploads/{upload_id}/s3":
		return ClassCompletion
	case "GET /api/v4/nodes/files/uploads/{upload_id}":
		return ClassStatusPoll
	case "GET /api/v4/nodes/missingFileKeys":
		return ClassMissingKeys
	case "POST /api/v4/nodes/files/keys":
		return ClassKeyUpload
	}
	return ClassOther
}

// RequestCounts are the requests a server has served since it started.
type RequestCounts struct {
	Total int64 `json:"total"`
	// Routes counts by route: the method and the route pattern (never the
	// path, which may hold a token), the two-segment file routes by the
	// route they were dispatched to.
	Routes map[string]int64 `json:"routes"`
	// Faults counts the faults injected, by kind: "reset", "status-500",
	// "after-reset", "after-status-502", "after-delay", "cut", …
	Faults map[string]int64 `json:"faults,omitempty"`
}

// Classes sums the counts by RouteClass.
func (c RequestCounts) Classes() map[string]int64 {
	out := map[string]int64{}
	for r, n := range c.Routes {
		out[RouteClass(r)] += n
	}
	return out
}

// Sub returns the requests of c that were not yet in before.
func (c RequestCounts) Sub(before RequestCounts) RequestCounts {
	out := RequestCounts{Total: c.Total - before.Total, Routes: map[string]int64{}, Faults: map[string]int64{}}
	for r, n := range c.Routes {
		if d := n - before.Routes[r]; d != 0 {
			out.Routes[r] = d
		}
	}
	for k, n := range c.Faults {
		if d := n - before.Faults[k]; d != 0 {
			out.Faults[k] = d
		}
	}
	return out
}

// String lists the routes with their counts, for test failures.
func (c RequestCounts) String() string {
	routes := make([]string, 0, len(c.Routes))
	for r := range c.Routes {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	var b strings.Builder
	for _, r := range routes {
		b.WriteString("\n  ")
		b.WriteString(r)
		b.WriteString(": ")
		b.WriteString(itoa(c.Routes[r]))
	}
	return "total " + itoa(c.Total) + b.String()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// requestCounter counts requests by route. Safe for concurrent use.
type requestCounter struct {
	mu     sync.Mutex
	routes map[string]int64
	total  int64
}

func (c *requestCounter) add(route string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.routes == nil {
		c.routes = map[string]int64{}
	}
	c.routes[route]++
	c.total++
}

func (c *requestCounter) snapshot() RequestCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := RequestCounts{Total: c.total, Routes: make(map[string]int64, len(c.routes))}
	for r, n := range c.routes {
		out.Routes[r] = n
	}
	return out
}

// Requests returns the requests served since the server started (the
// counter endpoint's own requests excluded) and the faults injected into
// them.
func (s *Server) Requests() RequestCounts {
	c := s.counter.snapshot()
	c.Faults = s.faults.counts()
	return c
}

// handleRequests is GET RequestsPath.
func (s *Server) handleRequests(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Requests())
}

// routeOf names the route r was served by: its pattern, with the
// two-segment file routes named by what they were dispatched to.
func routeOf(r *http.Request) string {
	switch r.Pattern {
	case "":
		return r.Method + " (unmatched)"
	case "GET /api/v4/nodes/files/{a}/{b}":
		if r.PathValue("a") == "uploads" {
			return "GET /api/v4/nodes/files/uploads/{upload_id}"
		}
		if r.PathValue("b") == "user_file_key" {
			return "GET /api/v4/nodes/files/{file_id}/user_file_key"
		}
	case "POST /api/v4/nodes/files/{a}/{b}":
		if r.PathValue("a") == "uploads" {
			return "POST /api/v4/nodes/files/uploads/{upload_id}"
		}
		if r.PathValue("b") == "downloads" {
			return "POST /api/v4/nodes/files/{file_id}/downloads"
		}
	}
	return r.Pattern
}
