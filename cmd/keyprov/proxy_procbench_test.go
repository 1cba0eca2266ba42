package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchRoleVar names the role a re-executed test binary plays in
// TestProxyThroughputProcesses.
const benchRoleVar = "KEYPROV_BENCH_ROLE"

// init makes this test binary, re-executed with benchRoleVar set, play that
// role instead of running tests.
func init() {
	if role := os.Getenv(benchRoleVar); role != "" {
		os.Exit(benchRole(role))
	}
}

// TestProxyThroughputProcesses measures what TestProxyThroughputAlternating
// measures, with the load generator, the upstream, the bare
// httputil.ReverseProxy and the real keyprov binary each in a process of
// its own, as they run in production. It measures two placements:
//
//   - shared: no pinning, every process on the machine's cores;
//   - sidecar (Linux with taskset and 2 cores or more): the application
//     (the load generator) and the upstream share CPU 0, and the proxy in
//     the middle (keyprov or the ReverseProxy) has CPU 1, as a sidecar
//     with a CPU of its own would. Calling the upstream directly then runs
//     on CPU 0 alone: the application's own budget.
//
// Each placement runs five rounds of direct, reverseproxy and keyprov in
// turns (64 clients, 1 s each) and reports the median of the rounds'
// ratios, the median latencies, and the CPU time each process spent per
// request (from /proc), which is what bounds throughput when the processes
// share cores; then the median latency keyprov adds with one client. Run
// with KEYPROVIDER_PROXY_BENCH=1.
func TestProxyThroughputProcesses(t *testing.T) {
	if os.Getenv("KEYPROVIDER_PROXY_BENCH") != "1" {
		t.Skip("a measurement, not a test: set KEYPROVIDER_PROXY_BENCH=1")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads CPU time from /proc")
	}
	if raceEnabled {
		t.Skip("the load generator, upstream and ReverseProxy are this test binary: run without -race")
	}
	bin := keyprovBin(t)
	placements := []struct {
		name       string
		app, proxy string // CPU lists for taskset; "" is unpinned
	}{{"shared", "", ""}}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		placements = append(placements, struct{ name, app, proxy string }{"sidecar", "0", "1"})
	} else {
		t.Log("no taskset or fewer than 2 CPUs: the sidecar placement is not measured")
	}
	for _, pl := range placements {
		t.Run(pl.name, func(t *testing.T) {
			key := newTesseraKey()
			up := startRole(t, pl.app, "upstream", nil)
			rp := startRole(t, pl.proxy, "reverseproxy", map[string]string{"BENCH_UPSTREAM": "http://" + up.addr, "BENCH_KEY": key})
			kp := startKeyprovProxy(t, bin, pl.proxy, key, "http://"+up.addr+"/v1")
			targets := []struct {
				name, url, auth string
				middle          *benchProc
			}{
				{"direct", "http://" + up.addr + "/v1/models", "Bearer " + key, nil},
				{"reverseproxy", "http://" + rp.addr + "/v1/models", "", rp},
				{"keyprov", "http://" + kp.addr + "/v1/models", "Bearer " + kp.token, kp},
			}
			var vsDirect, vsRP []float64
			var p50 [3][]time.Duration
			var cpuUp, cpuMid, cpuLoad [3][]float64
			for round := range 5 {
				var rps [3]float64
				for i, tg := range targets {
					upBefore := up.cpu(t)
					var midBefore time.Duration
					if tg.middle != nil {
						midBefore = tg.middle.cpu(t)
					}
					res := runLoad(t, pl.app, tg.url, tg.auth, 64, time.Second)
					n := res.RPS * res.Seconds
					rps[i] = res.RPS
					p50[i] = append(p50[i], res.P50)
					cpuUp[i] = append(cpuUp[i], float64((up.cpu(t)-upBefore).Microseconds())/n)
					cpuLoad[i] = append(cpuLoad[i], float64(res.CPU.Microseconds())/n)
					if tg.middle != nil {
						cpuMid[i] = append(cpuMid[i], float64((tg.middle.cpu(t)-midBefore).Microseconds())/n)
					}
				}
				t.Logf("round %d: direct %.0f req/s, reverseproxy %.0f, keyprov %.0f", round, rps[0], rps[1], rps[2])
				vsDirect, vsRP = append(vsDirect, rps[2]/rps[0]), append(vsRP, rps[2]/rps[1])
			}
			for i, tg := range targets {
				mid := ""
				if tg.middle != nil {
					mid = fmt.Sprintf(", %s %.1f", tg.name, median(cpuMid[i]))
				}
				t.Logf("%s: p50 %s; CPU µs per request: client %.1f, upstream %.1f%s",
					tg.name, median(p50[i]), median(cpuLoad[i]), median(cpuUp[i]), mid)
			}
			t.Logf("%s: keyprov throughput, median of 5 rounds: %.0f%% of httputil.ReverseProxy, %.0f%% of direct (rounds: %s)",
				pl.name, 100*median(vsRP), 100*median(vsDirect), percents(vsDirect))

			// Latency with one client: what each hop adds to a request.
			var addedRP, addedKP []time.Duration
			for range 5 {
				direct := runLoad(t, pl.app, targets[0].url, targets[0].auth, 1, time.Second)
				reverse := runLoad(t, pl.app, targets[1].url, targets[1].auth, 1, time.Second)
				proxied := runLoad(t, pl.app, targets[2].url, targets[2].auth, 1, time.Second)
				addedRP, addedKP = append(addedRP, reverse.P50-direct.P50), append(addedKP, proxied.P50-direct.P50)
			}
			t.Logf("%s: one client: added to the median latency (median of 5 rounds): httputil.ReverseProxy %s, keyprov %s (rounds: %v)",
				pl.name, median(addedRP), median(addedKP), addedKP)
		})
	}
}

// median returns the median of xs (the upper one of an even count).
func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percents(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f%%", 100*x))
	}
	return strings.Join(parts, " ")
}

// benchProc is a process started by the measurement: its pid and the
// address it listens on.
type benchProc struct {
	pid   int
	addr  string
	token string // keyprov's local token
}

// cpu is the user and system CPU time the process has used so far.
func (p *benchProc) cpu(t *testing.T) time.Duration {
	t.Helper()
	d, err := procCPU(p.pid)
	require.NoError(t, err)
	return d
}

// procCPU reads the user and system CPU time process pid has used so far
// from /proc (Linux).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, fields[11], fields[12])
	}
	const ticks = 100 // USER_HZ, 100 on every Linux that matters
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// pinned returns the command line that runs argv on cpus ("" runs it
// unpinned).
func pinned(cpus string, argv ...string) []string {
	if cpus == "" {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

// startRole starts this test binary as one role of the measurement and
// waits for the address it prints. The process is killed and reaped at the
// end of the test.
func startRole(t *testing.T, cpus, role string, env map[string]string) *benchProc {
	t.Helper()
	argv := pinned(cpus, testBinary(t), "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), benchRoleVar+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	return startPrintingAddr(t, cmd, role)
}

// startPrintingAddr starts cmd, a server that prints its address on its
// first line of output, and returns it with that address. The process is
// killed and reaped at the end of the test, or at once if it prints
// nothing within 30 s.
func startPrintingAddr(t *testing.T, cmd *exec.Cmd, name string) *benchProc {
	t.Helper()
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stop := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	stop.Stop()
	require.NoError(t, err, "%s printed no address", name)
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return &benchProc{pid: cmd.Process.Pid, addr: strings.TrimSpace(line)}
}

// testBinary is the path of this test binary, to re-execute as a role.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// startKeyprovProxy starts the keyprov binary as a proxy to upstream with
// key in a file.
func startKeyprovProxy(t *testing.T, bin, cpus, key, upstream string) *benchProc {
	t.Helper()
	dir := t.TempDir()
	env, _ := fileKeyEnv(t, key, upstream)
	tokFile := filepath.Join(dir, "tok")
	argv := pinned(cpus, bin, "proxy", "--service", "tessera", "--listen", "127.0.0.1:0", "--token-file", tokFile)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	addr := proxyAddr(t, stderr)
	go func() { _, _ = io.Copy(io.Discard, stderr) }() // the access log
	tok, err := os.ReadFile(tokFile)
	require.NoError(t, err)
	return &benchProc{pid: cmd.Process.Pid, addr: addr, token: strings.TrimSpace(string(tok))}
}

// loadResult is what a load process reports.
type loadResult struct {
	RPS     float64       `json:"rps"`
	Seconds float64       `json:"seconds"`
	P50     time.Duration `json:"p50"`
	CPU     time.Duration `json:"cpu"` // the load process's own CPU time
}

// runLoad runs a load process against url for d and returns its report.
func runLoad(t *testing.T, cpus, url, auth string, conc int, d time.Duration) loadResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	argv := pinned(cpus, testBinary(t), "-test.run=^$")
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), benchRoleVar+"=load", "BENCH_URL="+url, "BENCH_AUTH="+auth,
		"BENCH_CONC="+strconv.Itoa(conc), "BENCH_DURATION="+d.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err, "load against %s", url)
	var res loadResult
	require.NoError(t, json.Unmarshal(out, &res), "load report %q", out)
	return res
}

// benchRole plays one role of TestProxyThroughputProcesses in a process of
// its own and returns the exit status:
//
//   - upstream: serves benchUpstream on a loopback port and prints the
//     address.
//   - reverseproxy: serves benchReverseProxy to BENCH_UPSTREAM with the
//     key BENCH_KEY and prints the address.
//   - load: sends GET BENCH_URL with Authorization BENCH_AUTH from
//     BENCH_CONC clients for BENCH_DURATION, and prints a loadResult.
func benchRole(role string) int {
	fail := func(err error) int { fmt.Fprintf(os.Stderr, "%s: %v\n", role, err); return 1 }
	serve := func(h http.Handler) int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		fmt.Println(ln.Addr())
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		return fail(srv.Serve(ln)) // until killed
	}
	switch role {
	case "upstream":
		return serve(benchUpstream())
	case "reverseproxy":
		u, err := url.Parse(os.Getenv("BENCH_UPSTREAM"))
		if err != nil {
			return fail(err)
		}
		return serve(benchReverseProxy(u, os.Getenv("BENCH_KEY")))
	case "load":
		conc, err := strconv.Atoi(os.Getenv("BENCH_CONC"))
		if err != nil {
			return fail(err)
		}
		d, err := time.ParseDuration(os.Getenv("BENCH_DURATION"))
		if err != nil {
			return fail(err)
		}
		before, _ := procCPU(os.Getpid())
		rps, p50, err := measure(os.Getenv("BENCH_URL"), os.Getenv("BENCH_AUTH"), conc, d)
		if err != nil {
			return fail(err)
		}
		after, _ := procCPU(os.Getpid())
		cpu := after - before
		_ = json.NewEncoder(os.Stdout).Encode(loadResult{RPS: rps, Seconds: d.Seconds(), P50: p50, CPU: cpu})
		return 0
	}
	return fail(fmt.Errorf("unknown role"))
}
