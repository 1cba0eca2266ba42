// Package standin is a local stand-in for the two APIs keyprovider's keys
// are for: Tessera's OpenAI-compatible embeddings API and the Tesseral
// Backend API. Tests, runnable examples and demos talk to it instead of the
// real services, so that they need no account, no real key and no network:
// it listens on a loopback port only, over plain HTTP.
//
// In a test, [New] starts one and closes it when the test ends:
//
//	key := standin.NewKey(keyprovider.Tessera)
//	api := standin.New(t, standin.WithKeys(key))
//	svc := api.Service(keyprovider.Tessera) // BaseURL on the stand-in
//
// Outside a test (an Example, a demo program), [Start] starts one and the
// caller closes it with [Server.Close].
//
// # Routes
//
// Under [Server.BaseURL] ("http://127.0.0.1:<port>/v1"):
//
//   - POST /v1/embeddings ([RouteEmbeddings]): Tessera's embeddings call, in
//     OpenAI's shapes. The body is {"model": ..., "input": "text" |
//     ["text", ...]} with optional "dimensions" and "encoding_format"
//     ("float" or "base64"); the answer is an OpenAI "list" with one
//     deterministic unit-length embedding per input in data[].embedding,
//     and usage counts. A model not in [Options.Models] is a 404
//     "model_not_found".
//   - GET /v1/models ([RouteModels]): the models, as an OpenAI "list".
//   - GET /v1/organizations ([RouteOrganizations]): Tesseral's organization
//     listing, {"organizations": [...], "nextPageToken": "..."}, in pages
//     of [Options.PageSize]; pass nextPageToken back as the pageToken query
//     parameter for the next page. An empty nextPageToken means the last
//     page.
//
// # Keys and refusals
//
// Every request must carry exactly "Authorization: Bearer <key>" with a key
// the stand-in holds ([WithKeys], [Server.AddKey], [Server.Rotate]); a key
// it holds is good on every route, whichever vendor's prefix it has. It
// answers as the vendors' tables say, in each API's own JSON error shape
// (OpenAI's {"error": {"message", "type", "param", "code"}} on the Tessera
// routes, Tesseral's {"code", "message"} on the Tesseral route):
//
//   - 401 (codes "invalid_api_key" / "unauthenticated", with a
//     WWW-Authenticate: Bearer header): the header is missing or malformed,
//     or the key is unknown, revoked ([Server.Revoke]) or past its grace
//     after a rotation ([Server.Rotate], [Server.RevokeAfter]);
//   - 403 ("permission_denied"): the key is valid but denied this route
//     ([Server.Deny]);
//   - 429 ("rate_limit_exceeded" / "resource_exhausted", with Retry-After
//     in whole seconds): the key is valid but the stand-in is throttling
//     ([Server.Throttle]).
//
// The checks run in that order: a request that would be 401 is never 403,
// and only a request that would be served uses up a throttled answer.
// Grace periods are measured with [Options.Clock], so a test decides when
// they end without sleeping.
//
// # Counting, without keeping keys
//
// [Server.Stats] counts requests per route, per HTTP status and per key
// [Fingerprint] (the same fingerprint as [keyprovider.Key.Fingerprint]).
// The stand-in never holds a key it is given: it keeps the SHA-256 of each
// key and its fingerprint, so nothing it stores, prints or answers (and no
// failure message built from its Stats) can show a key.
package standin
