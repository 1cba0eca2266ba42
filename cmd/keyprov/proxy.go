package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/proxy"
	"github.com/keyprovider/keyprovider/retry"
	"github.com/keyprovider/keyprovider/rotate"
)

// proxyFlags are keyprov proxy's flags.
type proxyFlags struct {
	service, listen, upstream, tokenFile, socketMode, socketGroup string
	metricsListen                                                 string
	envFiles                                                      stringsFlag
	inherit, allowRemote, socketTrust, retry                      bool
	maxReplayBody                                                 int64
	refresh, shutdown                                             time.Duration
}

func parseProxyFlags(args []string, stderr io.Writer) (proxyFlags, int) {
	var f proxyFlags
	fs := newFlagSet("proxy", stderr)
	fs.StringVar(&f.service, "service", "", "the service whose key to inject: tessera or tesseral")
	fs.Var(&f.envFiles, "env-file", "an env file to resolve the key in (repeatable; later files win); default: keyprov's own environment")
	fs.BoolVar(&f.inherit, "inherit-env", false, "let variables the env files do not set fall back to keyprov's own environment")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8787", "where to listen: a loopback host:port, or unix:PATH")
	fs.BoolVar(&f.allowRemote, "allow-non-loopback", false, "allow --listen on an address that is not loopback (every client still needs the token)")
	fs.StringVar(&f.upstream, "upstream", "", "the upstream base URL; default: <SERVICE>_BASE_URL, else the service's own")
	fs.StringVar(&f.tokenFile, "token-file", "", "the local token clients must present: read if the file exists, else generated and written (mode 0600)")
	fs.StringVar(&f.socketMode, "socket-mode", "0600", "the permissions of a unix: socket (octal)")
	fs.StringVar(&f.socketGroup, "socket-group", "", "the group (name or id) of a unix: socket")
	fs.BoolVar(&f.socketTrust, "socket-trust", false, "on a unix: socket, let every client that can connect in without the token")
	fs.BoolVar(&f.retry, "retry", false, "retry throttled (429) idempotent requests with the library's retrier, instead of passing 429s through")
	fs.Int64Var(&f.maxReplayBody, "max-replay-body", proxy.DefaultMaxReplayBody, "request bodies up to this many bytes are kept to replay once after a 401; larger ones stream through")
	fs.DurationVar(&f.refresh, "refresh-interval", 0, "how often to refresh the key; 0: the library's default (5m)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve /metrics on this loopback host:port instead of on --listen (non-loopback with --allow-non-loopback)")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	return f, parseFlags(fs, args)
}

// runProxy is keyprov proxy: it serves until ctx is done (SIGINT,
// SIGTERM), then shuts down gracefully.
func runProxy(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) int {
	p, code := newProxyServer(ctx, args, env, stdout, stderr)
	if code >= 0 {
		return code
	}
	return p.serve(ctx)
}

// proxyServer is a started keyprov proxy: a listener, a key source and the
// handler between them.
type proxyServer struct {
	ln      net.Listener
	srv     *http.Server
	src     *rotate.Source
	handler *proxy.Handler
	log     *slog.Logger
	stderr  io.Writer
	timeout time.Duration
	// metrics is the MeterProvider of src and the /metrics handler;
	// metricsSrv serves it on --metrics-listen (nil: on the proxy's listener).
	metrics    *promMetrics
	metricsSrv *metricsServer
}

// newProxyServer does everything keyprov proxy does before serving:
// checks the flags, builds the source and listens. It returns the exit
// status to return at once, or -1.
func newProxyServer(ctx context.Context, args []string, env lookupFunc, stdout, stderr io.Writer) (*proxyServer, int) {
	f, code := parseProxyFlags(args, stderr)
	if code >= 0 {
		return nil, code
	}
	fail := func(code int, err error) (*proxyServer, int) {
		fmt.Fprintf(stderr, "keyprov proxy: %v\n", err)
		return nil, code
	}
	svc, err := parseService(f.service)
	if err != nil {
		return fail(exitUsage, err)
	}
	lis, err := parseListen(f.listen, f.allowRemote)
	if err != nil {
		return fail(exitUsage, err)
	}
	if f.tokenFile == "" && !(lis.unix && f.socketTrust) {
		return fail(exitUsage, errors.New("--token-file is required (the local token clients present), unless --listen unix:PATH with --socket-trust"))
	}
	if f.socketTrust && !lis.unix {
		return fail(exitUsage, errors.New("--socket-trust needs --listen unix:PATH"))
	}
	if f.metricsListen != "" {
		if err := parseMetricsListen(f.metricsListen, f.allowRemote); err != nil {
			return fail(exitUsage, err)
		}
	}
	mode, err := strconv.ParseUint(f.socketMode, 8, 32)
	if err != nil || mode&^0o777 != 0 {
		return fail(exitUsage, fmt.Errorf("--socket-mode %q: want octal permissions such as 0600 or 0660", f.socketMode))
	}
	lookup, err := proxyEnvironment(f.envFiles, env, f.inherit)
	if err != nil {
		return fail(exitFail, err)
	}
	up, err := serviceBaseURL(svc, "--upstream", f.upstream, lookup)
	if err != nil {
		return fail(exitUsage, err)
	}
	var token string
	if f.tokenFile != "" && !f.socketTrust {
		if token, err = loadToken(f.tokenFile, svc); err != nil {
			return fail(exitFail, err)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if fi, err := os.Stat(f.tokenFile); token != "" && err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("keyprov proxy: the token file can be read by others than its owner", "path", f.tokenFile, "mode", fi.Mode().Perm().String())
	}
	m, err := newPromMetrics()
	if err != nil {
		return fail(exitFail, err)
	}
	src, err := proxySource(ctx, svc, lookup, f.refresh, log, token, m)
	if err != nil {
		m.shutdown()
		return fail(exitFail, err)
	}
	p := &proxyServer{src: src, log: log, stderr: stderr, timeout: f.shutdown, metrics: m}
	if err := p.listen(lis, os.FileMode(mode), f.socketGroup, f.metricsListen); err != nil {
		return fail(exitFail, err)
	}
	p.handler = proxy.New(proxy.Options{
		Upstream: up, Transport: upstreamTransport(src, up, f.retry, log), Token: token,
		Hosts: lis.hosts(p.ln.Addr()), MaxReplayBody: f.maxReplayBody, Logger: log,
		Ready: func() (string, error) { h := src.Health(); return h.State.String(), h.Ready() },
	})
	p.srv = p.httpServer()
	log.Info("keyprov proxy listening", "service", svc.Name, "listen", lis.String(p.ln.Addr()),
		"upstream", up.Redacted(), "token_required", token != "", "retry", f.retry)
	return p, -1
}

// listen opens the proxy's listener and, with metricsAddr, the metrics
// listener. On failure it closes what it opened, the source included.
func (p *proxyServer) listen(lis listenSpec, mode os.FileMode, group, metricsAddr string) error {
	ln, err := lis.open(mode, group)
	if err != nil {
		_ = p.src.Close()
		p.metrics.shutdown()
		return err
	}
	p.ln = ln
	if metricsAddr == "" {
		return nil
	}
	if p.metricsSrv, err = serveMetrics(metricsAddr, p.metrics, p.log); err != nil {
		_ = ln.Close()
		_ = p.src.Close()
		p.metrics.shutdown()
		return err
	}
	return nil
}

// httpServer serves the handler, and /metrics unless --metrics-listen
// serves it elsewhere.
func (p *proxyServer) httpServer() *http.Server {
	var h http.Handler = p.handler
	if p.metricsSrv == nil {
		h = withMetrics(p.metrics, h)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
}

// serve serves until ctx is done, then stops accepting, lets requests in
// flight finish for up to the shutdown timeout, and closes the source.
func (p *proxyServer) serve(ctx context.Context) int {
	errc := make(chan error, 1)
	go func() { errc <- p.srv.Serve(p.ln) }()
	code := exitOK
	select {
	case err := <-errc:
		p.log.Error("keyprov proxy: serving failed", "error", err)
		code = exitFail
	case <-ctx.Done():
		p.log.Info("keyprov proxy shutting down", "timeout", p.timeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
		if err := p.srv.Shutdown(sctx); err != nil {
			p.log.Warn("keyprov proxy: requests still in flight at the shutdown timeout were cut", "error", err)
			_ = p.srv.Close()
		}
		cancel()
		<-errc
	}
	p.metricsSrv.stop()
	if err := p.src.Close(); err != nil {
		p.log.Warn("keyprov proxy: closing the key source", "error", err)
	}
	p.metrics.shutdown()
	return code
}

// proxyEnvironment merges the env files (later files win) into the one
// environment the key and the upstream are read from; keyprov's own when
// there is none.
func proxyEnvironment(files []string, process lookupFunc, inherit bool) (lookupFunc, error) {
	if len(files) == 0 {
		return process, nil // nil: the process environment, as a service sees it
	}
	vars := map[string]string{}
	for _, path := range files {
		f, err := readEnvFile(path)
		if err != nil {
			return nil, err
		}
		for k, v := range f.vars {
			vars[k] = v
		}
	}
	if process == nil {
		process = os.LookupEnv
	}
	return fileLookup(vars, process, inherit), nil
}

// proxySource is the rotate.Source the proxy takes its keys from, with a
// first fetch done (a proxy that cannot get a key at start-up says so at
// once; a later outage is served from the last good key until MaxStale).
func proxySource(ctx context.Context, svc keyprovider.Service, lookup lookupFunc, refresh time.Duration, log *slog.Logger, token string, m *promMetrics) (*rotate.Source, error) {
	p, err := fromEnv(ctx, svc, keyprovider.WithLookupEnv(lookup))
	if err != nil {
		return nil, err
	}
	src, err := rotate.New(p, rotate.WithService(svc), rotate.WithRefreshInterval(refresh), rotate.WithLogger(log),
		rotate.WithMeterProvider(m.mp))
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	k, err := src.Refresh(rctx)
	if err != nil {
		_ = src.Close()
		return nil, fmt.Errorf("first key: %w", err)
	}
	if token != "" && k.Reveal() == token {
		_ = src.Close()
		return nil, errors.New("the local token is the service's real key: use a token of its own")
	}
	log.Info("keyprov proxy key", "key", k, "version", k.Version(), "source", describeSource(p.Source()))
	return src, nil
}

// upstreamTransport is what the handler forwards with: a
// keyprovider.Transport that sends the key to up's host only (redirects
// elsewhere go without it), over a connection pool sized for a busy local
// client, optionally under the library's 429 retrier. It never decompresses
// (the client's Accept-Encoding and the upstream's encoding pass through).
func upstreamTransport(src *rotate.Source, up *url.URL, withRetry bool, log *slog.Logger) http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = 512
	base.MaxIdleConnsPerHost = 256
	base.DisableCompression = true
	var rt http.RoundTripper = keyprovider.NewTransport(src,
		keyprovider.WithBase(&proxy.Recorder{Next: base}),
		keyprovider.WithAllowedHosts(up.Host),
		keyprovider.WithLogger(log))
	if withRetry {
		rt = retry.New(rt, retry.WithLogger(log))
	}
	return rt
}
