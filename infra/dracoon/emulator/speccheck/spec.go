// Package speccheck checks HTTP traffic against DRACOON's official OpenAPI
// document (version 4.26.7, kept in the repository as DocPath). Load tightens
// the document so that it refuses what the original lets pass: every object
// schema is closed (a misspelt or unknown field fails), and a response status
// the operation does not list fails. A Checker wraps an http.Handler and
// records every request and response that does not conform; tests fail on
// any. Routes the document does not describe are skipped by an explicit list.
package speccheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// DocPath is the document's path relative to the repository root.
const DocPath = "testdata/dracoon/dracoon-openapi-4.26.7.json"

// Spec is the loaded and tightened document with its router. It is read-only
// after loading and safe for concurrent use.
type Spec struct {
	// Doc is the tightened document.
	Doc    *openapi3.T
	router routers.Router
}

// shared caches the document: it is 1.5 MB and takes about a second to load,
// so a test binary loads it once. It is the package's only variable.
var shared = sync.OnceValues(func() (*Spec, error) {
	path, err := findDoc()
	if err != nil {
		return nil, err
	}
	return LoadFile(path)
})

// Load returns the shared Spec, loaded from DocPath below the repository root
// (the first directory upward from the working directory with a go.mod).
func Load() (*Spec, error) { return shared() }

func findDoc() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("cannot find working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, DocPath), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// LoadFile loads the document at path (UTF-8, with or without BOM), tightens
// it and builds its router. It does not cache.
func LoadFile(path string) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read OpenAPI document: %w", err)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot load OpenAPI document %s: %w", path, err)
	}
	if err := tighten(doc); err != nil {
		return nil, fmt.Errorf("cannot adjust OpenAPI document: %w", err)
	}
	// The deprecated POST /v4/auth/login carries an invalid example (errorCode
	// null on a non-nullable field), hence examples are not validated.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("cannot build router: %w", err)
	}
	return &Spec{Doc: doc, router: router}, nil
}

// tighten applies closeObjects and the documented corrections below.
func tighten(doc *openapi3.T) error {
	errs := []error{
		allowNullRoomParent(doc),
		allowRawChunks(doc),
		allowJSONDownloadErrors(doc),
	}
	closeObjects(doc)
	return errors.Join(errs...)
}

// closeObjects sets additionalProperties: false on every object schema of the
// document (components, parameters, request bodies, responses; recursively
// through properties, items and compositions), so an unknown field fails.
func closeObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if (s.Type.Is(openapi3.TypeObject) || len(s.Properties) > 0) &&
			s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			closed := false
			s.AdditionalProperties.Has = &closed
		}
		for _, p := range s.Properties {
			visit(p)
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
		visit(s.Not)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, c := range list {
				visit(c)
			}
		}
	}
	for _, ref := range doc.Components.Schemas {
		visit(ref)
	}
	visitContent := func(c openapi3.Content) {
		for _, mt := range c {
			if mt != nil {
				visit(mt.Schema)
			}
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil {
					visit(p.Value.Schema)
				}
			}
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				visitContent(op.RequestBody.Value.Content)
			}
			for _, resp := range op.Responses.Map() {
				if resp.Value != nil {
					visitContent(resp.Value.Content)
				}
			}
		}
	}
}

// allowNullRoomParent: CreateRoomRequest.parentId is described as "Parent
// room ID or `null` (not 0) to create a top level room" but not declared
// nullable; null is allowed as the description says.
func allowNullRoomParent(doc *openapi3.T) error {
	s := doc.Components.Schemas["CreateRoomRequest"]
	if s == nil || s.Value == nil || s.Value.Properties["parentId"] == nil {
		return errors.New("CreateRoomRequest.parentId not found")
	}
	s.Value.Properties["parentId"].Value.Nullable = true
	return nil
}

// allowRawChunks: POST /v4/uploads/{token} declares only multipart/form-data,
// while its description ("provided Content-Type ... raw content") and the
// clients (dco3 sends raw bytes without a Content-Type, and an empty body for
// a 0-byte file) also use raw bodies. Any media type is accepted as opaque
// bytes and the body is optional; multipart bodies are still checked.
func allowRawChunks(doc *openapi3.T) error {
	item := doc.Paths.Value("/v4/uploads/{token}")
	if item == nil || item.Post == nil || item.Post.RequestBody == nil || item.Post.RequestBody.Value == nil {
		return errors.New("POST /v4/uploads/{token} request body not found")
	}
	rb := item.Post.RequestBody.Value
	rb.Content["*/*"] = &openapi3.MediaType{}
	rb.Required = false
	return nil
}

// allowJSONDownloadErrors: GET /v4/downloads/{token} declares its error
// bodies (ErrorResponse) as application/octet-stream. The emulator answers
// errors as JSON like every other operation, so application/json with the
// same schema is accepted too.
func allowJSONDownloadErrors(doc *openapi3.T) error {
	item := doc.Paths.Value("/v4/downloads/{token}")
	if item == nil || item.Get == nil {
		return errors.New("GET /v4/downloads/{token} not found")
	}
	for _, resp := range item.Get.Responses.Map() {
		if resp.Value == nil {
			continue
		}
		if mt := resp.Value.Content["application/octet-stream"]; mt != nil && mt.Schema != nil {
			resp.Value.Content["application/json"] = &openapi3.MediaType{Schema: mt.Schema}
		}
	}
	return nil
}
