#!/usr/bin/env python3
"""Checks ratchet's deployment files against the real binary and sources.

  check_manifests.py --ratchet=build/bin/ratchet --source-dir=.

Parses docker-compose.yml, every YAML document in deploy/kubernetes/, the
Slurm script, deploy/prometheus/{prometheus,alerts}.yml and Grafana's
provisioning, and checks that:
  - every `ratchet SUBCOMMAND --flag` they run is a subcommand whose flags the
    binary accepts: each flag is given to the real binary, which must stop at
    a later check rather than at "unknown flag" (controls: the stop alone,
    and a flag that does not exist, which must be refused); commands shown in
    comments (ratchet pki, token, status ...) name flags the binary's usage
    lists;
  - ports: what a service publishes, exposes or declares is what its
    --listen/--metrics flags make it listen on; every host:port it dials or
    scrapes is a service listening there;
  - every volume, secret, ConfigMap key and $(VAR) named is defined, and
    credential files are ones `ratchet pki`/`ratchet token` write;
  - every metric (and label) named in alert rules is one ratchet exports;
  - Grafana: every dashboard in deploy/grafana/dashboards/ parses, its panels
    sit on the 24-column grid without overlapping, every metric and label its
    panel targets and template variables name is one ratchet exports, its
    data source is the provisioned one, and the dashboard provider's folder
    is the one compose mounts from deploy/grafana/dashboards/;
  - promtool check config/rules and docker-compose config pass, when those
    tools are installed (skipped with a message otherwise).
Exit 0 when everything holds, 1 with every failure listed otherwise.
"""

import argparse
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    sys.exit("check_manifests.py needs PyYAML (Debian: apt-get install python3-yaml; "
             "scripts/install-deps.sh installs it)")

FAILURES = []
SERVICES = ("coordinator", "worker", "verifier")
STOP = "ratchet-deploy-check-stop"
# Per service subcommand: arguments that make the binary stop at a check
# that runs after its unknown-flag check, and what it then says. The flag
# under test goes after them (the last occurrence of a flag wins).
#   coordinator: unknown flags and positional arguments are refused in one
#     check that names the first unknown flag, else the positional.
#   worker: unknown flags first ("unknown flag --X"), then positionals.
#   verifier: both say "unexpected argument"; --concurrency is checked next.
STOPPERS = {
    "coordinator": ([STOP], "unknown argument " + STOP),
    "worker": ([STOP], "unexpected argument '%s'" % STOP),
    "verifier": (["--concurrency=0"], "--concurrency must be 1..64"),
}
FLAG_RE = re.compile(r"--([a-z][a-z0-9-]*)(=(\"[^\"]*\"|'[^']*'|[^\s\"']*))?")


def fail(where, message):
    FAILURES.append("%s: %s" % (where, message))


def note(message):
    print(message, flush=True)


def run(argv, timeout=20, **kwargs):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return None, out


def port_of(address):
    m = re.search(r":(\d+)$", address or "")
    return int(m.group(1)) if m else None


class Binary:
    def __init__(self, path):
        self.path = path
        self.usage = {}
        self.checked = {}
        self.help_text = run([path, "--help"])[1]

    def usage_of(self, sub):
        if sub not in self.usage:
            self.usage[sub] = run([self.path, sub, "--help"])[1]
        return self.usage[sub]

    def controls(self):
        for sub, (stop, said) in STOPPERS.items():
            rc, out = run([self.path, sub] + stop)
            if rc is None or said not in out:
                fail("ratchet " + sub, "the stop %s does not stop it (rc %s): %s"
                     % (stop, rc, out.strip()[:300]))
            rc, out = run([self.path, sub] + stop + ["--ratchet-no-such-flag=1"])
            if rc is None or rc == 0 or said in out:
                fail("ratchet " + sub, "a flag that does not exist is not refused (rc %s)" % rc)

    def accepts(self, sub, token):
        """None if `ratchet sub token` gets past the unknown-flag check, else why not."""
        key = (sub, token)
        if key in self.checked:
            return self.checked[key]
        stop, said = STOPPERS[sub]
        name = FLAG_RE.match(token).group(1)
        if stop[0].startswith("--" + name + "="):
            argv = [self.path, sub] + stop  # the stop is this flag
        else:
            argv = [self.path, sub] + stop + [token]
        rc, out = run(argv, timeout=15)
        why = None
        if rc is None:
            why = "the binary did not stop (a bare flag that wants a value?)"
        elif said not in out:
            why = "refused by `%s`: %s" % (" ".join(argv[1:]), out.strip().splitlines()[0]
                                           if out.strip() else "rc %d" % rc)
        self.checked[key] = why
        return why


def check_service_command(binary, where, tokens):
    """tokens: the words after `ratchet`. Returns (subcommand, {flag: value})."""
    if not tokens:
        fail(where, "`ratchet` with no subcommand")
        return None, {}
    sub, rest = tokens[0], tokens[1:]
    if sub not in SERVICES:
        fail(where, "runs `ratchet %s`, not a service (coordinator, worker, verifier)" % sub)
        return sub, {}
    flags = {}
    i = 0
    while i < len(rest):
        t = rest[i]
        m = FLAG_RE.fullmatch(t)
        if not m:
            fail(where, "ratchet %s: unexpected argument %r (write flags as --name=value)" % (sub, t))
            i += 1
            continue
        name, value = m.group(1), m.group(3)
        if value is None and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            fail(where, "ratchet %s --%s %s: write it as --%s=VALUE" % (sub, name, rest[i + 1], name))
            i += 2
            continue
        why = binary.accepts(sub, t)
        if why:
            fail(where, "ratchet %s --%s: %s" % (sub, name, why))
        flags[name] = value.strip("\"'") if value is not None else True
        i += 1
    return sub, flags


def comment_commands(path):
    """`ratchet SUB ...` shown in comments: (line number, subcommand, flag names)."""
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.lstrip().startswith("#"):
                continue
            for m in re.finditer(r"(?:^\s*#\s*|[;&|]\s*|\bdo\s+|=\S+\s+|/)ratchet\s+([a-z][a-z-]*)([^;]*)", line):
                flags = [f.group(1) for f in FLAG_RE.finditer(m.group(2))]
                out.append((n, m.group(1), flags))
    return out


def check_comment_commands(binary, path, rel):
    issued = set()
    commands = {c.split()[0] for c in re.findall(r"^  ([a-z][a-z-]*) ", binary.help_text, re.M)}
    for n, sub, flags in comment_commands(path):
        where = "%s:%d" % (rel, n)
        if sub not in commands:
            fail(where, "`ratchet %s` is not a subcommand the binary lists" % sub)
            continue
        known = set(FLAG_RE.findall(binary.help_text + binary.usage_of(sub)))
        known = {k[0] for k in known}
        for flag in flags:
            if flag not in known:
                fail(where, "`ratchet %s --%s`: the binary's usage names no such flag" % (sub, flag))
    with open(path) as f:
        for role, name in re.findall(r"pki issue \S+ (worker|verifier|read|submit|admin):([A-Za-z0-9_.$-]+)", f.read()):
            issued.add(name)
    return issued


def check_pki_file(where, basename, issued):
    """A credential file must be one that `ratchet pki`/`ratchet token` writes."""
    if basename in ("ca.pem", "coordinator.pem", "coordinator.key", "tokens"):
        return
    m = re.fullmatch(r"(.+)\.(pem|key)", basename)
    if not m:
        fail(where, "%s is not a file ratchet pki or ratchet token writes" % basename)
        return
    name = m.group(1)
    if name in issued or any(re.fullmatch(re.sub(r"\\\$\w+|\\\$\\\{\w+\\\}", ".+", re.escape(i)), name)
                             for i in issued):
        return
    fail(where, "%s: no `ratchet pki issue DIR ROLE:%s` in the file's instructions" % (basename, name))


# ---------------------------------------------------------------- compose

def check_compose(binary, src):
    path = os.path.join(src, "docker-compose.yml")
    rel = "docker-compose.yml"
    with open(path) as f:
        doc = yaml.safe_load(f)
    issued = check_comment_commands(binary, path, rel)
    services = doc.get("services") or {}
    secrets = doc.get("secrets") or {}
    volumes = doc.get("volumes") or {}
    listening = {}  # service -> {port: what}
    dials = []  # (where, host, port)
    ratchet_services = {}
    for name, svc in services.items():
        where = "%s: service %s" % (rel, name)
        cmd = svc.get("command")
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        listening[name] = {}
        if cmd and os.path.basename(str(cmd[0])) == "ratchet":
            sub, flags = check_service_command(binary, where, [str(c) for c in cmd[1:]])
            ratchet_services[name] = (sub, flags)
            if sub == "coordinator":
                listening[name][port_of(flags.get("listen", "127.0.0.1:50051"))] = "--listen"
            if "metrics" in flags:
                listening[name][port_of(flags["metrics"])] = "--metrics"
            if "coordinator" in flags:
                host, _, port = flags["coordinator"].rpartition(":")
                dials.append((where + " --coordinator", host, int(port)))
            for flag, value in flags.items():
                if isinstance(value, str) and value.startswith("/run/secrets/"):
                    secret = value[len("/run/secrets/"):]
                    if secret not in [s if isinstance(s, str) else s.get("source")
                                      for s in svc.get("secrets", [])]:
                        fail(where, "--%s=%s: secret %s is not given to the service" % (flag, value, secret))
        elif name == "prometheus":
            listening[name][9090] = "prometheus"
        elif name == "grafana":
            listening[name][3000] = "grafana"
        elif name == "postgres":
            listening[name][5432] = "postgres"
        for p in svc.get("expose", []) or []:
            if int(str(p).split("/")[0]) not in listening[name]:
                fail(where, "exposes %s, but listens on %s" % (p, sorted(listening[name])))
        for p in svc.get("ports", []) or []:
            inner = int(str(p).split("/")[0].split(":")[-1])
            if inner not in listening[name]:
                fail(where, "publishes %s, but listens on %s" % (p, sorted(listening[name])))
        for s in svc.get("secrets", []) or []:
            s = s if isinstance(s, str) else s.get("source")
            if s not in secrets:
                fail(where, "secret %s is not defined under secrets:" % s)
        for v in svc.get("volumes", []) or []:
            source = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if source.startswith(("./", "/")):
                if not os.path.exists(os.path.join(src, source)):
                    fail(where, "bind-mounts %s, which does not exist" % source)
            elif source not in volumes:
                fail(where, "volume %s is not defined under volumes:" % source)
        for dep in svc.get("depends_on", []) or []:
            if dep not in services:
                fail(where, "depends on %s, which is not a service" % dep)
        if name == "worker":
            devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
            if not any("gpu" in (d.get("capabilities") or []) for d in devices):
                fail(where, "reserves no GPU (deploy.resources.reservations.devices)")
    for name, s in secrets.items():
        f = s.get("file", "")
        where = "%s: secret %s" % (rel, name)
        if f.startswith("./pki/"):
            check_pki_file(where, os.path.basename(f), issued)
        elif f and not os.path.exists(os.path.join(src, f)):
            fail(where, "file %s does not exist" % f)
    for where, host, port in dials:
        if port not in listening.get(host, {}):
            fail(where, "%s:%d: no service %s listening on %d" % (host, port, host, port))
    note("compose: %d services, %d run ratchet (%s)" % (
        len(services), len(ratchet_services),
        ", ".join("%s=%s" % (k, v[0]) for k, v in ratchet_services.items())))
    return doc, listening


def check_prometheus(src, compose, listening):
    rel = "deploy/prometheus/prometheus.yml"
    with open(os.path.join(src, rel)) as f:
        prom = yaml.safe_load(f)
    targets = 0
    for job in prom.get("scrape_configs", []):
        where = "%s: job %s" % (rel, job.get("job_name"))
        for sc in job.get("static_configs", []):
            for t in sc.get("targets", []):
                host, _, port = t.rpartition(":")
                targets += 1
                if host == "localhost" and job.get("job_name") == "prometheus":
                    continue
                if int(port) not in listening.get(host, {}):
                    fail(where, "target %s: no compose service %s with --metrics on %s" % (t, host, port))
        for sd in job.get("dns_sd_configs", []):
            for n in sd.get("names", []):
                targets += 1
                if int(sd.get("port", 0)) not in listening.get(n, {}):
                    fail(where, "DNS name %s port %s: no compose service %s listening there" % (n, sd.get("port"), n))
    # Rule files must be mounted where the config says, from files that exist.
    mounts = {}
    for v in (compose["services"].get("prometheus") or {}).get("volumes", []):
        parts = v.split(":")
        mounts[parts[1]] = parts[0]
    for rf in prom.get("rule_files", []):
        if rf not in mounts:
            fail(rel, "rule file %s is not mounted into the prometheus service" % rf)
        elif not os.path.exists(os.path.join(src, mounts[rf])):
            fail(rel, "rule file %s comes from %s, which does not exist" % (rf, mounts[rf]))
    config_path = (compose["services"]["prometheus"].get("command") or [""])[0]
    if "--config.file=/etc/prometheus/prometheus.yml" not in (compose["services"]["prometheus"].get("command") or []):
        fail("docker-compose.yml", "prometheus is not started with the mounted config (%s)" % config_path)
    # Grafana's data source.
    for ds_file in glob.glob(os.path.join(src, "deploy/grafana/provisioning/datasources/*.yml")):
        with open(ds_file) as f:
            for ds in (yaml.safe_load(f) or {}).get("datasources", []):
                m = re.match(r"https?://([^:/]+):(\d+)", ds.get("url", ""))
                if not m or int(m.group(2)) not in listening.get(m.group(1), {}):
                    fail(os.path.relpath(ds_file, src), "data source %s: nothing listens there" % ds.get("url"))
    note("prometheus.yml: %d scrape jobs, %d targets" % (len(prom.get("scrape_configs", [])), targets))
    return prom


# ---------------------------------------------------------------- metrics

def exported_metrics(src):
    """{family: (type, set of label names)} from the sources' Build*().Name(...)."""
    families = {}
    for pattern in ("common/*.cc", "coordinator/*.cc", "worker/*.cc", "services/*/*.cc"):
        for path in glob.glob(os.path.join(src, pattern)):
            if path.endswith("_test.cc"):
                continue
            with open(path) as f:
                text = f.read()
            labels = set(re.findall(r"\{\s*\"([a-z_]+)\"\s*,", text))
            for kind, name in re.findall(r"Build(Counter|Gauge|Histogram|Summary)\(\)\s*\.Name\(\"([a-z_:]+)\"\)", text):
                families[name] = (kind, labels)
    return families


def check_alerts(src, families):
    rel = "deploy/prometheus/alerts.yml"
    with open(os.path.join(src, rel)) as f:
        rules = yaml.safe_load(f)
    n = 0
    used = set()
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            n += 1
            where = "%s: %s" % (rel, rule.get("alert") or rule.get("record"))
            expr = rule.get("expr", "")
            for m in re.finditer(r"\b(ratchet_[a-z0-9_]+)(\{[^}]*\})?", expr):
                name, matchers = m.group(1), m.group(2) or ""
                family = name
                for suffix in ("_bucket", "_sum", "_count"):
                    if name not in families and name.endswith(suffix) and name[:-len(suffix)] in families:
                        family = name[:-len(suffix)]
                if family not in families:
                    fail(where, "metric %s is not exported by ratchet (sources: %s)" % (name, ", ".join(sorted(families))))
                    continue
                used.add(family)
                for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers):
                    if label not in families[family][1] and label not in ("job", "instance"):
                        fail(where, "%s has no label %s" % (family, label))
            for label in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
                for l in filter(None, (x.strip() for x in label.split(","))):
                    if l not in ("job", "instance") and not any(l in fam[1] for fam in families.values()):
                        fail(where, "groups by %s, a label no ratchet metric has" % l)
    note("alerts.yml: %d rules over %d of ratchet's %d metric families (%s)" % (
        n, len(used), len(families), ", ".join(sorted(used))))


# ---------------------------------------------------------------- grafana

LABELS_EVERYWHERE = ("job", "instance")


def check_promql_names(where, expr, families, used):
    """Metric and label names in a PromQL expression against what ratchet exports."""
    for m in re.finditer(r"\b(ratchet_[a-z0-9_]+)(\{[^}]*\})?", expr):
        name, matchers = m.group(1), m.group(2) or ""
        family, extra = name, ()
        for suffix in ("_bucket", "_sum", "_count"):
            if name not in families and name.endswith(suffix) and name[:-len(suffix)] in families:
                family = name[:-len(suffix)]
                extra = ("le",) if suffix == "_bucket" else ()
        if family not in families:
            fail(where, "metric %s is not exported by ratchet" % name)
            continue
        used.add(family)
        for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers):
            if label not in families[family][1] and label not in LABELS_EVERYWHERE + extra:
                fail(where, "%s has no label %s" % (family, label))
    names = set(re.findall(r"\b(ratchet_[a-z0-9_]+)", expr))
    labels = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {x.strip() for x in group.split(",") if x.strip()}
    # legendFormat / label_replace sources are checked by the caller.
    for label in labels:
        if label in LABELS_EVERYWHERE or (label == "le" and any(n.endswith("_bucket") for n in names)):
            continue
        if not any(label in families.get(n, families.get(re.sub(r"_(bucket|sum|count)$", "", n), ("", set())))[1]
                   for n in names):
            fail(where, "groups by %s, a label none of %s has" % (label, ", ".join(sorted(names)) or "its metrics"))
    return labels


def check_grafana(src, compose, families):
    board_dir = os.path.join(src, "deploy/grafana/dashboards")
    boards = sorted(glob.glob(os.path.join(board_dir, "*.json")))
    if not boards:
        fail("deploy/grafana/dashboards", "no dashboard JSON")
    uids = set()
    for ds_file in glob.glob(os.path.join(src, "deploy/grafana/provisioning/datasources/*.yml")):
        with open(ds_file) as f:
            uids |= {ds.get("uid") for ds in (yaml.safe_load(f) or {}).get("datasources", [])}
    used = set()
    panels_n = targets_n = 0
    for path in boards:
        rel = os.path.relpath(path, src)
        try:
            with open(path) as f:
                board = json.load(f)
        except ValueError as e:
            fail(rel, "not JSON: %s" % e)
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in board:
                fail(rel, "no %s" % key)
        variables = {}
        for v in (board.get("templating") or {}).get("list", []):
            variables[v.get("name")] = v
            where = "%s: variable %s" % (rel, v.get("name"))
            if v.get("type") == "datasource":
                if v.get("query") != "prometheus":
                    fail(where, "is not a prometheus data source variable")
                if (v.get("current") or {}).get("value") not in uids:
                    fail(where, "defaults to %s, not a provisioned data source (%s)"
                         % ((v.get("current") or {}).get("value"), ", ".join(sorted(uids))))
            elif v.get("type") == "query":
                q = v.get("definition") or (v.get("query") or {}).get("query", "")
                m = re.fullmatch(r"label_values\((ratchet_[a-z0-9_]+)(?:\{[^}]*\})?\s*,\s*(\w+)\)", q.strip())
                if not m:
                    fail(where, "%r is not label_values(ratchet_METRIC, LABEL)" % q)
                elif m.group(1) not in families:
                    fail(where, "metric %s is not exported by ratchet" % m.group(1))
                elif m.group(2) not in families[m.group(1)][1]:
                    fail(where, "%s has no label %s" % (m.group(1), m.group(2)))
                else:
                    used.add(m.group(1))
        panels = []
        for p in board.get("panels") or []:
            panels.extend(p.get("panels") or [] if p.get("type") == "row" else [p])
        cells = {}
        ids = set()
        for p in panels:
            panels_n += 1
            where = "%s: panel %r" % (rel, p.get("title"))
            if p.get("id") in ids:
                fail(where, "id %s is used twice" % p.get("id"))
            ids.add(p.get("id"))
            g = p.get("gridPos") or {}
            if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] < 0 or g["x"] + g["w"] > 24:
                fail(where, "gridPos %s is not on the 24-column grid" % g)
            else:
                for x in range(g["x"], g["x"] + g["w"]):
                    for y in range(g["y"], g["y"] + g["h"]):
                        if (x, y) in cells:
                            fail(where, "overlaps panel %r" % cells[(x, y)])
                            break
                        cells[(x, y)] = p.get("title")
                    else:
                        continue
                    break
            for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]:
                uid = (ds or {}).get("uid") if isinstance(ds, dict) else ds
                if uid not in ("${datasource}", "$datasource") and uid not in uids:
                    fail(where, "data source %r is neither ${datasource} nor a provisioned uid" % uid)
            if not p.get("targets"):
                fail(where, "has no targets")
            for t in p.get("targets") or []:
                targets_n += 1
                expr = t.get("expr") or ""
                twhere = "%s [%s]" % (where, t.get("refId"))
                if not expr:
                    fail(twhere, "no expr")
                    continue
                if not re.search(r"\bratchet_[a-z0-9_]+", expr):
                    fail(twhere, "queries no ratchet metric: %s" % expr)
                for var in re.findall(r"\$\{?([A-Za-z_]\w*)", expr):
                    if var not in variables and not var.startswith("__"):
                        fail(twhere, "names $%s, which the dashboard does not define" % var)
                labels = check_promql_names(twhere, expr, families, used)
                names = set(re.findall(r"\b(ratchet_[a-z0-9_]+)", expr))
                kept = labels if re.search(r"\b(?:sum|max|min|avg|count)\s+by\b", expr) else None
                for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat") or ""):
                    if kept is not None and label not in kept:
                        fail(twhere, "legend names {{%s}}, which the query aggregates away" % label)
                    elif label not in LABELS_EVERYWHERE and not any(
                            label in families.get(re.sub(r"_(bucket|sum|count)$", "", n), ("", set()))[1]
                            for n in names):
                        fail(twhere, "legend names {{%s}}, a label none of its metrics has" % label)
    # The provider reads the folder compose mounts the dashboards into.
    mounts = {}
    for v in (compose["services"].get("grafana") or {}).get("volumes", []):
        parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target")]
        if len(parts) >= 2:
            mounts[parts[1].rstrip("/")] = parts[0]
    providers = 0
    for prov in glob.glob(os.path.join(src, "deploy/grafana/provisioning/dashboards/*.yml")):
        prel = os.path.relpath(prov, src)
        with open(prov) as f:
            for p in (yaml.safe_load(f) or {}).get("providers", []):
                providers += 1
                path = ((p.get("options") or {}).get("path") or "").rstrip("/")
                if "/etc/grafana/provisioning" in mounts and path.startswith("/etc/grafana/provisioning/"):
                    inside = os.path.join(src, mounts["/etc/grafana/provisioning"],
                                          path[len("/etc/grafana/provisioning/"):])
                elif path in mounts:
                    inside = os.path.join(src, mounts[path])
                else:
                    fail(prel, "provider %s reads %s, which compose does not mount into grafana"
                         % (p.get("name"), path))
                    continue
                if not glob.glob(os.path.join(inside, "*.json")):
                    fail(prel, "provider %s reads %s (%s here), which holds no dashboard JSON"
                         % (p.get("name"), path, os.path.relpath(inside, src)))
    if not providers:
        fail("deploy/grafana/provisioning/dashboards", "no dashboard provider")
    note("grafana: %d dashboard(s), %d panels, %d targets over %d of ratchet's metric families; "
         "%d dashboard provider(s)" % (len(boards), panels_n, targets_n, len(used), providers))


# ---------------------------------------------------------------- kubernetes

def check_kubernetes(binary, src):
    docs = []
    for path in sorted(glob.glob(os.path.join(src, "deploy/kubernetes/*.yaml"))):
        rel = os.path.relpath(path, src)
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((rel, d))
        check_comment_commands(binary, path, rel)
    issued = set()
    renamed = {}  # Secret key -> the pki file it is made from (kubectl --from-file=KEY=pki/FILE)
    for path in glob.glob(os.path.join(src, "deploy/kubernetes/*.yaml")):
        with open(path) as f:
            text = f.read()
        issued |= set(re.findall(r"pki issue \S+ (?:worker|verifier):([A-Za-z0-9_.$-]+)", text))
        renamed.update(dict(re.findall(r"--from-file=([^=\s]+)=pki/(\S+)", text)))
    kinds = {}
    for rel, d in docs:
        kinds.setdefault(d.get("kind"), []).append((rel, d))
    def ns(d):
        return (d.get("metadata") or {}).get("namespace", "default")
    secrets = {(ns(d), d["metadata"]["name"]): set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())
               for _, d in kinds.get("Secret", [])}
    configmaps = {(ns(d), d["metadata"]["name"]): d.get("data") or {} for _, d in kinds.get("ConfigMap", [])}
    namespaces = {d["metadata"]["name"] for _, d in kinds.get("Namespace", [])}
    pods = []  # (rel, workload, namespace, labels, ports {name: number}, metrics port)
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for rel, d in kinds.get(kind, []):
            name = d["metadata"]["name"]
            where = "%s: %s %s" % (rel, kind, name)
            space = ns(d)
            if space not in namespaces and space != "default":
                fail(where, "namespace %s is not defined" % space)
            spec = d["spec"]
            tmpl = spec["template"]
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in sel.items()):
                fail(where, "selector %s does not match the pod labels %s" % (sel, labels))
            pod = tmpl["spec"]
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            claim_names = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
            for v in vols.values():
                if "secret" in v:
                    if (space, v["secret"]["secretName"]) not in secrets:
                        fail(where, "volume %s: Secret %s is not defined" % (v["name"], v["secret"]["secretName"]))
                if "configMap" in v and (space, v["configMap"]["name"]) not in configmaps:
                    fail(where, "volume %s: ConfigMap %s is not defined" % (v["name"], v["configMap"]["name"]))
            ports_all = {}
            metrics_port = None
            for c in pod.get("containers", []):
                cwhere = "%s container %s" % (where, c["name"])
                env = {}
                for e in c.get("env", []):
                    env[e["name"]] = e
                    ref = (e.get("valueFrom") or {})
                    if "secretKeyRef" in ref:
                        r = ref["secretKeyRef"]
                        if (space, r["name"]) not in secrets:
                            fail(cwhere, "env %s: Secret %s is not defined" % (e["name"], r["name"]))
                        elif r["key"] not in secrets[(space, r["name"])]:
                            fail(cwhere, "env %s: Secret %s has no key %s" % (e["name"], r["name"], r["key"]))
                    if "configMapKeyRef" in ref:
                        r = ref["configMapKeyRef"]
                        if (space, r["name"]) not in configmaps:
                            fail(cwhere, "env %s: ConfigMap %s is not defined" % (e["name"], r["name"]))
                        elif r["key"] not in configmaps[(space, r["name"])]:
                            fail(cwhere, "env %s: ConfigMap %s has no key %s" % (e["name"], r["name"], r["key"]))
                mounts = {}
                for m in c.get("volumeMounts", []):
                    if m["name"] not in vols and m["name"] not in claim_names:
                        fail(cwhere, "mounts volume %s, which the pod does not define" % m["name"])
                    mounts[m["mountPath"].rstrip("/")] = vols.get(m["name"])
                ports = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in c.get("ports", [])}
                ports_all.update(ports)
                argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
                for a in argv:
                    for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", a):
                        if var not in env:
                            fail(cwhere, "%s names $(%s), which the container's env does not define" % (a, var))
                if argv and os.path.basename(argv[0]) == "ratchet":
                    sub, flags = check_service_command(binary, cwhere, argv[1:])
                    listens = set()
                    if sub == "coordinator":
                        listens.add(port_of(flags.get("listen", "127.0.0.1:50051")))
                    if "metrics" in flags:
                        metrics_port = port_of(flags["metrics"])
                        listens.add(metrics_port)
                    for pname, number in ports.items():
                        if number not in listens:
                            fail(cwhere, "declares port %s=%d, but listens on %s" % (pname, number, sorted(listens)))
                    for number in listens:
                        if number not in ports.values():
                            fail(cwhere, "listens on %d, which it does not declare" % number)
                    # Files named by flags: in a mounted Secret, with that key.
                    for flag, value in flags.items():
                        if not isinstance(value, str) or not value.startswith("/"):
                            continue
                        folder, base = os.path.dirname(value), os.path.basename(value)
                        vol = mounts.get(folder)
                        if folder in mounts and vol and "secret" in vol:
                            keys = secrets.get((space, vol["secret"]["secretName"]), set())
                            concrete = base.replace("$(POD_NAME)", name + "-0")
                            if concrete not in keys:
                                fail(cwhere, "--%s=%s: Secret %s has no key %s" % (flag, value, vol["secret"]["secretName"], concrete))
                            check_pki_file(cwhere + " --" + flag, renamed.get(concrete, concrete), issued | {name + "-0"} if "$(POD_NAME)" in base else issued)
                        elif folder in ("/etc/ratchet/pki",) or flag.startswith("tls") or flag == "tokens":
                            fail(cwhere, "--%s=%s: no Secret is mounted at %s" % (flag, value, folder))
                    if sub == "worker":
                        limits = ((c.get("resources") or {}).get("limits") or {})
                        if str(limits.get("nvidia.com/gpu")) != "1":
                            fail(cwhere, "a GPU worker should request nvidia.com/gpu: 1")
            annotations = (tmpl.get("metadata") or {}).get("annotations") or {}
            if "prometheus.io/port" in annotations and int(annotations["prometheus.io/port"]) != metrics_port:
                fail(where, "prometheus.io/port %s, but --metrics listens on %s" % (annotations["prometheus.io/port"], metrics_port))
            pods.append((rel, name, space, labels, ports_all))
    services = {}
    for rel, d in kinds.get("Service", []):
        name, space = d["metadata"]["name"], ns(d)
        where = "%s: Service %s" % (rel, name)
        sel = d["spec"].get("selector") or {}
        match = [p for p in pods if p[2] == space and all(p[3].get(k) == v for k, v in sel.items())]
        if not match:
            fail(where, "selector %s matches no pod template" % sel)
            continue
        services[(space, name)] = set()
        for p in d["spec"].get("ports", []):
            target = p.get("targetPort", p["port"])
            ok = [m for m in match if (target in m[4]) or (target in m[4].values())]
            if not ok:
                fail(where, "port %s: targetPort %s is no container port of %s" % (p["port"], target, match[0][1]))
            services[(space, name)].add(p["port"])
    # host:port values in ConfigMaps must be Services listening there.
    for (space, cm), data in configmaps.items():
        for key, value in data.items():
            m = re.match(r"^(?:[a-z]+://(?:[^@/]*@)?)?([a-z0-9-]+):(\d+)(?:/.*)?$", str(value))
            if m and (space, m.group(1)) not in services:
                fail("ConfigMap %s" % cm, "%s=%s: no Service %s" % (key, value, m.group(1)))
            elif m and int(m.group(2)) not in services[(space, m.group(1))]:
                fail("ConfigMap %s" % cm, "%s=%s: Service %s has no port %s" % (key, value, m.group(1), m.group(2)))
    # kustomization.yaml names files that exist.
    kpath = os.path.join(src, "deploy/kubernetes/kustomization.yaml")
    if os.path.exists(kpath):
        with open(kpath) as f:
            for r in (yaml.safe_load(f) or {}).get("resources", []):
                if not os.path.exists(os.path.join(src, "deploy/kubernetes", r)):
                    fail("deploy/kubernetes/kustomization.yaml", "resource %s does not exist" % r)
    note("kubernetes: %d documents (%s)" % (len(docs), ", ".join(
        "%d %s" % (len(v), k) for k, v in sorted(kinds.items(), key=lambda kv: str(kv[0])))))


# ---------------------------------------------------------------- slurm

def check_slurm(binary, src):
    rel = "deploy/slurm/ratchet-workers.sbatch"
    with open(os.path.join(src, rel)) as f:
        text = f.read()
    check_comment_commands(binary, os.path.join(src, rel), rel)
    rc, out = run(["bash", "-n", os.path.join(src, rel)])
    if rc != 0:
        fail(rel, "bash -n: " + out.strip())
    if not re.search(r"^#SBATCH --ntasks-per-node=1\b", text, re.M):
        fail(rel, "no `#SBATCH --ntasks-per-node=1` (one worker per node)")
    logical = re.sub(r"\\\n\s*", " ", text)
    found = 0
    for line in logical.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = re.search(r"(?:\bratchet|\$\{?RATCHET\w*\}?/bin/ratchet)\"?\s+([a-z]+)\b(.*)", line)
        if not m:
            continue
        found += 1
        tokens = [m.group(1)] + [f.group(0) for f in FLAG_RE.finditer(m.group(2))]
        sub, flags = check_service_command(binary, "%s (%s)" % (rel, m.group(1)), tokens)
        if sub == "worker" and "srun" not in text.split("bash -c")[0]:
            fail(rel, "the worker is not started by srun")
        if sub == "worker" and "metrics" in flags and port_of(flags["metrics"]) != 9103:
            fail(rel, "--metrics=%s: the ratchet-worker scrape job expects 9103" % flags["metrics"])
    if not found:
        fail(rel, "starts no ratchet service")
    note("slurm: %d ratchet command(s)" % found)


# ---------------------------------------------------------------- tools

def run_tools(src):
    promtool = shutil.which("promtool")
    if not promtool:
        note("SKIP promtool checks: promtool is not installed (Debian: apt-get install prometheus)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(src, "deploy/prometheus/alerts.yml"), tmp)
            with open(os.path.join(src, "deploy/prometheus/prometheus.yml")) as f:
                config = f.read().replace("/etc/prometheus/alerts.yml", os.path.join(tmp, "alerts.yml"))
            with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
                f.write(config)
            for argv in ([promtool, "check", "config", os.path.join(tmp, "prometheus.yml")],
                         [promtool, "check", "rules", os.path.join(tmp, "alerts.yml")]):
                rc, out = run(argv, timeout=60)
                note("%s: %s" % (" ".join(argv[1:3]), "ok" if rc == 0 else "FAILED"))
                if rc != 0:
                    fail("promtool " + " ".join(argv[1:3]), out.strip())
    compose = shutil.which("docker-compose")
    if not compose:
        note("SKIP docker-compose config: docker-compose is not installed (Debian: apt-get install docker-compose)")
    else:
        env = dict(os.environ, RATCHET_PG_PASSWORD="check-only")
        rc, out = run([compose, "-f", os.path.join(src, "docker-compose.yml"), "config", "-q"], timeout=60, env=env)
        note("docker-compose config: %s" % ("ok" if rc == 0 else "FAILED"))
        if rc != 0:
            fail("docker-compose config", out.strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratchet", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    src = os.path.abspath(args.source_dir)
    binary = Binary(os.path.abspath(args.ratchet))
    binary.controls()
    compose, listening = check_compose(binary, src)
    check_prometheus(src, compose, listening)
    families = exported_metrics(src)
    check_alerts(src, families)
    check_grafana(src, compose, families)
    check_kubernetes(binary, src)
    check_slurm(binary, src)
    run_tools(src)
    note("flags checked against %s: %d distinct (subcommand, flag) given to the binary" % (
        os.path.relpath(binary.path, src) if binary.path.startswith(src) else binary.path, len(binary.checked)))
    if FAILURES:
        print("\n%d problem(s):" % len(FAILURES))
        for f in FAILURES:
            print("  FAIL " + f)
        return 1
    print("deploy manifests: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
