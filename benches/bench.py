#!/usr/bin/env python3
"""tls_exporter benchmark driver, run by scripts/bench (which installs packages, mints the PKI and
builds the binaries first). Python stdlib only.

Starts nginx on loopback (TLS 1.3, ECDSA P-256, no session tickets or cache: every probe is a full
handshake; a few ports, any SNI name under bench.test), then for each run:

  exporter, fixed rate   1,000 targets, interval 2s (500 probes/s): CPU-s per 1,000 probes, RSS
  exporter, saturated    2,000 targets, interval 1s, timeout 900ms: completed and skipped probes/s
  exporter, 10,000       10,000 targets, interval 20s (500 probes/s): RSS once every target was
                         probed, CPU-s per 1,000, /metrics time p50/p99 over 20 scrapes and size;
                         then 20 scrapes with Accept-Encoding: gzip (as Prometheus sends): CPU
                         per scrape, compressed size and ratio
  blackbox, fixed rate   1,000 modules, one /probe per probe at 500/s: CPU-s per 1,000, RSS
  blackbox, saturated    2,000 modules, closed loop with the same concurrency
  blackbox, 10,000       10,000 modules, each probed once at 500/s: RSS, CPU-s per 1,000
  rustls floor           benches/handshake_loop.rs at 500/s: CPU-s per 1,000 handshakes
  CPU per probe cases    per case (TLS 1.3 ECDSA P-256 on the nginx above; TLS 1.2 RSA-2048
                         ECDHE-RSA-AES128-GCM-SHA256 on an nginx of its own), back to back:
                         the exporter at 500 probes/s with chain reuse and with
                         --debug.no-chain-cache, blackbox at 500/s, the rustls floor at 500/s;
                         same-run ratios. `--only cpu` runs just these.
  memory (`--only`)      10,000 targets, the default config (scans on, scan_interval 40s so every
                         target holds a scan): RSS once probed and scanned, peak RSS over 25 gzip
                         scrapes back to back
  scale (`--only`)       50,000 targets every 60 s: see run_scale

CPU is utime+stime from /proc/<pid>/stat, memory VmRSS/VmHWM from /proc/<pid>/status, read from
outside the measured process. Every process this script starts is killed when it exits.
"""

import argparse
import gzip
import datetime
import http.client
import json
import os
import platform
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

# ---------------------------------------------------------------------------------------------
# /proc readings


def proc_cpu(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem_mb(pid):
    """(VmRSS, VmHWM) in MB (10^6 bytes)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024 / 1e6
    return out.get("VmRSS", 0.0), out.get("VmHWM", 0.0)


def tree_pids(root):
    """root and its direct children (nginx master + workers)."""
    pids = [root]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            if int(s[s.rindex(")") + 2 :].split()[1]) == root:
                pids.append(int(d))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def tree_cpu(pids):
    total = 0.0
    for p in pids:
        try:
            total += proc_cpu(p)
        except OSError:
            pass
    return total


def machine_cpu():
    """(busy, total) seconds summed over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def self_cpu():
    t = os.times()
    return t.user + t.system


class Window:
    """CPU of the measured process, nginx, this driver and the whole machine over a time span."""

    def __init__(self, pid, nginx_pids):
        self.pid, self.nginx_pids = pid, nginx_pids
        self.t = time.monotonic()
        self.cpu = proc_cpu(pid)
        self.ngx = tree_cpu(nginx_pids)
        self.drv = self_cpu()
        self.busy, self.total = machine_cpu()

    def close(self):
        t = time.monotonic()
        cpu, ngx, drv = proc_cpu(self.pid), tree_cpu(self.nginx_pids), self_cpu()
        busy, total = machine_cpu()
        secs = t - self.t
        d = {
            "seconds": secs,
            "cpu": cpu - self.cpu,
            "nginx_cpu": ngx - self.ngx,
            "driver_cpu": drv - self.drv,
        }
        # CPU used by everything else on the (shared) machine, in cores: noise indicator.
        d["other_cores"] = max(
            0.0, ((busy - self.busy) - d["cpu"] - d["nginx_cpu"] - d["driver_cpu"]) / secs
        )
        d["machine_busy"] = (busy - self.busy) / max(1e-9, total - self.total)
        return d


# ---------------------------------------------------------------------------------------------
# processes


class Procs:
    """Every process we start; all of them are killed on exit, signal or error."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, log, cpus=None):
        if cpus:
            cmd = ["taskset", "-c", cpus] + cmd
        f = open(log, "ab")
        p = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p, grace=5.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            try:
                self.stop(p, grace=3.0)
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


PROCS = Procs()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(step)
    raise SystemExit(f"bench: timed out after {timeout:.0f}s waiting for {what}")


def http_get(port, path, timeout=30, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------------------------------------
# nginx


def start_nginx(a, work, ports):
    conf = os.path.join(work, "nginx.conf")
    tmp = os.path.join(work, "nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    servers = "\n".join(
        f"""    server {{
        listen 127.0.0.1:{p} ssl default_server;
        server_name bench.test *.bench.test;
        return 200 "ok\\n";
    }}"""
        for p in ports
    )
    with open(conf, "w") as f:
        f.write(
            f"""# generated by scripts/bench
worker_processes {a.nginx_workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_protocols TLSv1.3;
    ssl_certificate {work}/pki/leaf.pem;
    ssl_certificate_key {work}/pki/leaf.key;
    ssl_session_tickets off;
    ssl_session_cache off;
{servers}
}}
"""
        )
    p = PROCS.start(
        [a.nginx, "-p", work + "/", "-e", f"{work}/nginx-error.log", "-c", conf, "-g", "daemon off;"],
        os.path.join(work, "nginx.out"),
        cpus=a.pin_nginx,
    )

    def listening():
        for port in ports:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_until(listening, 15, "nginx to listen")
    if p.poll() is not None:
        raise SystemExit(f"bench: nginx exited; see {work}/nginx-error.log")
    wait_until(lambda: len(tree_pids(p.pid)) > a.nginx_workers, 10, "nginx workers")
    return p


# ---------------------------------------------------------------------------------------------
# tls_exporter


def exporter_config(path, ca, ports, n, interval, timeout, concurrency, label=None, scan=False, scan_interval=None):
    """Writes the config to `path` at once (a temporary file renamed over it), as a deployment
    does: a file written in place could be read half-written."""
    with open(path + ".tmp", "w") as f:
        f.write(
            f"global:\n  interval: {interval}\n  timeout: {timeout}\n"
            + (f"  concurrency: {concurrency}\n" if concurrency else "")
            + f"  ca_file: {ca}\n"
            + ("" if scan else "  scan: false\n")
            + (f"  scan_interval: {scan_interval}\n" if scan and scan_interval else "")
            + ("targets:\n" if n else "targets: []\n")
        )
        for i in range(1, n + 1):
            f.write(
                f"  - name: t{i:05d}\n    address: 127.0.0.1:{ports[i % len(ports)]}\n"
                f"    server_name: t{i:05d}.bench.test\n"
                + (f"    labels: {{{label}}}\n" if label else "")
            )
    os.replace(path + ".tmp", path)


def parse_exposition(text):
    probes = failures = skipped = 0.0
    probed = success = 0
    for line in text.splitlines():
        if line.startswith("tls_probes_total{"):
            probes += float(line.rsplit(" ", 1)[1])
        elif line.startswith("tls_probe_failures_total{"):
            failures += float(line.rsplit(" ", 1)[1])
        elif line.startswith("tls_probe_success{"):
            probed += 1
            success += line.endswith(" 1")
        elif line.startswith("tls_exporter_probes_skipped_total "):
            skipped = float(line.split()[1])
    return {"probes": probes, "failures": failures, "skipped": skipped, "probed": probed, "success": success}


class Exporter:
    def __init__(self, a, work, tag, n, interval, timeout, concurrency, scan=False, scan_interval=None, flags=()):
        self.port = free_port()
        cfg = os.path.join(work, f"exporter-{tag}.yml")
        self.config = cfg
        exporter_config(cfg, a.ca, a.ports, n, interval, timeout, concurrency, scan=scan, scan_interval=scan_interval)
        self.proc = PROCS.start(
            [a.exporter, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--web.enable-lifecycle"]
            + list(getattr(a, "exporter_flags", ())) + list(flags),
            os.path.join(work, f"exporter-{tag}.log"),
            cpus=a.pin_prober,
        )
        # taskset execs the exporter in place: same pid.
        self.pid = self.proc.pid
        wait_until(lambda: http_get(self.port, "/-/ready", 2)[0] == 200, 60, "the exporter to be ready")

    def scrape(self, gzip=False):
        headers = {"Accept-Encoding": "gzip"} if gzip else None
        status, body = http_get(self.port, "/metrics", headers=headers)
        if status != 200:
            raise SystemExit(f"bench: /metrics answered {status}")
        return body

    def reload(self):
        """POST /-/reload; returns how long the answer took (it comes once the reload is done)."""
        t = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            c.request("POST", "/-/reload")
            r = c.getresponse()
            body = r.read()
        finally:
            c.close()
        if r.status != 200:
            raise SystemExit(f"bench: /-/reload answered {r.status}: {body.decode(errors='replace')}")
        return time.monotonic() - t

    def stats(self):
        return parse_exposition(self.scrape().decode())

    def wait_all_probed(self, n, timeout):
        wait_until(lambda: self.stats()["probed"] >= n, timeout, f"all {n} targets to be probed once", step=1.0)

    def stop(self):
        PROCS.stop(self.proc)


def measure_exporter_window(ex, nginx_pids, seconds):
    """Probes completed and CPU used over `seconds`, with no scrape inside the CPU window."""
    s0 = ex.stats()
    w = Window(ex.pid, nginx_pids)
    time.sleep(seconds)
    d = w.close()
    s1 = ex.stats()
    probes = s1["probes"] - s0["probes"]
    d.update(
        probes=probes,
        rate=probes / d["seconds"],
        failures=s1["failures"] - s0["failures"],
        skipped_rate=(s1["skipped"] - s0["skipped"]) / d["seconds"],
        cpu_per_1000=d["cpu"] / probes * 1000 if probes else float("nan"),
        cores=d["cpu"] / d["seconds"],
        success_ratio=s1["success"] / max(1, s1["probed"]),
    )
    return d


def check_healthy(d, what):
    if d["probes"] == 0 or d["failures"] > 0.01 * d["probes"]:
        raise SystemExit(
            f"bench: {what}: {d['failures']:.0f} of {d['probes']:.0f} probes failed; "
            "the setup is broken (see the exporter log in the work dir, run with --keep)"
        )


def run_exporter(a, work, nginx_pids, r):
    res = {}
    # 1. fixed offered rate: 1,000 targets every 2s = 500 probes/s.
    # Every target's first probe starts within its first interval (stable offsets): wait that
    # long without scraping, so the memory figure is the state's, not a scrape buffer's.
    ex = Exporter(a, work, f"fixed-{r}", 1000, "2s", "1s", a.concurrency)
    time.sleep(2 + 2)
    res["rss_1k_noscrape"], res["hwm_1k_noscrape"] = proc_mem_mb(ex.pid)
    ex.wait_all_probed(1000, 30)
    d = measure_exporter_window(ex, nginx_pids, a.window)
    check_healthy(d, "exporter fixed rate")
    res["fixed"] = d
    res["rss_1k"], res["hwm_1k"] = proc_mem_mb(ex.pid)
    ex.stop()

    # 2. saturated: 2,000 targets every 1s with a 900ms timeout.
    ex = Exporter(a, work, f"sat-{r}", 2000, "1s", "900ms", a.concurrency)
    time.sleep(a.sat_warmup)
    d = measure_exporter_window(ex, nginx_pids, a.sat_window)
    d["per_core_second"] = d["rate"] / d["cores"] if d["cores"] else float("nan")
    res["sat"] = d
    ex.stop()

    # 3. 10,000 targets every 20s = 500 probes/s: memory, CPU, /metrics.
    ex = Exporter(a, work, f"10k-{r}", 10000, "20s", "5s", a.concurrency)
    time.sleep(20 + 3)
    res["rss_10k_noscrape"], res["hwm_10k_noscrape"] = proc_mem_mb(ex.pid)
    ex.wait_all_probed(10000, 60)
    d = measure_exporter_window(ex, nginx_pids, a.window_10k)
    check_healthy(d, "exporter 10,000 targets")
    res["fixed_10k"] = d
    res["rss_10k"], res["hwm_10k"] = proc_mem_mb(ex.pid)
    times, size = [], 0
    w = Window(ex.pid, nginx_pids)
    for _ in range(a.scrapes):
        t = time.perf_counter()
        body = ex.scrape()
        times.append(time.perf_counter() - t)
        size = len(body)
    wd = w.close()
    res["scrape_cpu_ms"] = wd["cpu"] / a.scrapes * 1000  # includes the probes running meanwhile
    # Net of probing: the probes' CPU rate in the no-scrape window just before, times the time
    # the scrapes took, subtracted. On a loaded machine a scrape takes longer and the gross
    # figure grows with it; the net one does not.
    probing = d["cores"]
    res["scrape_net_cpu_ms"] = max(0.0, wd["cpu"] - probing * wd["seconds"]) / a.scrapes * 1000
    res["scrape_p50_ms"] = percentile(times, 50) * 1000
    res["scrape_p99_ms"] = percentile(times, 99) * 1000
    res["scrape_bytes"] = size
    res["series_10k"] = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    # The same with gzip, as Prometheus scrapes: body still compressed (http.client leaves it).
    w = Window(ex.pid, nginx_pids)
    for _ in range(a.scrapes):
        gz = ex.scrape(gzip=True)
    wd = w.close()
    res["scrape_gzip_cpu_ms"] = wd["cpu"] / a.scrapes * 1000
    res["scrape_gzip_net_cpu_ms"] = max(0.0, wd["cpu"] - probing * wd["seconds"]) / a.scrapes * 1000
    res["scrape_gzip_bytes"] = len(gz)
    res["rss_10k_after_scrapes"], res["hwm_10k_after_scrapes"] = proc_mem_mb(ex.pid)
    ex.stop()
    return res


# ---------------------------------------------------------------------------------------------
# scale: 50,000 targets on one process


def gauge(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def run_scale(a, work, nginx_pids, r):
    """50,000 targets every 60 s (833 probes/s offered) for `a.scale_minutes`: start-up and
    whole-set reload time, how long every target takes to be probed again after a reload that
    changed them all, scheduler lag (p99 of 10 s samples of the exporter's own one-minute
    maximum, once the last reload's round and its minute are over), skipped ticks, peak RSS
    (start-up, reloads and the window apart), /metrics with gzip."""
    n = a.scale_targets
    res = {"targets": n, "minutes": a.scale_minutes}
    t0 = time.monotonic()
    # The default config: legacy scans on (first scans spread over the first 10 minutes). The
    # file watcher is off: each reload below is the POST's, timed, not one the watcher started
    # on seeing the new file first (the POST would then time a reload that found no change).
    ex = Exporter(a, work, f"scale-{r}", n, "60s", "5s", a.concurrency, scan=True,
                  flags=["--config.watch-interval=0s"])
    res["startup_s"] = time.monotonic() - t0  # process start to /-/ready (config loaded, loops started)
    # Every target's first probe lands within its first interval (warm-up spreads them).
    ex.wait_all_probed(n, 150)
    # Peak so far: start-up, the first round and the driver's scrapes (plain text) meanwhile.
    res["rss_idle"], res["hwm_start"] = proc_mem_mb(ex.pid)
    # Reloads of the whole set, timed by the answer of POST /-/reload (which returns when the
    # new config is applied): the same file (every target unchanged), then a file in which
    # every target changed (a label added: every loop restarts), then the first file again.
    res["reload_s"] = ex.reload()
    exporter_config(ex.config, a.ca, a.ports, n, "60s", "5s", a.concurrency, label="gen: '2'", scan=True)
    res["reload_changed_s"] = ex.reload()
    # Every changed target restarts and probes again within the warm-up (at most 10 s): at
    # 50,000 that offers more than the machine can probe, so the round takes longer and its
    # probes start late. Timed from the reload's answer to the last target's new result, with
    # the lag gauge read then (its one-minute maximum covers the round).
    t = time.monotonic()
    ex.wait_all_probed(n, 150)
    res["catch_up_s"] = time.monotonic() - t
    res["catch_up_lag_s"] = gauge(ex.scrape().decode(), "tls_exporter_scheduler_lag_seconds")
    exporter_config(ex.config, a.ca, a.ports, n, "60s", "5s", a.concurrency, scan=True)
    ex.reload()
    ex.wait_all_probed(n, 150)
    # The window measures the steady schedule: the lag gauge is a one-minute maximum, so let
    # the minute of the last round pass before sampling it.
    time.sleep(a.scale_settle)
    # The peak of the reloads, then the peak of the window alone (steady probing and a gzip
    # scrape every 10 s): writing 5 to clear_refs resets VmHWM to the current RSS.
    _, res["hwm_reloads"] = proc_mem_mb(ex.pid)
    with open(f"/proc/{ex.pid}/clear_refs", "w") as f:
        f.write("5")
    lags, times = [], []
    skipped0 = gauge(ex.scrape().decode(), "tls_exporter_probes_skipped_total")
    end = time.monotonic() + a.scale_minutes * 60
    w = Window(ex.pid, nginx_pids)
    while time.monotonic() < end:
        t = time.perf_counter()
        gz = ex.scrape(gzip=True)
        times.append(time.perf_counter() - t)
        text = gzip.decompress(gz).decode()
        lags.append(gauge(text, "tls_exporter_scheduler_lag_seconds"))
        time.sleep(max(0.0, 10.0 - (time.perf_counter() - t)))
    wd = w.close()
    text = ex.scrape().decode()
    res["skipped"] = gauge(text, "tls_exporter_probes_skipped_total") - skipped0
    res["lag_p99_s"] = percentile(lags, 99)
    res["lag_max_s"] = max(lags)
    res["scrape_gzip_p50_ms"] = percentile(times, 50) * 1000
    res["scrape_gzip_p99_ms"] = percentile(times, 99) * 1000
    res["scrape_gzip_mb"] = len(gz) / 1e6
    res["cores"] = wd["cpu"] / wd["seconds"]
    res["other_cores"] = wd["other_cores"]
    res["rss_end"], res["hwm_window"] = proc_mem_mb(ex.pid)
    res["hwm"] = max(res["hwm_start"], res["hwm_reloads"], res["hwm_window"])
    res["per_target_kb"] = (res["rss_idle"] - a.base_rss) * 1000 / n
    ex.stop()
    return res


def scale_report(a, runs):
    def m(key):
        vals = [r["scale"][key] for r in runs if "scale" in r]
        return statistics.median(vals) if vals else float("nan")

    rows = [
        ("start-up (process start to ready), s", m("startup_s"), "≤ 2"),
        ("reload of the whole set, unchanged (POST /-/reload answered), s", m("reload_s"), "≤ 2"),
        ("reload of the whole set, every target changed, s", m("reload_changed_s"), "≤ 2"),
        ("after that reload: every target probed again, s (lag meanwhile, s)", f"{fmt(m('catch_up_s'))} ({fmt(m('catch_up_lag_s'))})", ""),
        ("scheduler lag p99 (10 s samples of the 1-minute max), s", m("lag_p99_s"), "≤ 1"),
        ("scheduler lag max, s", m("lag_max_s"), ""),
        ("skipped ticks over the window", m("skipped"), "0"),
        ("/metrics gzip p50 / p99, ms", f"{m('scrape_gzip_p50_ms'):,.0f} / {m('scrape_gzip_p99_ms'):,.0f}", "≤ 1,000"),
        ("/metrics gzip size, MB", m("scrape_gzip_mb"), ""),
        ("RSS after every target probed once, MB", m("rss_idle"), ""),
        ("peak RSS (VmHWM), MB: start-up and first round, with plain scrapes", m("hwm_start"), ""),
        (f"peak RSS, MB: the {a.scale_minutes:g}-minute window (probing, a gzip scrape every 10 s)", m("hwm_window"), ""),
        ("peak RSS, MB: overall, including the whole-set reloads", m("hwm"), "≤ 150"),
        ("RSS per target beyond an empty exporter (the config's own share included), KB", m("per_target_kb"), "≤ 2 beyond the config"),
        ("exporter CPU cores used", m("cores"), ""),
        ("other load on the machine, cores", m("other_cores"), ""),
    ]
    out = [f"| figure ({a.scale_targets:,} targets, interval 60 s, default config: scans on, {a.scale_minutes} min) | median of {len(runs)} | target |", "|---|---:|---|"]
    for name, v, target in rows:
        out.append(f"| {name} | {v if isinstance(v, str) else fmt(v)} | {target} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# memory: 10,000 targets with the default config, scrapes back to back


def run_memory(a, work, r):
    """10,000 targets (interval 20 s, 500 probes/s), the default concurrency, legacy scans on
    as by default, with `scan_interval: 40s` so that every target holds its scan when the
    scrapes start (the default's first scans are spread over ten minutes): RSS once every
    target was probed and
    scanned, then `a.memory_scrapes` gzip scrapes back to back (as an HA pair or a retrying
    scraper sends them) with RSS sampled every 20 ms meanwhile; the peak is VmHWM, which also
    covers start-up."""
    n = a.memory_targets
    # The default concurrency (64), not the bench's 256: probes in flight are most of a
    # start-up's peak (a rustls connection each).
    ex = Exporter(a, work, f"memory-{r}", n, "20s", "5s", None, scan=True, scan_interval="40s")
    ex.wait_all_probed(n, 60)
    # Every scan's first run lands within its first interval (40 s, warm-up spread).
    time.sleep(45)
    res = {"targets": n}
    res["rss_before"], res["hwm_before"] = proc_mem_mb(ex.pid)
    top, done = [0.0], threading.Event()

    def sample():
        while not done.is_set():
            top[0] = max(top[0], proc_mem_mb(ex.pid)[0])
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    times = []
    for _ in range(a.memory_scrapes):
        t0 = time.perf_counter()
        gz = ex.scrape(gzip=True)
        times.append(time.perf_counter() - t0)
    done.set()
    t.join()
    text = gzip.decompress(gz).decode()
    res["scanned"] = sum(1 for line in text.splitlines() if line.startswith('tls_protocol_accepted{') and 'version="TLS 1.2"' in line)
    res["rss_sampled_max"] = top[0]
    res["rss_after"], res["hwm"] = proc_mem_mb(ex.pid)
    time.sleep(3)
    res["rss_3s_after"], _ = proc_mem_mb(ex.pid)
    res["scrape_gzip_p50_ms"] = percentile(times, 50) * 1000
    res["scrape_gzip_mb"] = len(gz) / 1e6
    ex.stop()
    if res["scanned"] < n:
        raise SystemExit(f"bench: memory: only {res['scanned']} of {n} targets were scanned before the scrapes")
    return res


def memory_report(a, runs):
    def m(key):
        return statistics.median(r["memory"][key] for r in runs)

    def each(key):
        return " / ".join(fmt(r["memory"][key]) for r in runs)

    rows = [
        ("RSS once every target was probed and scanned, MB", fmt(m("rss_before")), each("rss_before"), ""),
        ("peak RSS before the scrapes (start-up, first rounds), MB", fmt(m("hwm_before")), each("hwm_before"), ""),
        (f"peak RSS including {a.memory_scrapes} gzip scrapes back to back (VmHWM), MB", fmt(m("hwm")), each("hwm"), "≤ 45"),
        ("RSS right after the last scrape / 3 s later, MB", f"{fmt(m('rss_after'))} / {fmt(m('rss_3s_after'))}", "", ""),
        ("/metrics gzip p50, ms (size, MB)", f"{m('scrape_gzip_p50_ms'):,.0f} ({fmt(m('scrape_gzip_mb'))})", "", ""),
    ]
    out = [f"| figure ({a.memory_targets:,} targets, interval 20 s, default config: concurrency 64, scans on, scan_interval 40s) | median of {len(runs)} | runs | target |", "|---|---:|---|---|"]
    for name, v, runs_text, target in rows:
        out.append(f"| {name} | {v} | {runs_text} | {target} |")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# blackbox_exporter


def blackbox_config(path, ca, n, timeout):
    with open(path, "w") as f:
        f.write("modules:\n")
        for i in range(1, n + 1):
            f.write(
                f"  m{i:05d}:\n    prober: tcp\n    timeout: {timeout}\n    tcp:\n"
                f"      preferred_ip_protocol: ip4\n      tls: true\n      tls_config:\n"
                f"        ca_file: {ca}\n        server_name: t{i:05d}.bench.test\n"
            )


class Blackbox:
    def __init__(self, a, work, tag, n, timeout):
        self.n, self.ports = n, a.ports
        self.port = free_port()
        cfg = os.path.join(work, f"blackbox-{tag}.yml")
        blackbox_config(cfg, a.ca, n, timeout)
        self.proc = PROCS.start(
            [a.blackbox, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            os.path.join(work, f"blackbox-{tag}.log"),
            cpus=a.pin_prober,
        )
        self.pid = self.proc.pid
        wait_until(lambda: http_get(self.port, "/-/healthy", 2)[0] == 200, 60, "blackbox_exporter to be up")

    def path(self, k):
        i = k % self.n + 1
        return f"/probe?module=m{i:05d}&target=127.0.0.1:{self.ports[i % len(self.ports)]}"

    def stop(self):
        PROCS.stop(self.proc)


def drive(bb, concurrency, rate=0, count=0, seconds=0.0, first=0):
    """One /probe request per probe over keep-alive connections, `concurrency` in flight at most.
    With `rate`: `count` requests paced at `rate`/s. Without: closed loop for `seconds`."""
    counts = {"ok": 0, "fail": 0}
    lock = threading.Lock()
    q = queue.Queue()
    stop_at = time.monotonic() + (seconds if not rate else count / rate + 30)
    seq = iter(range(first, first + 10**9))
    seq_lock = threading.Lock()

    def worker():
        conn = None
        ok = fail = 0
        while time.monotonic() < stop_at:
            if rate:
                try:
                    k = q.get(timeout=max(0.1, stop_at - time.monotonic()))
                except queue.Empty:
                    break
                if k is None:
                    break
            else:
                with seq_lock:
                    k = next(seq)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", bb.port, timeout=10)
                conn.request("GET", bb.path(k))
                body = conn.getresponse().read()
                if b"\nprobe_success 1\n" in body:
                    ok += 1
                else:
                    fail += 1
            except (OSError, http.client.HTTPException):
                fail += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            counts["ok"] += ok
            counts["fail"] += fail

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    if rate:
        t0 = time.monotonic()
        for k in range(count):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            q.put(first + k)
        for _ in threads:
            q.put(None)
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + 15)
    return counts


def measure_blackbox(bb, nginx_pids, concurrency, rate=0, count=0, seconds=0.0, first=0):
    w = Window(bb.pid, nginx_pids)
    c = drive(bb, concurrency, rate=rate, count=count, seconds=seconds, first=first)
    d = w.close()
    d.update(
        probes=c["ok"],
        failures=c["fail"],
        rate=c["ok"] / d["seconds"],
        cpu_per_1000=d["cpu"] / c["ok"] * 1000 if c["ok"] else float("nan"),
        driver_per_1000=d["driver_cpu"] / c["ok"] * 1000 if c["ok"] else float("nan"),
        cores=d["cpu"] / d["seconds"],
    )
    return d


def run_blackbox(a, work, nginx_pids, r):
    res = {}
    rate = 500
    # 1. fixed rate: 1,000 modules, 500 probes/s (as the exporter's 1,000 targets every 2s).
    bb = Blackbox(a, work, f"fixed-{r}", 1000, "1s")
    measure_blackbox(bb, nginx_pids, a.concurrency, rate=rate, count=rate * 2)  # warm-up
    d = measure_blackbox(bb, nginx_pids, a.concurrency, rate=rate, count=int(rate * a.window), first=rate * 2)
    check_healthy(d, "blackbox fixed rate")
    res["fixed"] = d
    res["rss_1k"], res["hwm_1k"] = proc_mem_mb(bb.pid)
    bb.stop()

    # 2. saturated: 2,000 modules, closed loop, same concurrency as the exporter.
    bb = Blackbox(a, work, f"sat-{r}", 2000, "900ms")
    drive(bb, a.bb_sat_concurrency, seconds=a.sat_warmup)
    d = measure_blackbox(bb, nginx_pids, a.bb_sat_concurrency, seconds=a.sat_window)
    d["per_core_second"] = d["rate"] / d["cores"] if d["cores"] else float("nan")
    res["sat"] = d
    bb.stop()

    # 3. 10,000 modules, each probed once at 500/s: memory and CPU.
    bb = Blackbox(a, work, f"10k-{r}", 10000, "5s")
    res["rss_10k_idle"], res["hwm_10k_idle"] = proc_mem_mb(bb.pid)
    d = measure_blackbox(bb, nginx_pids, a.concurrency, rate=rate, count=10000)
    check_healthy(d, "blackbox 10,000 modules")
    res["fixed_10k"] = d
    res["rss_10k"], res["hwm_10k"] = proc_mem_mb(bb.pid)
    bb.stop()
    return res


# ---------------------------------------------------------------------------------------------
# rustls floor


def run_floor(a, work):
    addrs = ",".join(f"127.0.0.1:{p}" for p in a.ports)
    count = int(500 * a.window)
    cmd = [a.handshake_loop, "--ca", a.ca, "--addrs", addrs, "--names", "1000",
           "--count", str(count), "--rate", "500", "--concurrency", str(a.concurrency)]
    if a.pin_prober:
        cmd = ["taskset", "-c", a.pin_prober] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.window + 120)
    if out.returncode != 0:
        raise SystemExit(f"bench: handshake_loop failed: {out.stderr.strip()}")
    kv = dict(x.split("=", 1) for x in out.stdout.split())
    return {k: float(v) for k, v in kv.items()}


# ---------------------------------------------------------------------------------------------
# CPU per probe, with and without chain reuse, per TLS case (scripts/bench --only cpu runs only
# this). Each case is one nginx endpoint set; in one run, back to back on the same endpoints:
# the exporter (1,000 targets every 2s = 500 probes/s) with chain reuse and with
# --debug.no-chain-cache, blackbox_exporter at 500/s, and the bare rustls loop at 500/s.

CPU_CASES = {
    # name: (description, nginx TLS directives, PKI file prefix)
    "ecdsa13": ("TLS 1.3, ECDSA P-256", None, ""),  # the main nginx (start_nginx)
    "rsa12": (
        "TLS 1.2, RSA-2048, ECDHE-RSA-AES128-GCM-SHA256",
        "ssl_protocols TLSv1.2;\n    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;\n    ssl_prefer_server_ciphers on;",
        "rsa-",
    ),
}


def start_nginx_case(a, work, case, ports):
    """An nginx of its own for one CPU case: its TLS settings and certificate, its ports."""
    _, tls, prefix = CPU_CASES[case]
    d = os.path.join(work, f"nginx-{case}")
    tmp = os.path.join(d, "tmp")
    os.makedirs(tmp, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    servers = "\n".join(
        f"""    server {{
        listen 127.0.0.1:{p} ssl default_server;
        server_name bench.test *.bench.test;
        return 200 "ok\\n";
    }}"""
        for p in ports
    )
    with open(conf, "w") as f:
        f.write(
            f"""# generated by scripts/bench ({CPU_CASES[case][0]})
worker_processes {a.nginx_workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    {tls}
    ssl_certificate {work}/pki/{prefix}leaf.pem;
    ssl_certificate_key {work}/pki/{prefix}leaf.key;
    ssl_session_tickets off;
    ssl_session_cache off;
{servers}
}}
"""
        )
    p = PROCS.start(
        [a.nginx, "-p", d + "/", "-e", f"{d}/error.log", "-c", conf, "-g", "daemon off;"],
        os.path.join(d, "nginx.out"),
        cpus=a.pin_nginx,
    )

    def listening():
        for port in ports:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_until(listening, 15, f"nginx ({case}) to listen")
    if p.poll() is not None:
        raise SystemExit(f"bench: nginx ({case}) exited; see {d}/error.log")
    wait_until(lambda: len(tree_pids(p.pid)) > a.nginx_workers, 10, f"nginx ({case}) workers")
    return tree_pids(p.pid)


def cpu_case_endpoints(a, work, nginx_pids):
    """Endpoints (ports, nginx pids) of each CPU case asked for: the main nginx serves the TLS 1.3
    ECDSA case, every other case gets an nginx of its own."""
    out = {}
    for case in [c for c in a.cases.split(",") if c]:
        if case not in CPU_CASES:
            raise SystemExit(f"bench: unknown CPU case {case} (known: {', '.join(CPU_CASES)})")
        if case == "ecdsa13":
            out[case] = (a.ports, nginx_pids)
        else:
            ports = [free_port() for _ in range(len(a.ports))]
            out[case] = (ports, start_nginx_case(a, work, case, ports))
    return out


def case_args(a, case, ports, flags=()):
    """A copy of the arguments pointing the existing scenario code at one case's endpoints."""
    b = argparse.Namespace(**vars(a))
    b.ca = os.path.join(a.work, "pki", f"{CPU_CASES[case][2]}ca.pem")
    b.ports = ports
    b.exporter_flags = list(flags)
    return b


def run_cpu_case(a, work, case, ports, nginx_pids, r):
    """CPU-s per 1,000 probes at 500/s for one case: exporter with and without chain reuse,
    blackbox, floor; and the same-run ratios."""
    res = {}
    variants = [("reuse", ()), ("no_reuse", ("--debug.no-chain-cache",))]
    # Alternate which goes first, so a drift in the machine's load favours neither.
    for key, flags in variants if r % 2 else reversed(variants):
        b = case_args(a, case, ports, flags)
        ex = Exporter(b, work, f"cpu-{case}-{key}-{r}", 1000, "2s", "1s", a.concurrency)
        ex.wait_all_probed(1000, 30)
        d = measure_exporter_window(ex, nginx_pids, a.window)
        check_healthy(d, f"exporter {case} {key}")
        d["hwm"] = proc_mem_mb(ex.pid)[1]
        res[key] = d
        ex.stop()
    b = case_args(a, case, ports)
    if a.blackbox:
        bb = Blackbox(b, work, f"cpu-{case}-{r}", 1000, "1s")
        measure_blackbox(bb, nginx_pids, a.concurrency, rate=500, count=1000)  # warm-up
        d = measure_blackbox(bb, nginx_pids, a.concurrency, rate=500, count=int(500 * a.window), first=1000)
        check_healthy(d, f"blackbox {case}")
        res["blackbox"] = d
        bb.stop()
    if a.handshake_loop:
        t0, (busy0, total0), ngx0 = time.monotonic(), machine_cpu(), tree_cpu(nginx_pids)
        res["floor"] = run_floor(b, work)
        (busy1, total1), secs = machine_cpu(), time.monotonic() - t0
        # The loop reports its CPU over the measured handshakes only (not its warm-up), so this
        # overstates the other load a little.
        other = (busy1 - busy0) - (tree_cpu(nginx_pids) - ngx0) - res["floor"]["cpu_seconds"]
        res["floor"]["other_cores"] = max(0.0, other / secs)
        res["floor"]["machine_busy"] = (busy1 - busy0) / max(1e-9, total1 - total0)
    for key in ("reuse", "no_reuse"):
        x = res[key]["cpu_per_1000"]
        for ref in ("floor", "blackbox"):
            y = res.get(ref, {}).get("cpu_per_1000")
            if y:
                res[f"{key}_vs_{ref}"] = x / y
    return res


def run_cpu(a, work, case_nginx, r):
    """Every CPU case once (run `r`)."""
    out = {}
    for case, (ports, pids) in case_nginx.items():
        print(f"bench: run {r}/{a.runs}: CPU per probe, {CPU_CASES[case][0]}", file=sys.stderr, flush=True)
        out[case] = run_cpu_case(a, work, case, ports, pids, r)
        c = out[case]
        print(
            f"bench: run {r}: {case}: reuse {c['reuse']['cpu_per_1000']:.3f}, "
            f"no reuse {c['no_reuse']['cpu_per_1000']:.3f}"
            + (f", floor {c['floor']['cpu_per_1000']:.3f}" if "floor" in c else "")
            + (f", blackbox {c['blackbox']['cpu_per_1000']:.3f}" if "blackbox" in c else "")
            + " CPU-s/1000",
            file=sys.stderr,
            flush=True,
        )
    return out


def cpu_report(runs):
    """The CPU table: medians over runs of each figure and of each same-run ratio."""
    def m(case, path):
        vals = []
        for run in runs:
            try:
                vals.append(get(run["cpu"][case], path))
            except (KeyError, TypeError):
                pass
        return statistics.median(vals) if vals else None

    def x(v):
        return f"{v:.2f}×" if v is not None else "n/a"

    lines = [
        "| case | with reuse | `--debug.no-chain-cache` | bare rustls loop | blackbox_exporter "
        "| reuse / loop | no reuse / loop | reuse / blackbox | no reuse / blackbox |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases = [c for c in CPU_CASES if any(c in run.get("cpu", {}) for run in runs)]
    for case in cases:
        lines.append(
            f"| {CPU_CASES[case][0]} | {fmt(m(case, 'reuse.cpu_per_1000'), 3)} "
            f"| {fmt(m(case, 'no_reuse.cpu_per_1000'), 3)} | {fmt(m(case, 'floor.cpu_per_1000'), 3)} "
            f"| {fmt(m(case, 'blackbox.cpu_per_1000'), 3)} | {x(m(case, 'reuse_vs_floor'))} "
            f"| {x(m(case, 'no_reuse_vs_floor'))} | {x(m(case, 'reuse_vs_blackbox'))} "
            f"| {x(m(case, 'no_reuse_vs_blackbox'))} |"
        )
    lines.append("")
    lines.append(
        "CPU-s per 1,000 probes (or handshakes) at 500/s, 1,000 targets; medians over runs. "
        "Ratios are medians of the ratios within each run (same run, same minute, same noise). "
        "Targets: reuse / loop ≤ 0.85×, reuse / blackbox ≤ 0.35×."
    )
    noise = []
    for case in cases:
        figures = [(k, m(case, f"{k}.other_cores")) for k in ("reuse", "no_reuse", "floor", "blackbox")]
        shown = ", ".join(f"{k} {v:.2f}" for k, v in figures if v is not None)
        if shown:
            noise.append(f"{case}: {shown}")
    if noise:
        lines.append("")
        lines.append(
            "Other load on the machine during each window (cores, median; the floor's slightly "
            "overstated): " + "; ".join(noise) + "."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# report


def percentile(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def get(d, path):
    for k in path.split("."):
        d = d[k]
    return d


def med(runs, key, path):
    vals = [get(r[key], path) for r in runs if r.get(key)]
    return statistics.median(vals) if vals else None


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def ratio(x, y):
    return f"{x / y:.2f}×" if x is not None and y else "n/a"


def report(a, runs, versions):
    m = lambda k, p: med(runs, k, p)  # noqa: E731
    e, b, f = "exporter", "blackbox", "floor"
    def per_s(k, p):
        x, secs = m(k, p), m(k, "sat.seconds")
        return x / secs if x is not None and secs else None

    rows = [
        ("CPU-s per 1,000 probes, 500/s, 1,000 targets", m(e, "fixed.cpu_per_1000"), m(b, "fixed.cpu_per_1000"), "≤ 0.6 and ≤ 0.5× blackbox", 3),
        ("CPU-s per 1,000 probes, 500/s, 10,000 targets", m(e, "fixed_10k.cpu_per_1000"), m(b, "fixed_10k.cpu_per_1000"), "", 3),
        ("bare rustls handshake loop (floor), CPU-s per 1,000, 500/s", m(f, "cpu_per_1000"), None, "", 3),
        ("saturated: completed probes/s (2,000 targets, 1s, 900ms)", m(e, "sat.rate"), m(b, "sat.rate"), "≥ 1,800", 0),
        ("saturated: prober CPU cores used", m(e, "sat.cores"), m(b, "sat.cores"), "", 2),
        ("saturated: probes per prober CPU-second", m(e, "sat.per_core_second"), m(b, "sat.per_core_second"), "", 0),
        ("saturated: nginx CPU cores used", per_s(e, "sat.nginx_cpu"), per_s(b, "sat.nginx_cpu"), "", 2),
        ("saturated: driver (bench.py) CPU cores used", None, per_s(b, "sat.driver_cpu"), "", 2),
        ("saturated: other load on the machine, cores", m(e, "sat.other_cores"), m(b, "sat.other_cores"), "", 2),
        ("saturated: skipped probes/s", m(e, "sat.skipped_rate"), None, "", 0),
        ("saturated: failed probes/s", per_s(e, "sat.failures"), per_s(b, "sat.failures"), "", 1),
        ("peak RSS (VmHWM) MB, 1,000 targets, before any scrape", m(e, "hwm_1k_noscrape"), None, "", 1),
        ("peak RSS (VmHWM) MB, 1,000 targets", m(e, "hwm_1k"), m(b, "hwm_1k"), "", 1),
        ("peak RSS (VmHWM) MB, 10,000 targets, all probed, before any scrape", m(e, "hwm_10k_noscrape"), None, "", 1),
        ("peak RSS (VmHWM) MB, 10,000 targets (exporter: after 20+ scrapes; blackbox: each probed once)", m(e, "hwm_10k_after_scrapes"), m(b, "hwm_10k"), "≤ 60", 1),
        ("RSS (VmRSS) MB at the end, 10,000 targets", m(e, "rss_10k_after_scrapes"), m(b, "rss_10k"), "", 1),
        ("blackbox: RSS MB with 10,000 modules loaded, before probing", None, m(b, "rss_10k_idle"), "", 1),
        ("/metrics p50 ms, 10,000 targets", m(e, "scrape_p50_ms"), None, "", 1),
        ("/metrics p99 ms, 10,000 targets", m(e, "scrape_p99_ms"), None, "< 150", 1),
        ("/metrics exporter CPU ms per scrape, 10,000 targets (incl. 500 probes/s)", m(e, "scrape_cpu_ms"), None, "", 1),
        ("/metrics exporter CPU ms per scrape, 10,000 targets, net of the probing meanwhile", m(e, "scrape_net_cpu_ms"), None, "", 1),
        ("/metrics size MB / series, 10,000 targets", m(e, "scrape_bytes") and f"{m(e, 'scrape_bytes') / 1e6:.2f} / {m(e, 'series_10k'):,.0f}", None, "", 2),
        ("/metrics gzip: exporter CPU ms per scrape, 10,000 targets (incl. 500 probes/s)", m(e, "scrape_gzip_cpu_ms"), None, "", 1),
        ("/metrics gzip: exporter CPU ms per scrape, 10,000 targets, net of the probing meanwhile", m(e, "scrape_gzip_net_cpu_ms"), None, "", 1),
        ("/metrics gzip: size MB / compression ratio, 10,000 targets", m(e, "scrape_gzip_bytes") and f"{m(e, 'scrape_gzip_bytes') / 1e6:.2f} / {m(e, 'scrape_bytes') / m(e, 'scrape_gzip_bytes'):.1f}×", None, "", 2),
        ("blackbox: driver CPU-s per 1,000 probes (not in blackbox's figure)", None, m(b, "fixed.driver_per_1000"), "", 3),
        ("other load on the machine during the 500/s windows, cores", m(e, "fixed.other_cores"), m(b, "fixed.other_cores"), "", 2),
    ]
    lines = [
        "| figure | tls_exporter | blackbox_exporter | exporter / blackbox | target |",
        "|---|---:|---:|---:|---|",
    ]
    for name, x, y, target, digits in rows:
        r = ratio(x, y) if not isinstance(x, str) else "n/a"
        lines.append(f"| {name} | {fmt(x, digits)} | {fmt(y, digits)} | {r} | {target} |")
    table = "\n".join(lines)
    if any("cpu" in run for run in runs):
        cpu = "## CPU per probe, with and without chain reuse\n\n" + cpu_report(runs)
        table = cpu if a.only == "cpu" else table + "\n\n" + cpu

    header = [
        "# tls_exporter benchmark results",
        "",
        f"- date: {utc_now()}",
        f"- machine: {machine()}",
        f"- runs: {len(runs)} (median of each figure){' — quick smoke run, not a result' if a.quick else ''}",
        f"- windows: fixed rate {a.window:.0f}s, saturated {a.sat_window:.0f}s, 10,000 targets {a.window_10k:.0f}s; "
        f"concurrency {a.concurrency} (blackbox saturated driver: {a.bb_sat_concurrency} threads)",
        f"- CPU placement: {a.placement}",
    ] + [f"- {k}: {v}" for k, v in versions.items()] + [
        "- reproduce: `scripts/bench` (or `scripts/bench --quick`); see `scripts/bench --help`",
    ] + ([f"- command: `{a.command}`"] if a.command else []) + [
        "",
    ]
    raw = ["", "## Raw per-run figures", "", "```json", json.dumps(runs, indent=1, sort_keys=True, default=lambda x: round(x, 4)), "```", ""]
    return table, "\n".join(header) + "\n" + table + "\n" + "\n".join(raw)


# ---------------------------------------------------------------------------------------------


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine():
    """CPUs, their model, the kernel and the memory of this machine, in one line."""
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{NCPU} CPUs ({cpu_model}), {platform.system()} {platform.release()}, {memory:.0f} GiB"


def part_doc(key, date, command, placement, version, table, runs):
    """The results file of `--only KEY`: what ran where (date, machine, command), the table and
    the per-run figures."""
    return (
        f"# scripts/bench --only {key}\n\n- date: {date}\n- machine: {machine()}\n"
        f"- command: `{command}`\n- {placement}\n- tls_exporter: {version}\n\n{table}"
        f"\n## Raw per-run figures\n\n```json\n{json.dumps(runs, indent=1)}\n```\n"
    )


def run_part(a, key, label, run, report):
    """`--only KEY`: `a.runs` runs of `run(r)`, the table `report` makes of them printed and
    written to `a.out` (see `part_doc`)."""
    runs = []
    for r in range(1, a.runs + 1):
        print(f"bench: run {r}/{a.runs}: {label}", file=sys.stderr, flush=True)
        runs.append({key: run(r)})
        print(f"bench: run {r}: {runs[-1][key]}", file=sys.stderr, flush=True)
    table = report(a, runs)
    print(table)
    if a.out:
        version = json.loads(a.versions).get("tls_exporter", "?")
        with open(a.out, "w") as fh:
            fh.write(part_doc(key, utc_now(), a.command, a.placement, version, table, runs))
        wrote(a.out)


def wrote(path):
    """Says `path` was written; when it is one of the parts' files, rebuilds results.md."""
    print(f"bench: wrote {path}", file=sys.stderr)
    benches = os.path.dirname(os.path.abspath(__file__))
    if os.path.dirname(os.path.abspath(path)) == benches and os.path.basename(path) in dict(PARTS):
        gather(benches)
        print(f"bench: wrote {os.path.join(benches, 'results.md')}", file=sys.stderr)


# The results file of each part, in the order `gather` lists them.
PARTS = [
    ("results-full.md", "The whole benchmark (`scripts/bench`): CPU per probe, saturation, 10,000 targets, blackbox_exporter and the rustls floor"),
    ("results-cpu.md", "CPU per probe with and without chain reuse (`scripts/bench --only cpu`)"),
    ("results-memory.md", "10,000 targets with the default config, scrapes back to back (`scripts/bench --only memory`)"),
    ("results-scale.md", "50,000 targets on one process (`scripts/bench --only scale`)"),
]


def gather(benches=os.path.dirname(os.path.abspath(__file__))):
    """Rewrites `benches/results.md`: the latest run of every part, each with its date,
    machine and command, as its own file has them (the per-run figures stay in that file)."""
    out = [
        "# tls_exporter benchmark results",
        "",
        "The latest run of each part of `scripts/bench`, rebuilt after every run from the part's own",
        "file (which also has the per-run figures). Medians of the runs; ratios are same-run ratios.",
    ]
    for name, title in PARTS:
        path = os.path.join(benches, name)
        if not os.path.exists(path):
            continue
        with open(path) as fh:
            text = fh.read().split("\n## Raw per-run figures")[0].rstrip()
        body = text.split("\n", 1)[1].strip() if text.startswith("# ") else text
        out += ["", f"## {title}", "", f"From `benches/{name}`.", "", body.replace("\n## ", "\n### ")]
    with open(os.path.join(benches, "results.md"), "w") as fh:
        fh.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="scratch directory (PKI in WORK/pki)")
    ap.add_argument("--exporter", required=True)
    ap.add_argument("--blackbox", default="")
    ap.add_argument("--nginx", default="nginx")
    ap.add_argument("--handshake-loop", default="")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--bb-sat-concurrency", type=int, default=0, help="default: --concurrency")
    ap.add_argument("--ports", type=int, default=4)
    ap.add_argument("--nginx-workers", type=int, default=2)
    ap.add_argument("--pin", action="store_true", help="nginx on CPU 1, prober (and driver) on CPU 0")
    ap.add_argument("--out", default="")
    ap.add_argument("--versions", default="{}", help="JSON object of version strings for the report")
    ap.add_argument("--only", default="", choices=["", "cpu", "scale", "memory"], help="cpu: only the CPU-per-probe cases; scale: only the 50,000-target run; memory: only the 10,000-target peak with the default config")
    ap.add_argument("--memory-targets", type=int, default=10000)
    ap.add_argument("--memory-scrapes", type=int, default=25)
    ap.add_argument("--scale-targets", type=int, default=50000)
    ap.add_argument("--scale-minutes", type=float, default=10.0)
    ap.add_argument("--cases", default=",".join(CPU_CASES), help="CPU cases to run (comma-separated; empty: none)")
    ap.add_argument("--command", default="", help="the command line that ran this, for the report")
    a = ap.parse_args()

    a.ca = os.path.join(a.work, "pki", "ca.pem")
    a.scale_settle = 10.0 if a.quick else 70.0
    a.window, a.sat_window, a.window_10k, a.sat_warmup, a.scrapes = (30.0, 20.0, 20.0, 3.0, 20)
    if a.quick:
        a.runs = 1
        a.window, a.sat_window, a.window_10k = 10.0, 8.0, 8.0
    a.bb_sat_concurrency = a.bb_sat_concurrency or a.concurrency
    a.pin_nginx = a.pin_prober = None
    a.placement = "unpinned: nginx, the prober and the driver share both CPUs (kernel scheduling)"
    if a.pin and NCPU >= 2:
        a.pin_nginx, a.pin_prober = "1", "0"
        os.sched_setaffinity(0, {0})
        a.placement = "pinned with taskset: nginx on CPU 1; prober under test and driver on CPU 0"

    def on_signal(signum, _frame):
        PROCS.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    try:
        a.ports = [free_port() for _ in range(a.ports)]
        ngx = start_nginx(a, a.work, a.ports)
        nginx_pids = tree_pids(ngx.pid)
        case_nginx = cpu_case_endpoints(a, a.work, nginx_pids) if a.only not in ("scale", "memory") else {}
        runs = []
        if a.only == "memory":
            label = f"{a.memory_targets:,} targets, {a.memory_scrapes} scrapes"
            run_part(a, "memory", label, lambda r: run_memory(a, a.work, r), memory_report)
            return
        if a.only == "scale":
            empty = Exporter(a, a.work, "empty", 0, "60s", "5s", a.concurrency)
            time.sleep(2)
            a.base_rss, _ = proc_mem_mb(empty.pid)
            empty.stop()
            label = f"{a.scale_targets:,} targets"
            run_part(a, "scale", label, lambda r: run_scale(a, a.work, nginx_pids, r), scale_report)
            return
        for r in range(1, a.runs + 1):
            run = {}
            if case_nginx:
                run["cpu"] = run_cpu(a, a.work, case_nginx, r)
            if a.only == "cpu":
                runs.append(run)
                continue
            print(f"bench: run {r}/{a.runs}: tls_exporter", file=sys.stderr, flush=True)
            run["exporter"] = run_exporter(a, a.work, nginx_pids, r)
            if a.blackbox:
                print(f"bench: run {r}/{a.runs}: blackbox_exporter", file=sys.stderr, flush=True)
                run["blackbox"] = run_blackbox(a, a.work, nginx_pids, r)
            if a.handshake_loop:
                print(f"bench: run {r}/{a.runs}: rustls handshake loop", file=sys.stderr, flush=True)
                run["floor"] = run_floor(a, a.work)
            runs.append(run)
            e = run["exporter"]
            print(
                f"bench: run {r}: exporter {e['fixed']['cpu_per_1000']:.3f} CPU-s/1000, "
                f"{e['sat']['rate']:.0f} probes/s saturated, HWM {e['hwm_10k']:.1f} MB @10k, "
                f"/metrics p50 {e['scrape_p50_ms']:.1f} ms"
                + (f"; blackbox {run['blackbox']['fixed']['cpu_per_1000']:.3f} CPU-s/1000, "
                   f"{run['blackbox']['sat']['rate']:.0f}/s" if "blackbox" in run else "")
                + (f"; floor {run['floor']['cpu_per_1000']:.3f}" if "floor" in run else ""),
                file=sys.stderr,
                flush=True,
            )
        versions = json.loads(a.versions)
        versions["wall time"] = f"{time.monotonic() - started:.0f}s"
        table, doc = report(a, runs, versions)
        print(table)
        if a.out:
            with open(a.out, "w") as fh:
                fh.write(doc)
            wrote(a.out)
    finally:
        PROCS.stop_all()


if __name__ == "__main__":
    main()
