package standin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// maxBody bounds a request body; maxInputs the inputs of one embeddings
// call (OpenAI's limit).
const (
	maxBody   = 1 << 20
	maxInputs = 2048
)

// modelCreated is the "created" time of every model: 2026-01-01 UTC.
const modelCreated = 1767225600

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     int             `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float64, or a base64 string
}

// parseEmbedding reads and checks an embeddings request.
func (s *Server) parseEmbedding(w http.ResponseWriter, r *http.Request) (embeddingRequest, []string, *apiError) {
	var req embeddingRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		e := badRequest("", "The request body is not valid JSON.")
		return req, nil, &e
	}
	var inputs []string
	var one string
	switch {
	case json.Unmarshal(req.Input, &one) == nil && one != "":
		inputs = []string{one}
	case json.Unmarshal(req.Input, &inputs) == nil && len(inputs) > 0 && len(inputs) <= maxInputs &&
		!slices.Contains(inputs, ""):
	default:
		e := badRequest("input", fmt.Sprintf("'input' must be a non-empty string or an array of 1 to %d non-empty strings.", maxInputs))
		return req, nil, &e
	}
	switch {
	case req.Model == "":
		e := badRequest("model", "'model' is required.")
		return req, nil, &e
	case !slices.Contains(s.opts.Models, req.Model):
		e := apiError{status: http.StatusNotFound, code: "model_not_found", typ: "invalid_request_error",
			connect: "not_found", param: "model", msg: fmt.Sprintf("The model %q does not exist.", req.Model)}
		return req, nil, &e
	case req.Dimensions < 0 || req.Dimensions > MaxDimensions:
		e := badRequest("dimensions", fmt.Sprintf("'dimensions' must be between 1 and %d.", MaxDimensions))
		return req, nil, &e
	case req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64":
		e := badRequest("encoding_format", `'encoding_format' must be "float" or "base64".`)
		return req, nil, &e
	}
	return req, inputs, nil
}

// embeddings serves POST /v1/embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, v vendor) {
	req, inputs, bad := s.parseEmbedding(w, r)
	if bad != nil {
		s.fail(w, v, *bad)
		return
	}
	dims := req.Dimensions
	if dims == 0 {
		dims = s.opts.Dimensions
	}
	data := make([]embedding, len(inputs))
	tokens := 0
	for i, in := range inputs {
		vec := Embed(in, dims)
		data[i] = embedding{Object: "embedding", Index: i, Embedding: vec}
		if req.EncodingFormat == "base64" {
			data[i].Embedding = encodeBase64(vec)
		}
		tokens += max(len(strings.Fields(in)), 1)
	}
	s.reply(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  req.Model,
		"usage":  map[string]int{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// Embed returns the embedding the stand-in answers for text: a
// deterministic vector of dims components (at least 1) and unit length,
// derived from the SHA-256 of text, so that a test can compute what to
// expect. The same text always has the same embedding.
func Embed(text string, dims int) []float64 {
	dims = max(dims, 1)
	v := make([]float64, dims)
	var block [sha256.Size]byte
	var norm float64
	for i := range v {
		if i%(sha256.Size/2) == 0 { // 16 components per block
			block = sha256.Sum256(fmt.Appendf(nil, "%d\x00%s", i/(sha256.Size/2), text))
		}
		j := 2 * (i % (sha256.Size / 2))
		x := float64(int16(binary.BigEndian.Uint16(block[j:]))) / math.MaxInt16
		v[i] = x
		norm += x * x
	}
	if norm == 0 {
		v[0], norm = 1, 1
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] /= norm
	}
	return v
}

// encodeBase64 renders v as OpenAI's "base64" encoding format does:
// little-endian float32s, base64 (standard, padded).
func encodeBase64(v []float64) string {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models serves GET /v1/models.
func (s *Server) models(w http.ResponseWriter, _ *http.Request, _ vendor) {
	data := make([]model, len(s.opts.Models))
	for i, id := range s.opts.Models {
		data[i] = model{ID: id, Object: "model", Created: modelCreated, OwnedBy: "tessera"}
	}
	s.reply(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// organizations serves GET /v1/organizations, a page at a time.
func (s *Server) organizations(w http.ResponseWriter, r *http.Request, v vendor) {
	orgs := s.opts.Organizations
	start, ok := parsePageToken(r.URL.Query().Get("pageToken"), len(orgs))
	if !ok {
		s.fail(w, v, badRequest("pageToken", "invalid page token"))
		return
	}
	end := min(start+s.opts.PageSize, len(orgs))
	next := ""
	if end < len(orgs) {
		next = pageToken(end)
	}
	s.reply(w, http.StatusOK, map[string]any{
		"organizations": append([]Organization{}, orgs[start:end]...),
		"nextPageToken": next,
	})
}

// pageToken is the opaque token of the page starting at offset.
func pageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("standin-offset:" + strconv.Itoa(offset)))
}

// parsePageToken returns the offset tok names ("" is the first page), and
// whether tok is one [pageToken] makes for a list of n.
func parsePageToken(tok string, n int) (int, bool) {
	if tok == "" {
		return 0, true
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(raw), "standin-offset:")
	off, err := strconv.Atoi(rest)
	if !ok || err != nil || off <= 0 || off >= n {
		return 0, false
	}
	return off, true
}
