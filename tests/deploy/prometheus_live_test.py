#!/usr/bin/env python3
"""Runs ratchet's dashboard and alert rules against a real Prometheus scraping a real cluster.

  prometheus_live_test.py --ratchet=build/bin/ratchet --source-dir=.
      [--prometheus=/usr/bin/prometheus] [--promtool=/usr/bin/promtool]
      [--html=PATH]   (or RATCHET_DASHBOARD_HTML=PATH: also render the dashboard page)
      [--keep]        (keep the temporary folder: logs, Prometheus's data)

On loopback, with free ports and the embedded SQLite store, it starts a
coordinator, a verifier and a CPU worker, each serving /metrics (--metrics on
port 0, read back from their logs), and an OpenAI-compatible stub that plays
the language model of a small llm campaign (so the LLM panels have data).
Prometheus is started with a config made from deploy/prometheus/prometheus.yml
(the same job names, the three services as static loopback targets, 1 s
scrape and rule evaluation) and the repository's alerts.yml as its rule file.
It submits two small campaigns on tasks/cpu/matmul (evolve, and llm) and
waits until Prometheus has scraped evaluations, verdicts and LLM usage. Then:

  - every target expression of every panel in
    deploy/grafana/dashboards/ratchet.json, template variables substituted
    ($campaign = All), must return series from /api/v1/query and, for graph
    panels, from /api/v1/query_range over the run;
  - every alert rule in deploy/prometheus/alerts.yml must evaluate (instant
    query, and Prometheus reports the loaded rule healthy); a rule that is
    quiet on this healthy cluster is taken apart: its comparisons removed,
    each operand of and/unless/or and each side of a comparison (absent(X):
    X) must return data, or at least the metric it selects must exist;
  - before any campaign, a rule's "no evaluation" operand holds (a counter
    that has counted nothing has no series; the rule must read that as 0);
  - no alert fires on the healthy cluster; `promtool check rules` passes.

It prints a table (query -> series), and kills every process it started,
also on failure. Exit 0 when all holds, 1 otherwise.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    import yaml
except ImportError:
    sys.exit("prometheus_live_test.py needs PyYAML (Debian: apt-get install python3-yaml; "
             "scripts/install-deps.sh installs it)")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_dashboard as rd  # noqa: E402

FAILURES = []
ROWS = []  # (what, query, series or error)
SCRAPE_S = 1


def fail(message):
    FAILURES.append(message)
    print("FAIL " + message, flush=True)


def note(message):
    print(message, flush=True)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def poll(what, predicate, timeout_s, interval_s=0.5):
    """predicate() until it returns a truthy value or timeout_s pass; raises on timeout."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a service still starting
            last_error = e
        time.sleep(interval_s)
    raise TimeoutError("%s: not after %d s%s" % (what, timeout_s,
                                                 " (last error: %s)" % last_error if last_error else ""))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- processes

class Processes:
    """Every process the test starts, in its own process group, stopped at the end."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []  # (name, Popen, log path)

    def start(self, name, argv, cwd=None):
        log = os.path.join(self.workdir, name + ".log")
        with open(log, "w") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=cwd or self.workdir, start_new_session=True)
        self.procs.append((name, p, log))
        return p, log

    def check_running(self):
        for name, p, log in self.procs:
            if p.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (name, p.returncode, read(log)[-3000:]))

    def stop_all(self):
        # Workers and the verifier before the coordinator, Prometheus last.
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for name, p, _ in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        for name, p, _ in self.procs:  # anything left in their groups (harness children)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def logs(self, tail=2500):
        return "\n".join("---- %s (%s)\n%s" % (name, log, read(log)[-tail:]) for name, _, log in self.procs)


def metrics_port(log, service, timeout_s=90):
    def find():
        m = re.findall(r"metrics on port (\d+)", read(log))
        return int(m[-1]) if m else None
    return poll("%s: 'metrics on port' in %s" % (service, log), find, timeout_s)


# ---------------------------------------------------------------- the model

KERNEL_INCLUDE = "#include <ratchet/kernel_abi.h>\n"


class ChatStub(http.server.BaseHTTPRequestHandler):
    """OpenAI-compatible chat completions: every answer is a new, correct edit
    of the incumbent (a comment line), with token usage."""
    answered = 0
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_error(404)
            return
        with ChatStub.lock:
            ChatStub.answered += 1
            n = ChatStub.answered
        content = ("IDEA: variant %d, a note for the reader\n<<<<<<< SEARCH kernel.cc\n%s=======\n"
                   "// variant %d\n%s>>>>>>> REPLACE\n" % (n, KERNEL_INCLUDE, n, KERNEL_INCLUDE))
        body = json.dumps({
            "id": "chatcmpl-live-%d" % n, "object": "chat.completion", "model": "live-stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# ---------------------------------------------------------------- PromQL taking apart

SET_OP = re.compile(r"\b(and|or|unless)\b(\s*(?:on|ignoring)\s*\([^)]*\))?", re.I)
CMP_OP = re.compile(r"(==|!=|>=|<=|>|<)(\s*bool\b)?(\s*(?:on|ignoring)\s*\([^)]*\))?"
                    r"(\s*(?:group_left|group_right)\b(\s*\([^)]*\))?)?")
METRIC = re.compile(r"(?<![\w:\"$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![a-zA-Z0-9_:])(?!\s*\()")
NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
               "unless", "offset", "inf", "nan", "e"}


def top_level_split(expr, pattern):
    """Splits expr at matches of pattern outside (), {}, [] and strings."""
    parts, depth, quote, i, last = [], 0, None, 0, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            m = pattern.match(expr, i)
            # A word operator must start at a word boundary.
            if m and (not m.group(0)[0].isalpha() or i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
                parts.append(expr[last:i])
                i = last = m.end()
                continue
        i += 1
    parts.append(expr[last:])
    return [p.strip() for p in parts if p.strip()]


def wrapped(expr, opening):
    """The text inside `opening(...)` when it spans all of expr, else None."""
    if not expr.startswith(opening) or not expr.endswith(")"):
        return None
    depth = 0
    for i, c in enumerate(expr):
        depth += c in "([{"
        depth -= c in ")]}"
        if depth == 0 and i >= len(opening) - 1 and c == ")":
            return expr[len(opening):-1] if i == len(expr) - 1 else None
    return None


def unwrap(expr):
    """Outer parentheses and absent() taken off: absent(X) rests on X."""
    expr = expr.strip()
    while True:
        inner = wrapped(expr, "(")
        if inner is None:
            inner = wrapped(re.sub(r"^absent\s*\(", "absent(", expr), "absent(")
        if inner is None:
            return expr
        expr = inner.strip()


def atoms(expr):
    """The pieces an alert expression rests on: operands of and/unless/or and
    sides of comparisons, comparisons removed, absent() looked into."""
    expr = unwrap(expr)
    operands = top_level_split(expr, SET_OP)
    if len(operands) > 1:
        return [a for o in operands for a in atoms(o)]
    sides = top_level_split(expr, CMP_OP)
    if len(sides) > 1:
        return [a for s in sides for a in atoms(s)]
    return [expr] if metrics_in(expr) else []


def metrics_in(expr):
    """Metric names selected in expr (not functions, keywords, labels or numbers)."""
    names = []
    cleaned = re.sub(r"\{[^}]*\}", lambda m: "{}", expr)  # label matchers are not metric names
    cleaned = re.sub(r"\[[^\]]*\]", "", cleaned)  # nor durations
    cleaned = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", cleaned)
    for m in METRIC.finditer(cleaned):
        name = m.group(1)
        if name.lower() in NOT_METRICS or re.fullmatch(r"[0-9.e+-]+", name):
            continue
        names.append(name)
    return names


# ---------------------------------------------------------------- the test

def prometheus_config(src, targets, rules_path):
    with open(os.path.join(src, "deploy/prometheus/prometheus.yml")) as f:
        repo = yaml.safe_load(f)
    jobs = [j["job_name"] for j in repo.get("scrape_configs", [])]
    for service in ("coordinator", "verifier", "worker"):
        if "ratchet-" + service not in jobs:
            fail("deploy/prometheus/prometheus.yml has no job ratchet-%s" % service)
    config = {
        "global": {"scrape_interval": "%ds" % SCRAPE_S, "scrape_timeout": "%ds" % SCRAPE_S,
                   "evaluation_interval": "%ds" % SCRAPE_S},
        "rule_files": [rules_path],
        "scrape_configs": [{"job_name": "ratchet-" + service,
                            "static_configs": [{"targets": ["127.0.0.1:%d" % p for p in ports]}]}
                           for service, ports in targets.items()],
    }
    return config


def count_series(data):
    result = data.get("result")
    if data.get("resultType") in ("scalar", "string"):
        return 1
    return len(result or [])


def record(what, expr, n):
    ROWS.append((what, expr, n))


def check_dashboard(prom, dashboard, t0, t1, step):
    values = rd.variables(dashboard, step=step, scrape=SCRAPE_S)
    for panel, target in rd.panel_targets(dashboard):
        title = "%s [%s]" % (panel.get("title"), target.get("refId"))
        expr = rd.substitute(target["expr"], values)
        if re.search(r"\$[A-Za-z_{]", expr):
            fail("panel %s: unsubstituted variable in %s" % (title, expr))
            continue
        try:
            n = count_series(prom.query(expr, at=t1))
        except Exception as e:
            fail("panel %s: query %s: %s" % (title, expr, e))
            record("panel " + title, expr, "error")
            continue
        record("panel " + title, expr, n)
        if n == 0:
            fail("panel %s: %s returned no series" % (title, expr))
        if panel.get("type") in ("timeseries", "graph", "stat", "barchart", "state-timeline"):
            try:
                data = prom.query_range(expr, t0, t1, step)
                n = count_series(data)
                points = sum(len(s.get("values", [])) for s in data.get("result", []))
            except Exception as e:
                fail("panel %s: query_range %s: %s" % (title, expr, e))
                continue
            record("  range %s" % title, "%d points over %.0f s" % (points, t1 - t0), n)
            if n == 0 or points < 2:
                fail("panel %s: query_range of %s: %d series, %d points" % (title, expr, n, points))
    vq = [v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]
    for v in vq:
        q = v.get("definition") or (v.get("query") or {}).get("query", "")
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
        if not m:
            fail("variable %s: %r is not label_values(METRIC, LABEL)" % (v["name"], q))
            continue
        values_found = prom.get("/api/v1/label/%s/values" % m.group(2), {"match[]": m.group(1)})
        record("variable $%s" % v["name"], q, len(values_found))
        if not values_found:
            fail("variable %s: %s has no values" % (v["name"], q))


def check_alerts(prom, src, at):
    with open(os.path.join(src, "deploy/prometheus/alerts.yml")) as f:
        groups = yaml.safe_load(f).get("groups", [])
    rules = [r for g in groups for r in g.get("rules", []) if "alert" in r]
    for rule in rules:
        name, expr = rule["alert"], rule["expr"].strip()
        try:
            n = count_series(prom.query(expr, at=at))
        except Exception as e:
            fail("alert %s: %s: %s" % (name, expr, e))
            record("alert " + name, expr, "error")
            continue
        record("alert " + name, " ".join(expr.split()), n)
        # Whether or not it has data as written (a quiet rule: none on a
        # healthy cluster), what it rests on must have data.
        parts = atoms(expr)
        if not parts:
            fail("alert %s: found nothing to check in %s" % (name, expr))
        for part in parts:
            short = " ".join(part.split())
            try:
                n = count_series(prom.query(part, at=at))
            except Exception as e:
                fail("alert %s: part %s: %s" % (name, short, e))
                continue
            if n:
                record("  %s rests on" % name, short, n)
                continue
            # A selector of label values this run did not produce (harness
            # errors, rejections): the metric itself must exist.
            for metric in metrics_in(part):
                m = count_series(prom.query("count(%s)" % metric, at=at))
                record("  %s rests on" % name, "%s  (metric of: %s)" % (metric, short), m)
                if not m:
                    fail("alert %s: %s has no series (in %s)" % (name, metric, short))
    # Prometheus loaded every rule and evaluates it without error.
    loaded = prom.get("/api/v1/rules", {"type": "alert"})
    seen = {}
    for g in loaded.get("groups", []):
        for r in g.get("rules", []):
            seen[r["name"]] = r
    for rule in rules:
        r = seen.get(rule["alert"])
        if not r:
            fail("alert %s: not loaded by Prometheus" % rule["alert"])
        elif r.get("health") != "ok" or r.get("lastError"):
            fail("alert %s: health %s: %s" % (rule["alert"], r.get("health"), r.get("lastError")))
        elif r.get("state") == "firing":
            fail("alert %s fires on a healthy cluster: %s" % (rule["alert"], r.get("alerts")))
    note("alerts: %d rules loaded by Prometheus, %d evaluated healthy" % (
        len(seen), sum(1 for r in seen.values() if r.get("health") == "ok")))
    return rules


def check_quiet_start(prom, src):
    """Before any campaign: counters that have counted nothing have no series,
    so a rule's "nothing happened" operand must read that as 0 (or on()
    vector(0)) to be true on a cluster that never evaluates anything."""
    r = prom.query("ratchet_evaluations_total").get("result") or []
    if r:
        note("  (ratchet_evaluations_total already has series; quiet-start check skipped)")
        return
    with open(os.path.join(src, "deploy/prometheus/alerts.yml")) as f:
        groups = yaml.safe_load(f).get("groups", [])
    for rule in (r for g in groups for r in g.get("rules", []) if "alert" in r):
        for operand in top_level_split(rule["expr"].strip(), SET_OP):
            if "ratchet_evaluations_total" not in operand or not re.search(r"==\s*0\s*$", operand):
                continue
            short = " ".join(operand.split())
            n = count_series(prom.query(operand))
            record("  %s, no evaluation yet" % rule["alert"], short, n)
            if not n:
                fail("alert %s: with no evaluation counted, %s is not true (no series: "
                     "write it as (... or on() vector(0)) == 0)" % (rule["alert"], short))


def wait_for_data(prom, deadline_s):
    needed = {
        "evaluations": "sum(ratchet_evaluations_total)",
        "verdicts (coordinator)": "sum(ratchet_verdicts_total)",
        "verdicts (verifier)": "sum(ratchet_verifier_verdicts_total)",
        "LLM tokens": "sum(ratchet_llm_tokens_total)",
        "LLM cost": "sum(ratchet_llm_cost_usd_total)",
        "worker jobs": "sum(ratchet_worker_jobs_total)",
    }
    start = time.monotonic()
    pending = dict(needed)
    while pending and time.monotonic() - start < deadline_s:
        for what, q in list(pending.items()):
            r = prom.query(q).get("result") or []
            if r and float(r[0]["value"][1]) > 0:
                note("  %5.1f s: %s > 0" % (time.monotonic() - start, what))
                del pending[what]
        if pending:
            time.sleep(2)
    for what, q in pending.items():
        fail("no %s after %d s (%s)" % (what, deadline_s, q))
    return not pending


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratchet", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    ap.add_argument("--html", default=os.environ.get("RATCHET_DASHBOARD_HTML"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    src = os.path.abspath(args.source_dir)
    ratchet = os.path.abspath(args.ratchet)
    for tool in (args.prometheus, args.promtool):
        if not os.access(tool, os.X_OK):
            print("%s is not installed (Debian: apt-get install prometheus; scripts/install-deps.sh)" % tool)
            return 1
    dashboard = rd.load_dashboard(os.path.join(src, "deploy/grafana/dashboards/ratchet.json"))
    work = tempfile.mkdtemp(prefix="ratchet-prom-live-")
    procs = Processes(work)
    stub = None
    began = time.monotonic()
    try:
        # The model's stand-in, and the coordinator's endpoints file naming it.
        stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChatStub)
        threading.Thread(target=stub.serve_forever, daemon=True).start()
        with open(os.path.join(work, "endpoints.yaml"), "w") as f:
            f.write("endpoints:\n  live-stub: {base_url: 'http://127.0.0.1:%d', models: [live-stub]}\n"
                    % stub.server_address[1])

        port_file = os.path.join(work, "coordinator.port")
        _, clog = procs.start("coordinator", [
            ratchet, "coordinator", "--listen=127.0.0.1:0", "--port-file=" + port_file,
            "--db=sqlite:" + os.path.join(work, "ratchet.db"), "--metrics=127.0.0.1:0",
            "--llm-endpoints=" + os.path.join(work, "endpoints.yaml")])
        port = int(poll("coordinator port file", lambda: read(port_file).strip(), 60))
        address = "127.0.0.1:%d" % port
        _, vlog = procs.start("verifier", [ratchet, "verifier", "--coordinator=" + address,
                                           "--name=live-verifier", "--metrics=127.0.0.1:0",
                                           "--concurrency=1"])
        scratch = os.path.join(work, "scratch-w1")
        os.makedirs(scratch)
        # The worker's CPU peaks are given, not measured: calibration would
        # take the two cores for a while and move with the host's load.
        _, wlog = procs.start("worker-1", [ratchet, "worker", "--coordinator=" + address,
                                           "--name=live-w1", "--scratch=" + scratch,
                                           "--metrics=127.0.0.1:0", "--slots=1",
                                           "--peak-gbps=50", "--peak-gflops=100"])
        targets = {"coordinator": [metrics_port(clog, "coordinator")],
                   "verifier": [metrics_port(vlog, "verifier")],
                   "worker": [metrics_port(wlog, "worker")]}
        poll("worker registered", lambda: "registered as" in read(wlog), 90)
        note("cluster: coordinator %s, metrics on %s" % (address, targets))

        # Prometheus, before any campaign, so rates see their counters start.
        rules_path = os.path.join(work, "alerts.yml")
        shutil.copy(os.path.join(src, "deploy/prometheus/alerts.yml"), rules_path)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            yaml.safe_dump(prometheus_config(src, targets, rules_path), f, sort_keys=False)
        prom_port = None
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            prom_port = free_port()
            p, plog = procs.start("prometheus" + ("" if not attempt else "-%d" % attempt), [
                args.prometheus, "--config.file=" + os.path.join(work, "prometheus.yml"),
                "--storage.tsdb.path=" + os.path.join(work, "tsdb-%d" % attempt),
                "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"])
            prom = rd.Prometheus("http://127.0.0.1:%d" % prom_port)

            def ready():
                if p.poll() is not None:
                    return "exited"
                with urllib.request.urlopen(prom.url + "/-/ready", timeout=5) as r:
                    return r.status == 200
            if poll("prometheus ready", ready, 60) is True:
                break
        else:
            raise RuntimeError("prometheus did not start:\n" + read(plog))
        prom_t0 = time.time()
        note("prometheus: %s (scrape and rule evaluation every %d s)" % (prom.url, SCRAPE_S))

        def all_up():
            r = prom.query("up").get("result") or []
            return len(r) == 3 and all(x["value"][1] == "1" for x in r)
        poll("all three targets up", all_up, 60)
        check_quiet_start(prom, src)

        # Two small campaigns on cpu/matmul: evolve (claims, verdicts) and llm.
        # They end by their evaluations; the wall budgets are far out of the
        # way, so that a slow, busy host delays the data but never cuts off
        # the claims and proposals the panels need.
        common = ("task: kernel\nproblem: %s\nbaseline: %s\ndevice: cpu\nseed: 7\n"
                  "harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, timeout_seconds: 60}\n"
                  % (os.path.join(src, "tasks/cpu/matmul"), os.path.join(src, "tasks/cpu/matmul/baseline")))
        specs = {
            "live-evolve": "name: live-evolve\n" + common +
            "threads: 2\nin_flight_per_thread: 1\nproposer: evolve\n"
            "budget: {max_evaluations: 10, max_wall_seconds: 900}\n"
            "verification: {replays: 1, min_gain: 0.05, significance: 0.05}\n",
            "live-llm": "name: live-llm\n" + common +
            "threads: 1\nin_flight_per_thread: 1\nproposer: llm\n"
            "budget: {max_evaluations: 2, max_wall_seconds: 900}\n"
            "verification: {replays: 1, min_gain: 10}\n"
            "llm:\n  endpoint: live-stub\n"
            "  models: [{name: live-stub, prompt_price_per_1k: 0.001, completion_price_per_1k: 0.002}]\n"
            "  max_cost_usd: 1\n",
        }
        for name, text in specs.items():
            path = os.path.join(work, name + ".yaml")
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([ratchet, "submit", path, "--coordinator=" + address],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError("ratchet submit %s: %s%s" % (name, r.stdout, r.stderr))
            note("submitted %s: campaign %s" % (name, r.stdout.strip()))

        submitted = time.monotonic()
        note("waiting for evaluations, verdicts and LLM usage in Prometheus ...")
        have_data = wait_for_data(prom, 480)
        data_seen = time.monotonic()
        if not have_data:
            # Said here, not only in the logs at the end: what the campaigns did.
            llm_lines = [l for l in read(clog).splitlines() if l.startswith("[campaign 2]")]
            note("LLM stub answered %d requests; live-llm in the coordinator's log:\n  %s"
                 % (ChatStub.answered, "\n  ".join(llm_lines[-20:]) or "(nothing)"))
        procs.check_running()
        # Then for the campaigns to run down (nothing queued or leased), so
        # the graphs show a whole run: at least 60 s, at most 150 s after
        # submitting. Nothing below depends on where this wait ends.
        idle = 0
        while time.monotonic() - submitted < 150 and idle < 3:
            time.sleep(2)
            r = prom.query('sum(ratchet_jobs{state=~"queued|leased"})').get("result") or []
            busy = not r or float(r[0]["value"][1]) > 0
            idle = 0 if busy or time.monotonic() - submitted < 60 else idle + 1
        note("  %.0f s after submitting: %s" % (time.monotonic() - submitted,
                                                "nothing queued or leased" if idle else "still busy"))
        procs.check_running()
        # A series that appeared last (on a busy machine the first verdict can
        # come near the end of the wait) still gets points in every graph:
        # the range ends at least three steps after all the data was there.
        step = 2.0
        time.sleep(max(0.0, 3 * step + SCRAPE_S - (time.monotonic() - data_seen)))
        t1 = time.time()
        check_dashboard(prom, dashboard, prom_t0, t1, step)
        check_alerts(prom, src, t1)

        r = subprocess.run([args.promtool, "check", "rules", os.path.join(src, "deploy/prometheus/alerts.yml")],
                           capture_output=True, text=True, timeout=60)
        record("promtool check rules", "deploy/prometheus/alerts.yml", "ok" if r.returncode == 0 else "FAILED")
        if r.returncode != 0:
            fail("promtool check rules: " + r.stdout + r.stderr)

        if args.html:
            # Rates over 20 s windows: the 4 s that 1 s scrapes give Grafana's
            # $__rate_interval are checked above, but draw as spikes.
            page = rd.render(prom, dashboard, prom_t0, t1, step, overrides={"__rate_interval": "20s"},
                             scrape=SCRAPE_S)
            with open(args.html, "w") as f:
                f.write(page)
            note("dashboard page: %s" % os.path.abspath(args.html))
        procs.check_running()
    except Exception as e:
        fail("%s: %s" % (type(e).__name__, e))
    finally:
        procs.stop_all()
        if stub:
            stub.shutdown()
            stub.server_close()

    width = max([len(r[1]) for r in ROWS] + [10])
    width = min(width, 110)
    note("\n%-44s %-*s %s" % ("what", width, "query", "series"))
    for what, expr, n in ROWS:
        shown = expr if len(expr) <= width else expr[:width - 3] + "..."
        note("%-44s %-*s %s" % (what[:44], width, shown, n))
    note("\nran %.0f s; LLM stub answered %d requests" % (time.monotonic() - began, ChatStub.answered))
    if FAILURES:
        note("\n%d problem(s):" % len(FAILURES))
        for f in FAILURES:
            note("  FAIL " + f)
        note("\nlogs:\n" + procs.logs())
        note("kept %s" % work)
        return 1
    if args.keep:
        note("kept %s" % work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    note("deploy prometheus live: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
