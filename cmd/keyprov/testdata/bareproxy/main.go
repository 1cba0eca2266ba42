// Command bareproxy is the floor keyprov proxy's memory is measured
// against (TestProxyRSSAt1000IdleConnections): Go's bare
// httputil.ReverseProxy to BAREPROXY_UPSTREAM, adding a static
// "Authorization: Bearer BAREPROXY_KEY", on a loopback port it prints. It
// links nothing but the standard library (the TLS client included), and is
// built without the race detector whatever the test binary is.
package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

func main() {
	u, err := url.Parse(os.Getenv("BAREPROXY_UPSTREAM"))
	if err != nil || u.Host == "" {
		fmt.Fprintln(os.Stderr, "bareproxy: BAREPROXY_UPSTREAM: not a URL")
		os.Exit(2)
	}
	key := os.Getenv("BAREPROXY_KEY")
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = u.Host
		r.Out.Header.Set("Authorization", "Bearer "+key)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, "bareproxy:", srv.Serve(ln))
	os.Exit(1)
}
