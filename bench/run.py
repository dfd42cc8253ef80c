#!/usr/bin/env python3
"""livegate benchmarks: the scenarios of issue 4 against livegate and the Node.js Socket.IO peer,
in the same run, with the same load generator (crates/loadgen).

    python3 bench/run.py                      # everything; writes bench/results/<date>.{json,md} and SVGs
    python3 bench/run.py --only idle,handshakes --servers livegate
    python3 bench/run.py --smoke              # tiny sizes, embedded engine, HTTP publish; fails on loss

Servers are pinned to core 0 and the load generator (and Redis) to core 1 with taskset. The load
generator samples the servers' CPU time and RSS from /proc around every measured window. Standard
library only.

Scenarios
  idle        RSS per idle subscribed connection at 2k, 5k, 10k and 19k connections (a process may
              open 20,000 files here), one fresh server each; the slope of RSS against connections;
              and 2 servers x 19k through 2 load generators, to go past the per-process cap.
  fanout-1    10k connections on one project, publication rate raised step by step.
  fanout-100  10k connections over 100 projects, same.
              A step is clean with no loss, no duplicate, no dropped connection, 97 % of the owed
              deliveries arriving in the window, and p99 <= 50 ms (fanout-100, two-nodes) or <= 1 s
              (fanout-1: one publication to 10k sockets keeps its last recipient waiting for the
              whole fan-out, 10k x the CPU per delivery, so no one-core server meets 50 ms there).
              Then one run at half the highest clean rate, on a fresh server, for its latency.
  handshakes  connection churn (connect, auth, ready, 2 subscribes, close) for CPU per handshake.
  two-nodes   two servers (both on core 0) behind one Redis, 10k connections split between them,
              100 projects, rates raised as in fanout-100.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_DIR = os.path.join(ROOT, "bench", "peers", "node-socketio")
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
PUBLISH_KEY = "bench-publish-key"
SERVER_CORE, LOADGEN_CORE = "0", "1"
FD_CAP = 20000
SERVERS = ("livegate", "node")
SCENARIOS = ("idle", "fanout-1", "fanout-100", "handshakes", "two-nodes")
IDLE_SIZES = (2000, 5000, 10000, 19000)
# Target deliveries per second of the rate steps.
DELIVERY_STEPS = (10_000, 20_000, 25_000, 30_000, 35_000, 40_000, 50_000, 60_000, 70_000,
                  80_000, 90_000, 100_000, 110_000, 120_000, 140_000, 160_000, 180_000, 200_000, 240_000)
LABEL = {"livegate": "livegate", "node": "Node.js socket.io peer"}
COLOR = {"livegate": "#c0392b", "node": "#2c7fb8"}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core, argv):
    return (["taskset", "-c", core] if shutil.which("taskset") else []) + argv


class Proc:
    """A child process with its output in a log file, stopped on exit."""

    def __init__(self, name, argv, workdir, env=None, cwd=None):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self.log.close()

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf8", "replace")
        except OSError:
            return ""


def wait_http(url, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout}s:\n{proc.tail()}")


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    rss = next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
    return rss


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin_dir)
        self.work = tempfile.mkdtemp(prefix="livegate-bench-")
        self.procs = []
        self.redis_url = None
        self.runs = {}
        self.seq = 0

    # --- infrastructure ---
    def start(self, name, argv, env=None, cwd=None):
        p = Proc(name, argv, self.work, env, cwd)
        self.procs.append(p)
        return p

    def stop(self, p):
        p.stop()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p)

    def start_redis(self):
        port = free_port()
        self.redis = self.start("redis", pinned(LOADGEN_CORE, [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--maxclients", "1000", "--client-output-buffer-limit", "pubsub", "0", "0", "0"]))
        self.redis_url = f"redis://127.0.0.1:{port}"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def start_server(self, kind, embedded=False, name=None):
        port = free_port()
        name = name or f"{kind}-{port}"
        if kind == "livegate":
            argv = [os.path.join(self.bin, "livegate"), "serve", "--listen", f"127.0.0.1:{port}",
                    "--jwt-hmac-secret", SECRET, "--jwt-algorithms", "HS256",
                    "--publish-api-key", PUBLISH_KEY, "--log", "warn"]
            if not embedded:
                argv += ["--engine", "redis", "--redis-url", self.redis_url]
            p = self.start(name, pinned(SERVER_CORE, argv))
            wait_http(f"http://127.0.0.1:{port}/readyz", p)
        else:
            env = {"PORT": str(port), "REDIS_URL": self.redis_url, "JWT_SECRET": SECRET}
            p = self.start(name, pinned(SERVER_CORE, ["node", "server.mjs"]), env=env, cwd=PEER_DIR)
            wait_http(f"http://127.0.0.1:{port}/healthz", p)
        p.url = f"http://127.0.0.1:{port}"
        return p

    def loadgen(self, label, servers, flags, timeout=900, check=True):
        """Runs the load generator pinned to its core; returns its JSON report."""
        self.seq += 1
        report = os.path.join(self.work, f"lg-{self.seq:02d}-{label}.json")
        argv = [os.path.join(self.bin, "livegate-loadgen"), "--url", ",".join(s.url for s in servers),
                "--watch-pid", ",".join(str(s.pid) for s in servers), "--report", report, "-q"]
        if self.redis_url:
            argv += ["--redis-url", self.redis_url]
        argv += [str(f) for f in flags]
        env = dict(os.environ, LOADGEN_JWT_SECRET=SECRET, LOADGEN_PUBLISH_KEY=PUBLISH_KEY)
        log(f"loadgen {label}: {' '.join(str(f) for f in flags)}")
        with open(os.path.join(self.work, f"lg-{self.seq:02d}-{label}.log"), "wb") as out:
            r = subprocess.run(pinned(LOADGEN_CORE, argv), stdout=subprocess.DEVNULL, stderr=out,
                               env=env, timeout=timeout)
        if not os.path.exists(report):
            raise RuntimeError(f"loadgen {label} exited {r.returncode} without a report")
        with open(report) as f:
            data = json.load(f)
        data["exit_code"] = r.returncode
        self.runs[f"{self.seq:02d}-{label}"] = data
        for s in servers:
            if not s.alive():
                raise RuntimeError(f"{s.name} died during {label}:\n{s.tail()}")
        return data

    # --- scenarios ---
    def idle(self, kind):
        points = []
        sizes = self.args.idle_sizes
        for n in sizes:
            srv = self.start_server(kind)
            time.sleep(1.0)
            baseline = proc_sample(srv.pid)
            r = self.loadgen(f"idle-{kind}-{n}", [srv], [
                "-n", n, "--rate", 0, "--warmup", "0s", "--duration", "4s", "--source-addrs", 8,
                "--connect-concurrency", 256])
            step = r["steps"][0]
            server = step["servers"][0]
            c = r["connect"]
            points.append({
                "connections": c["subscribed"], "target": n, "failed": c["failed"],
                "baseline_kb": baseline, "rss_kb": server["rss_kb"], "rss_anon_kb": server["rss_anon_kb"],
                "per_conn_kb": (server["rss_kb"] - baseline) / max(1, c["subscribed"]),
                "connects_per_s": c["connects_per_s"],
                "cpu_us_per_handshake": c["servers"][0]["cpu_us_per_handshake"],
                "to_subscribed_ms": c["to_subscribed_ms"],
            })
            self.stop(srv)
        xs = [p["connections"] for p in points]
        ys = [p["rss_kb"] for p in points]
        slope, intercept = fit(xs, ys)
        return {"points": points, "slope_kb_per_conn": slope, "intercept_kb": intercept}

    def idle_multi(self, kind, per_process):
        """Past the per-process file cap: two servers, each with its own load generator."""
        a, b = self.start_server(kind, name=f"{kind}-multi-a"), self.start_server(kind, name=f"{kind}-multi-b")
        time.sleep(1.0)
        base = [proc_sample(a.pid), proc_sample(b.pid)]
        procs = []
        for i, srv in enumerate((a, b)):
            self.seq += 1
            report = os.path.join(self.work, f"lg-{self.seq:02d}-idle-multi-{kind}-{i}.json")
            argv = pinned(LOADGEN_CORE, [
                os.path.join(self.bin, "livegate-loadgen"), "--url", srv.url, "--watch-pid", str(srv.pid),
                "--report", report, "-q", "--redis-url", self.redis_url, "-n", str(per_process),
                "--rate", "0", "--warmup", "0s", "--duration", "6s", "--instance", str(i),
                "--connect-concurrency", "128"])
            env = dict(os.environ, LOADGEN_JWT_SECRET=SECRET)
            procs.append((report, subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, env=env)))
        reports = []
        for report, p in procs:
            p.wait(timeout=600)
            with open(report) as f:
                reports.append(json.load(f))
        for i, r in enumerate(reports):
            self.runs[f"idle-multi-{kind}-{i}"] = r
        total = sum(r["connect"]["subscribed"] for r in reports)
        rss = [r["steps"][0]["servers"][0]["rss_kb"] for r in reports]
        self.stop(a)
        self.stop(b)
        return {"processes": 2, "connections": total, "rss_kb": rss, "baseline_kb": base,
                "per_conn_kb": (sum(rss) - sum(base)) / max(1, total)}

    def fanout(self, kind, projects, max_p99, nodes=1):
        conns = self.args.connections
        label = f"fanout-{projects}" if nodes == 1 else "two-nodes"
        recipients = conns // projects  # every connection takes both channels: all of a project's
        rates = [d / recipients for d in self.args.delivery_steps]
        servers = [self.start_server(kind, name=f"{kind}-{label}-{i}") for i in range(nodes)]
        r = self.loadgen(f"{label}-{kind}", servers, [
            "-n", conns, "--projects", projects, "--rate", ",".join(f"{x:g}" for x in rates),
            "--warmup", self.args.warmup, "--duration", self.args.duration, "--drain", "2s",
            "--stop-on-fail", "--max-p99", max_p99, "--source-addrs", 8])
        for s in servers:
            self.stop(s)
        steps = [summarize_step(s, recipients) for s in r["steps"]]
        clean = [s for s in steps if s["clean"]]
        best = max(clean, key=lambda s: s["deliveries_per_s"]) if clean else None
        busiest = max(steps, key=lambda s: s["server_cpu_share"]) if steps else None
        out = {"connections": conns, "projects": projects, "nodes": nodes, "max_p99_ms": max_p99,
               "connect": connect_summary(r), "steps": steps, "highest_clean": best,
               "saturation": busiest}
        if best and not self.args.no_half:
            half_rate = best["rate_target"] / 2
            servers = [self.start_server(kind, name=f"{kind}-{label}-half-{i}") for i in range(nodes)]
            h = self.loadgen(f"{label}-half-{kind}", servers, [
                "-n", conns, "--projects", projects, "--rate", f"{half_rate:g}", "--warmup", "2s",
                "--duration", self.args.duration, "--drain", "2s", "--max-p99", max_p99,
                "--source-addrs", 8])
            for s in servers:
                self.stop(s)
            out["half_rate"] = summarize_step(h["steps"][0], recipients)
        return out

    def handshakes(self, kind):
        srv = self.start_server(kind)
        r = self.loadgen(f"handshakes-{kind}", [srv], [
            "-n", 128, "--churn", "--connect-concurrency", 128, "--rate", 0, "--warmup", "2s",
            "--duration", self.args.duration, "--source-addrs", 32, "--projects", 10])
        self.stop(srv)
        s = r["steps"][0]
        return {
            "handshakes": s["handshakes"], "handshakes_per_s": s["handshakes_per_s"],
            "server_cpu_share": s["servers"][0]["cpu_share"],
            "cpu_us_per_handshake": s["servers"][0]["cpu_us_per_handshake"],
            "loadgen_cpu_share": s["loadgen"]["cpu_share"],
            "handshake_ms": s["handshake_ms"], "failures": r["totals"]["failures"],
        }


def connect_summary(r):
    c = r["connect"]
    return {"subscribed": c["subscribed"], "failed": c["failed"], "failures": c["failures"],
            "connects_per_s": c["connects_per_s"], "to_subscribed_ms": c["to_subscribed_ms"],
            "cpu_us_per_handshake": [s.get("cpu_us_per_handshake") for s in c["servers"]]}


def summarize_step(s, recipients):
    lat = s["latency_ms"]
    servers = s["servers"]
    cpu = sum(x.get("cpu_s", 0) for x in servers)
    return {
        "rate_target": s["rate_target"], "target_deliveries_per_s": s["rate_target"] * recipients,
        "deliveries_per_s": s["deliveries_per_s"], "expected": s["expected"], "delivered": s["delivered"],
        "lost": s["lost"], "duplicates": s["duplicates"], "disconnects": s["disconnects"],
        "keeping_up": s["keeping_up"], "clean": s["clean"],
        "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
        "p999_ms": lat.get("p999"), "max_ms": lat.get("max"),
        "server_cpu_share": sum(x.get("cpu_share", 0) for x in servers),
        "server_cpu_us_per_delivery": cpu * 1e6 / max(1, s["deliveries_per_s"] * s["measure_s"]),
        "server_rss_kb": [x.get("rss_kb") for x in servers],
        "loadgen_cpu_share": s["loadgen"]["cpu_share"],
        "loadgen_cpu_us_per_delivery": s["loadgen"].get("cpu_us_per_delivery"),
        "loadgen_saturated": s["loadgen_saturated"],
    }


def fit(xs, ys):
    n = len(xs)
    if n < 2:
        return (ys[0] / xs[0] if xs and xs[0] else 0.0), 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return slope, my - slope * mx


# --- report ---
def machine_info():
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), None)
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "node": cmd(["node", "--version"]), "rustc": cmd(["rustc", "--version"]),
        "redis": cmd(["redis-server", "--version"]),
        "open_files_hard_limit": cmd(["bash", "-c", "ulimit -Hn"]),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "commit": cmd(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]),
        "livegate_binary_built": binary_time(),
        "uncommitted_changes_in_crates": bool(cmd(["git", "-C", ROOT, "status", "--porcelain", "crates"])),
    }


def binary_time():
    """When the measured livegate binary was built: HEAD may have moved since."""
    path = os.path.join(os.path.abspath(ARGS_BIN[0]), "livegate") if ARGS_BIN else None
    try:
        return datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OSError, TypeError):
        return None


ARGS_BIN = []


def ratio(a, b):
    return a / b if a and b else None


def targets(res):
    """The issue's targets, each against the peer measured in the same run."""
    sc = res["scenarios"]
    out = []

    def get(path, kind):
        cur = sc
        for k in path:
            cur = (cur or {}).get(k if k != "*" else kind)
        return cur

    lg_best = get(["fanout-100", "*", "highest_clean", "deliveries_per_s"], "livegate")
    nd_best = get(["fanout-100", "*", "highest_clean", "deliveries_per_s"], "node")
    out.append({"target": "highest clean deliveries/s on one core >= 3x the peer (100 projects)",
                "livegate": lg_best, "node": nd_best, "ratio": ratio(lg_best, nd_best),
                "met": bool(lg_best and nd_best and lg_best >= 3 * nd_best)})
    lg_sat = get(["fanout-100", "*", "saturation", "server_cpu_us_per_delivery"], "livegate")
    nd_sat = get(["fanout-100", "*", "saturation", "server_cpu_us_per_delivery"], "node")
    lg_share = get(["fanout-100", "*", "saturation", "server_cpu_share"], "livegate")
    out.append({"target": "CPU per delivery at saturation <= 1.3x the one-write floor (7.4 us) = 9.6 us "
                f"(busiest step; livegate at {fmt((lg_share or 0) * 100, 0)} % CPU)",
                "livegate": lg_sat, "node": nd_sat, "ratio": ratio(lg_sat, 7.4),
                "met": bool(lg_sat and lg_sat <= 1.3 * 7.4)})
    lg_sat1 = get(["fanout-1", "*", "saturation", "server_cpu_us_per_delivery"], "livegate")
    nd_sat1 = get(["fanout-1", "*", "saturation", "server_cpu_us_per_delivery"], "node")
    lg_share1 = get(["fanout-1", "*", "saturation", "server_cpu_share"], "livegate")
    out.append({"target": "same, one project (10k recipients per publication; busiest step, livegate at "
                f"{fmt((lg_share1 or 0) * 100, 0)} % CPU)",
                "livegate": lg_sat1, "node": nd_sat1, "ratio": ratio(lg_sat1, 7.4),
                "met": bool(lg_sat1 and lg_sat1 <= 1.3 * 7.4)})
    lg_mem = get(["idle", "*", "slope_kb_per_conn"], "livegate")
    nd_mem = get(["idle", "*", "slope_kb_per_conn"], "node")
    out.append({"target": "RSS per idle subscribed connection <= 10 KB (slope)",
                "livegate": lg_mem, "node": nd_mem, "ratio": ratio(lg_mem, nd_mem),
                "met": bool(lg_mem and lg_mem <= 10)})
    lg_hs = get(["handshakes", "*", "cpu_us_per_handshake"], "livegate")
    nd_hs = get(["handshakes", "*", "cpu_us_per_handshake"], "node")
    out.append({"target": "CPU per handshake (JWT included) <= 1/5 of the peer's",
                "livegate": lg_hs, "node": nd_hs, "ratio": ratio(lg_hs, nd_hs),
                "met": bool(lg_hs and nd_hs and lg_hs <= nd_hs / 5)})
    lg_p99 = get(["fanout-100", "*", "half_rate", "p99_ms"], "livegate")
    nd_p99 = get(["fanout-100", "*", "half_rate", "p99_ms"], "node")
    out.append({"target": "p99 publish->client at half the highest clean rate <= 1/3 of the peer's at its own half",
                "livegate": lg_p99, "node": nd_p99, "ratio": ratio(lg_p99, nd_p99),
                "met": bool(lg_p99 and nd_p99 and lg_p99 <= nd_p99 / 3)})
    return out


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(res, svgs):
    L = [f"# livegate benchmark, {res['date']}", ""]
    m = res["machine"]
    L += [f"Machine: {m['cores']} × {m['cpu']}, Linux {m['kernel']}, {m['rustc']}, Node {m['node']}, "
          f"{m['redis']}. Commit {m.get('commit')}, livegate binary built {m.get('livegate_binary_built')}"
          f"{' (with uncommitted changes of other engineers in crates/)' if m.get('uncommitted_changes_in_crates') else ''}. "
          f"Load average at start: {' '.join(m['loadavg_at_start'])}, at end: {' '.join(m.get('loadavg_at_end', []))}.", ""]
    L += ["Servers pinned to core 0, the load generator and Redis to core 1 (taskset); server CPU and RSS "
          "from /proc. One run per cell. **The machine was shared with other agents building and testing "
          "at the same time, so other processes may have shared either core; CPU figures are noisy "
          "(±15 % between runs on this machine class), memory is repeatable.**", ""]
    for n in res["notes"]:
        L.append(f"- {n}")
    L.append("")
    L += ["## Targets (issue 4)", "", "| target | livegate | Node peer | ratio | met |", "|---|---|---|---|---|"]
    for t in res["targets"]:
        L.append(f"| {t['target']} | {fmt(t['livegate'], 2)} | {fmt(t['node'], 2)} | {fmt(t['ratio'], 2)} | {fmt(t['met'])} |")
    L.append("")
    sc = res["scenarios"]
    if "idle" in sc:
        L += ["## Idle memory per subscribed connection", "",
              "Each connection: websocket, authenticated, `ready`, subscribed to `targets` and "
              "`payment-methods` (all in one project). RSS of a fresh server "
              "process; the kernel's ≈4 KB per TCP socket is not in RSS. A process may open "
              f"{FD_CAP:,} files here (`ulimit -Hn`, and root cannot raise it), so 19k is the most one "
              "server process holds; past it, more processes.", "",
              "| server | connections | RSS MB | baseline MB | KB/conn (above baseline) | connects/s | CPU µs/handshake |",
              "|---|---|---|---|---|---|---|"]
        for kind, v in sc["idle"].items():
            if kind.endswith("-multi") or "points" not in v:
                continue
            for p in v["points"]:
                L.append(f"| {LABEL[kind]} | {fmt(p['connections'])} | {fmt(p['rss_kb'] / 1024)} | "
                         f"{fmt(p['baseline_kb'] / 1024)} | {fmt(p['per_conn_kb'], 2)} | {fmt(p['connects_per_s'])} | "
                         f"{fmt(p['cpu_us_per_handshake'])} |")
            L.append(f"| {LABEL[kind]} | **slope** | | | **{fmt(v['slope_kb_per_conn'], 2)}** | | |")
        for kind, v in sc["idle"].items():
            if kind.endswith("-multi") and "connections" in v:
                L.append(f"| {LABEL[kind[:-6]]} | {fmt(v['connections'])} over 2 processes | "
                         f"{' + '.join(fmt(x / 1024) for x in v['rss_kb'])} | | {fmt(v['per_conn_kb'], 2)} | | |")
        L.append("")
    for name, title in (("fanout-100", "Fan-out: {n} connections over 100 projects"),
                        ("fanout-1", "Fan-out: {n} connections on one project"),
                        ("two-nodes", "Two nodes behind one Redis (both on core 0): {n} connections alternating between them, 100 projects")):
        if name not in sc:
            continue
        n = next((fmt(v["connections"]) for v in sc[name].values() if "connections" in v), "?")
        L += [f"## {title.format(n=n)}", ""]
        for kind, v in sc[name].items():
            if "steps" not in v:
                L += [f"{LABEL[kind]}: {v.get('error', 'not run')}", ""]
                continue
            best = v.get("highest_clean")
            L += [f"**{LABEL[kind]}**: highest clean {fmt(best['deliveries_per_s']) if best else '–'} deliveries/s "
                  f"(p99 limit {v['max_p99_ms']}); connected {fmt(v['connect']['subscribed'])} at "
                  f"{fmt(v['connect']['connects_per_s'])}/s.", "",
                  "| target deliv/s | delivered/s | lost | dup | p50 ms | p90 | p99 | p999 | max | server CPU | server µs/deliv | RSS MB | loadgen CPU | loadgen µs/deliv | clean |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            rows = list(v["steps"])
            if v.get("half_rate"):
                rows.append(dict(v["half_rate"], half=True))
            for s in rows:
                rss = "+".join(fmt(x / 1024, 0) for x in s["server_rss_kb"] if x)
                tag = " (half of best)" if s.get("half") else ""
                L.append(f"| {fmt(s['target_deliveries_per_s'])}{tag} | {fmt(s['deliveries_per_s'])} | {fmt(s['lost'])} | "
                         f"{fmt(s['duplicates'])} | {fmt(s['p50_ms'], 2)} | {fmt(s['p90_ms'], 2)} | {fmt(s['p99_ms'], 2)} | "
                         f"{fmt(s['p999_ms'], 2)} | {fmt(s['max_ms'], 2)} | {s['server_cpu_share'] * 100:.0f} % | "
                         f"{fmt(s['server_cpu_us_per_delivery'], 2)} | {rss} | {s['loadgen_cpu_share'] * 100:.0f} % | "
                         f"{fmt(s['loadgen_cpu_us_per_delivery'], 2)} | {fmt(s['clean'])} |")
            L.append("")
    if "handshakes" in sc:
        L += ["## Handshakes", "",
              "128 connections cycling as fast as they can: TCP connect, websocket upgrade, Socket.IO CONNECT "
              "with a fresh HS256 token (verified by the server; livegate and the peer also check the "
              "session's revocation in Redis), `ready`, two subscribes acknowledged, close. The server's CPU "
              "covers the whole cycle, teardown included.", "",
              "| server | handshakes/s | server CPU | CPU µs per handshake | p50 ms | p99 ms | failures |",
              "|---|---|---|---|---|---|---|"]
        for kind, v in sc["handshakes"].items():
            if "handshakes" not in v:
                L.append(f"| {LABEL[kind]} | {v.get('error')} | | | | | |")
                continue
            L.append(f"| {LABEL[kind]} | {fmt(v['handshakes_per_s'])} | {v['server_cpu_share'] * 100:.0f} % | "
                     f"{fmt(v['cpu_us_per_handshake'])} | {fmt(v['handshake_ms'].get('p50'), 2)} | "
                     f"{fmt(v['handshake_ms'].get('p99'), 2)} | {sum(v['failures'].values())} |")
        L.append("")
    if svgs:
        L += ["## Plots", ""] + [f"![{t}]({os.path.basename(p)})" for t, p in svgs] + [""]
    L += ["Raw load-generator reports are in the JSON file beside this one (`runs`).", ""]
    return "\n".join(L)


def svg_chart(path, title, xlabel, ylabel, series, logy=False):
    """A small line chart: series = [(label, color, [(x, y), ...])]."""
    W, H, ml, mr, mt, mb = 720, 420, 70, 20, 40, 60
    pts = [(x, y) for _, _, s in series for x, y in s if y is not None and (y > 0 or not logy)]
    if not pts:
        return False
    x0, x1 = 0, max(x for x, _ in pts) * 1.05
    ys = [y for _, y in pts]
    if logy:
        y0, y1 = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))
        ty = lambda y: mt + (H - mt - mb) * (1 - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)))
        yticks = [10 ** e for e in range(int(math.log10(y0)), int(math.log10(y1)) + 1)]
    else:
        y0, y1 = 0, max(ys) * 1.1
        ty = lambda y: mt + (H - mt - mb) * (1 - (y - y0) / (y1 - y0))
        step = nice_step(y1 / 5)
        yticks = [i * step for i in range(int(y1 / step) + 1)]
    tx = lambda x: ml + (W - ml - mr) * (x - x0) / (x1 - x0)
    xstep = nice_step(x1 / 6)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    for yv in yticks:
        y = ty(yv)
        out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{W - mr}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{yv:g}</text>')
    xv = 0
    while xv <= x1:
        x = tx(xv)
        out.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{H - mb}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{H - mb + 16}" text-anchor="middle">{xv:,.0f}</text>')
        xv += xstep
    out.append(f'<rect x="{ml}" y="{mt}" width="{W - ml - mr}" height="{H - mt - mb}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{(ml + W - mr) / 2}" y="{H - 18}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text transform="translate(16 {(mt + H - mb) / 2}) rotate(-90)" text-anchor="middle">{ylabel}</text>')
    for i, (label, color, s) in enumerate(series):
        s = [(x, y) for x, y in s if y is not None and (y > 0 or not logy)]
        if not s:
            continue
        d = " ".join(f"{tx(x):.1f},{ty(y):.1f}" for x, y in s)
        dash = ' stroke-dasharray="6 4"' if "p50" in label else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y in s:
            out.append(f'<circle cx="{tx(x):.1f}" cy="{ty(y):.1f}" r="3" fill="{color}"/>')
        ly = mt + 16 + 16 * i
        out.append(f'<line x1="{ml + 12}" y1="{ly - 4}" x2="{ml + 32}" y2="{ly - 4}" stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{ml + 38}" y="{ly}">{label}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def nice_step(raw):
    if raw <= 0:
        return 1
    e = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * e:
            return m * e
    return 10 * e


def plots(res, out_dir, stem):
    made = []
    sc = res["scenarios"]
    for name in ("fanout-100", "fanout-1", "two-nodes"):
        if name not in sc:
            continue
        series = []
        for kind, v in sc[name].items():
            if "steps" not in v:
                continue
            series.append((f"{LABEL[kind]} p99", COLOR[kind], [(s["deliveries_per_s"], s["p99_ms"]) for s in v["steps"]]))
            series.append((f"{LABEL[kind]} p50", COLOR[kind], [(s["deliveries_per_s"], s["p50_ms"]) for s in v["steps"]]))
        path = os.path.join(out_dir, f"{stem}-latency-{name}.svg")
        if svg_chart(path, f"Publish → client latency against delivery rate ({name})",
                     "deliveries per second (one server core)", "latency, ms (log)", series, logy=True):
            made.append((f"latency against rate, {name}", path))
    if "idle" in sc:
        series = [(LABEL[k], COLOR[k], [(0, v["points"][0]["baseline_kb"] / 1024)]
                   + [(p["connections"], p["rss_kb"] / 1024) for p in v["points"]])
                  for k, v in sc["idle"].items() if v.get("points")]
        path = os.path.join(out_dir, f"{stem}-memory.svg")
        if svg_chart(path, "RSS against idle subscribed connections (one process)", "connections", "RSS, MB", series):
            made.append(("RSS against connections", path))
    return made


# --- main ---
def smoke(b):
    """Tiny sizes on the embedded engine through the HTTP publish API; fails on any loss."""
    passed, failed = 0, 0
    srv = b.start_server("livegate", embedded=True)
    checks = []
    try:
        r = b.loadgen("smoke-fanout", [srv], [
            "-n", 50, "--projects", 2, "--mix", "targets,payment-methods,targets+payment-methods",
            "--publish", "http", "--publish-url", srv.url, "--rate", "20,40", "--warmup", "300ms",
            "--duration", "2s", "--drain", "1s", "--max-p99", "1s", "--fail-on-loss"])
        for s in r["steps"]:
            checks.append((f"fan-out at {s['rate_target']:g}/s: {s['delivered']}/{s['expected']} delivered, "
                           f"{s['duplicates']} dup, p99 {s['latency_ms'].get('p99')} ms",
                           s["lost"] == 0 and s["duplicates"] == 0 and s["delivered"] > 0 and s["clean"]))
        checks.append(("connections: 50 subscribed, no failure, no misrouted delivery",
                       r["connect"]["subscribed"] == 50 and r["connect"]["failed"] == 0
                       and r["totals"]["misrouted"] == 0 and r["exit_code"] == 0))
        p = b.loadgen("smoke-polling", [srv], [
            "-n", 10, "--projects", 2, "--transport", "polling", "--publish", "http", "--publish-url", srv.url,
            "--rate", "10", "--warmup", "300ms", "--duration", "2s", "--drain", "1s", "--max-p99", "1s",
            "--fail-on-loss"])
        s = p["steps"][0]
        checks.append((f"long-polling: {p['connect']['subscribed']}/10 subscribed, "
                       f"{s['delivered']}/{s['expected']} delivered, p99 {s['latency_ms'].get('p99')} ms",
                       p["connect"]["subscribed"] == 10 and s["lost"] == 0 and s["delivered"] > 0
                       and p["exit_code"] == 0))
        h = b.loadgen("smoke-handshakes", [srv], [
            "-n", 8, "--churn", "--rate", 0, "--warmup", "200ms", "--duration", "1s", "--source-addrs", 4])
        s = h["steps"][0]
        checks.append((f"handshake churn: {s['handshakes']} handshakes, "
                       f"{fmt(s['servers'][0]['cpu_us_per_handshake'])} µs CPU each",
                       s["handshakes"] > 0 and not h["totals"]["failures"]))
    except Exception as e:  # a crash is a failed check, with its reason
        checks.append((f"smoke run: {e}", False))
    finally:
        b.stop(srv)
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
        passed, failed = passed + ok, failed + (not ok)
    print(f"bench-smoke: {passed} passed, {failed} failed")
    return failed == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, embedded engine, under a minute")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma separated")
    ap.add_argument("--servers", default=",".join(SERVERS), help="livegate,node")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--idle-sizes", default=",".join(map(str, IDLE_SIZES)))
    ap.add_argument("--delivery-steps", default=",".join(map(str, DELIVERY_STEPS)))
    ap.add_argument("--duration", default="8s", help="measured window of each step")
    ap.add_argument("--warmup", default="1s")
    ap.add_argument("--no-half", action="store_true", help="skip the half-rate latency runs")
    ap.add_argument("--no-multi", action="store_true", help="skip the 2-process idle run")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    args = ap.parse_args()
    args.idle_sizes = [int(x) for x in args.idle_sizes.split(",") if x]
    args.delivery_steps = [int(x) for x in args.delivery_steps.split(",") if x]
    b = Bench(args)
    ARGS_BIN.append(args.bin_dir)
    try:
        if args.smoke:
            return 0 if smoke(b) else 1
        b.start_redis()
        servers = [s for s in args.servers.split(",") if s]
        only = [s for s in args.only.split(",") if s]
        machine = machine_info()
        res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine, "scenarios": {}, "notes": [
                   "Servers: livegate release build on its Redis engine (`--log warn`); the Node.js peer "
                   "(bench/peers/node-socketio: socket.io 4.8, @socket.io/redis-adapter, ws without "
                   "permessage-deflate). Both receive the same publications from Redis.",
                   "Publications: `target.updated` and `payment-method.removed` alternating; every "
                   "connection subscribes to both channels of its project, so each publication reaches "
                   "every connection of its project once. Latency is from the load generator's time stamp "
                   "before PUBLISH to the frame's arrival (same clock), with up to 0.2 ms of arrival "
                   "batching (`--batch-interval`).",
               ]}
        sc = res["scenarios"]
        t0 = time.time()
        for name in only:
            sc[name] = {}
            for kind in servers:
                log(f"scenario {name} on {kind}")
                try:
                    if name == "idle":
                        sc[name][kind] = b.idle(kind)
                        if not args.no_multi:
                            sc[name][f"{kind}-multi"] = b.idle_multi(kind, max(args.idle_sizes))
                    elif name == "fanout-1":
                        sc[name][kind] = b.fanout(kind, 1, "1s")
                    elif name == "fanout-100":
                        sc[name][kind] = b.fanout(kind, 100, "50ms")
                    elif name == "two-nodes":
                        sc[name][kind] = b.fanout(kind, 100, "50ms", nodes=2)
                    elif name == "handshakes":
                        sc[name][kind] = b.handshakes(kind)
                except Exception as e:  # record it, go on with the other cells
                    log(f"scenario {name} on {kind} failed: {e}")
                    sc[name][kind] = {"error": str(e)}
                finally:
                    for p in list(b.procs):
                        if p is not b.redis:
                            b.stop(p)
        res["elapsed_s"] = time.time() - t0
        res["machine"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
        res["targets"] = targets(res)
        os.makedirs(args.out, exist_ok=True)
        stem = datetime.date.today().isoformat() + (f"-{args.tag}" if args.tag else "")
        svgs = plots(res, args.out, stem)
        res["plots"] = [os.path.basename(p) for _, p in svgs]
        with open(os.path.join(args.out, f"{stem}.md"), "w") as f:
            f.write(markdown(res, svgs))
        res["runs"] = b.runs
        with open(os.path.join(args.out, f"{stem}.json"), "w") as f:
            json.dump(res, f, indent=1)
        log(f"wrote {args.out}/{stem}.json, {stem}.md and {len(svgs)} plots in {res['elapsed_s']:.0f}s")
        return 0
    finally:
        b.stop_all()
        if not os.environ.get("BENCH_KEEP_WORK"):
            shutil.rmtree(b.work, ignore_errors=True)
        else:
            log(f"work directory kept: {b.work}")


if __name__ == "__main__":
    sys.exit(main())
