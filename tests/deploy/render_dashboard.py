#!/usr/bin/env python3
"""Renders ratchet's Grafana dashboard as a self-contained HTML page, without Grafana.

  render_dashboard.py --prometheus=http://127.0.0.1:9090 --out=dashboard.html
      [--dashboard=deploy/grafana/dashboards/ratchet.json]
      [--start=UNIX --end=UNIX | --minutes=15] [--step=SECONDS] [--var campaign=.*]

Reads the dashboard's JSON model, runs every panel's target expressions
against a running Prometheus (query_range over the window, the dashboard's
template variables substituted: $campaign as "All", $__rate_interval and
$__interval and the scrape interval) and writes one HTML page with an SVG chart per
panel, placed on the dashboard's 24-column grid: titles, axes in the panel's
unit, legends from the targets' legendFormat, stacking where the panel
stacks, and stat panels as their last value over a sparkline. No JavaScript
and nothing fetched: the page can be opened from disk or screenshotted by a
headless browser (docs/operations.md, "Dashboards").

tests/deploy/prometheus_live_test.py imports this module: the same variable
substitution and queries are what it asserts return data.
"""

import argparse
import html
import json
import math
import os
import re
import sys
import time
import urllib.parse
import urllib.request

PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
           "#705da0", "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02", "#0a437c"]
DEFAULT_DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                 "deploy", "grafana", "dashboards", "ratchet.json")


# ---------------------------------------------------------------- dashboard model

def load_dashboard(path):
    with open(path) as f:
        return json.load(f)


def variables(dashboard, overrides=None, step=15, scrape=15):
    """{name: value} for every template variable: "All" (its allValue, else .*)
    for query variables, the provisioned data source for datasource ones, and
    Grafana's built-in interval variables for `step`-second points."""
    values = {}
    for v in (dashboard.get("templating") or {}).get("list", []):
        if v.get("type") == "datasource":
            values[v["name"]] = (v.get("current") or {}).get("value", "")
        elif v.get("includeAll"):
            values[v["name"]] = v.get("allValue") or ".*"
        else:
            current = (v.get("current") or {}).get("value")
            values[v["name"]] = current[0] if isinstance(current, list) else (current or ".*")
    # Grafana: $__rate_interval = max(4 * scrape interval, $__interval + scrape interval).
    values["__interval"] = "%ds" % max(1, int(step))
    values["__rate_interval"] = "%ds" % max(4 * scrape, int(step) + scrape)
    values.update(overrides or {})
    return values


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2)
        return str(values[name]) if name in values else m.group(0)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def panel_targets(dashboard):
    """(panel, target) for every target of every panel, rows' panels included."""
    out = []
    def walk(panels):
        for p in panels:
            if p.get("type") == "row":
                walk(p.get("panels") or [])
                continue
            for t in p.get("targets") or []:
                if t.get("expr") and not t.get("hide"):
                    out.append((p, t))
    walk(dashboard.get("panels") or [])
    return out


def all_panels(dashboard):
    out = []
    for p in dashboard.get("panels") or []:
        if p.get("type") == "row":
            out.extend(p.get("panels") or [])
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------- Prometheus

class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, params, timeout=30):
        q = urllib.parse.urlencode(params)
        with urllib.request.urlopen("%s%s?%s" % (self.url, path, q), timeout=timeout) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError("%s %s: %s" % (path, params, body))
        return body["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        return self.get("/api/v1/query", params)

    def query_range(self, expr, start, end, step):
        return self.get("/api/v1/query_range", {"query": expr, "start": "%.3f" % start,
                                                "end": "%.3f" % end, "step": "%g" % step})


def legend(fmt, metric, fallback):
    if not fmt:
        return fallback
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)
    return re.sub(r"\s+", " ", text).strip() or fallback


# ---------------------------------------------------------------- units and scales

def si(v, digits=3):
    if v == 0:
        return "0"
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return ("%." + str(digits) + "g%s") % (v / div, suffix)
    return ("%." + str(digits) + "g") % v


def fmt_unit(v, unit):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    if unit == "percentunit":
        return "%.3g%%" % (v * 100)
    if unit == "s":
        a = abs(v)
        if a == 0:
            return "0 s"
        if a < 1e-3:
            return "%.3g µs" % (v * 1e6)
        if a < 1:
            return "%.3g ms" % (v * 1e3)
        return "%.3g s" % v
    if unit == "currencyUSD":
        return "$%.4g" % v if abs(v) < 1 else "$%.2f" % v
    if unit == "reqps":
        return "%s req/s" % si(v)
    return si(v)


def nice_ticks(lo, hi, n=5):
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while len(ticks) < 20:
        ticks.append(round(t, 12))
        if t >= hi - step * 1e-9:
            break
        t += step
    return ticks


# ---------------------------------------------------------------- rendering

def fetch_panel(prom, panel, values, start, end, step):
    """[(label, [(t, v)...])] for a panel's targets over the window."""
    series = []
    for t in panel.get("targets") or []:
        if not t.get("expr") or t.get("hide"):
            continue
        expr = substitute(t["expr"], values)
        data = prom.query_range(expr, start, end, step)
        for s in data.get("result", []):
            name = legend(t.get("legendFormat"), s.get("metric", {}),
                          json.dumps(s.get("metric", {}), sort_keys=True))
            pts = [(float(ts), float(v)) for ts, v in s.get("values", [])]
            series.append((name, pts))
    series.sort(key=lambda s: s[0])
    return series


def svg_timeseries(panel, series, start, end, width, height):
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "short")
    stacked = ((defaults.get("custom") or {}).get("stacking") or {}).get("mode") == "normal"
    cols = max(1, int((width - 64) // 170))
    max_rows = 6
    legend_rows = max(1, min(max_rows, math.ceil(len(series) / cols)))
    legend_h = 14 * legend_rows + 8
    left, right, top, bottom = 64, 30, 8, 22 + legend_h
    pw, ph = width - left - right, height - top - bottom
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (width, height, width, height)]
    # Stack on the shared step grid: a missing point counts as 0.
    drawn = []
    if stacked:
        base = {}
        for name, pts in series:
            new = []
            for ts, v in pts:
                v = 0.0 if math.isnan(v) else v
                b = base.get(ts, 0.0)
                new.append((ts, b, b + v))
                base[ts] = b + v
            drawn.append((name, new))
    else:
        drawn = [(name, [(ts, None, v) for ts, v in pts]) for name, pts in series]
    vals = [v for _, pts in drawn for _, _, v in pts if math.isfinite(v)]
    lo = min(vals + [0.0]) if vals else 0.0
    hi = max(vals) if vals else 1.0
    if defaults.get("min") is not None:
        lo = min(lo, defaults["min"])
    if defaults.get("max") is not None and (not vals or max(vals) <= defaults["max"]):
        hi = defaults["max"]
    ticks = nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    X = lambda ts: left + (ts - start) / max(1e-9, end - start) * pw
    Y = lambda v: top + ph - (v - lo) / max(1e-12, hi - lo) * ph
    for tv in ticks:
        y = Y(tv)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>' % (left, y, left + pw, y))
        out.append('<text x="%d" y="%.1f" class="ylab">%s</text>' % (left - 6, y + 4,
                                                                     html.escape(fmt_unit(tv, unit))))
    nx = max(2, min(8, int(pw // 110)))
    for i in range(nx + 1):
        ts = start + (end - start) * i / nx
        x = X(ts)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>' % (x, top, x, top + ph))
        out.append('<text x="%.1f" y="%d" class="xlab">%s</text>' % (
            x, top + ph + 15, time.strftime("%H:%M:%S", time.localtime(ts))))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>' % (left, top, pw, ph))
    for i, (name, pts) in enumerate(drawn):
        color = PALETTE[i % len(PALETTE)]
        segments, cur = [], []
        for ts, b, v in pts:
            if math.isfinite(v):
                cur.append((ts, b, v))
            elif cur:
                segments.append(cur)
                cur = []
        if cur:
            segments.append(cur)
        for seg in segments:
            line = " ".join("%.1f,%.1f" % (X(ts), Y(v)) for ts, _, v in seg)
            if len(seg) == 1:
                ts, _, v = seg[0]
                out.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (X(ts), Y(v), color))
                continue
            floor = [(ts, b if b is not None else max(lo, 0.0 if lo <= 0 <= hi else lo)) for ts, b, _ in seg]
            area = line + " " + " ".join("%.1f,%.1f" % (X(ts), Y(b)) for ts, b in reversed(floor))
            opacity = 0.55 if stacked else 0.12
            out.append('<polygon points="%s" fill="%s" fill-opacity="%.2f" stroke="none"/>' % (area, color, opacity))
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>' % (line, color))
    if not drawn:
        out.append('<text x="%d" y="%d" class="nodata">No data</text>' % (left + pw // 2, top + ph // 2))
    # Legend: a swatch and the name, in columns.
    colw = (width - left) / cols
    chars = max(8, int((colw - 20) / 5.6))
    shown = series[:cols * max_rows]
    if len(series) > len(shown):
        shown = series[:cols * max_rows - 1]
    for i, (name, _) in enumerate(shown):
        r, c = divmod(i, cols)
        x, y = left + c * colw, top + ph + 30 + r * 14
        out.append('<rect x="%.1f" y="%d" width="12" height="4" fill="%s"/>' % (x, y - 5, PALETTE[i % len(PALETTE)]))
        label = name if len(name) <= chars else name[:chars - 1] + "…"
        out.append('<text x="%.1f" y="%d" class="leg"><title>%s</title>%s</text>' % (
            x + 16, y, html.escape(name), html.escape(label)))
    if len(series) > len(shown):
        r, c = divmod(len(shown), cols)
        out.append('<text x="%.1f" y="%d" class="leg">+%d more</text>' % (
            left + c * colw + 16, top + ph + 30 + r * 14, len(series) - len(shown)))
    out.append("</svg>")
    return "\n".join(out)


def svg_stat(panel, series, start, end, width, height):
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "short")
    last = None
    for _, pts in series:
        finite = [v for _, v in pts if math.isfinite(v)]
        if finite:
            last = (last or 0.0) + finite[-1]
    steps = ((defaults.get("thresholds") or {}).get("steps")) or [{"color": "green", "value": None}]
    color = steps[0]["color"]
    for s in steps:
        if s.get("value") is None or (last is not None and last >= s["value"]):
            color = s["color"]
    fill = {"green": "#37872d", "red": "#c4162a", "yellow": "#e0b400"}.get(color, color)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (width, height, width, height),
           '<rect x="0" y="0" width="%d" height="%d" rx="3" fill="%s"/>' % (width, height, fill)]
    if series and series[0][1]:
        pts = series[0][1]
        vals = [v for _, v in pts if math.isfinite(v)] or [0.0]
        lo, hi = min(vals + [0.0]), max(vals) or 1.0
        line = " ".join("%.1f,%.1f" % ((ts - start) / max(1e-9, end - start) * width,
                                       height - 4 - (v - lo) / max(1e-12, hi - lo) * height * 0.4)
                        for ts, v in pts if math.isfinite(v))
        out.append('<polyline points="%s" fill="none" stroke="#ffffff" stroke-opacity="0.45" stroke-width="2"/>' % line)
    text = "No data" if last is None else fmt_unit(last, unit)
    out.append('<text x="%d" y="%d" class="stat">%s</text>' % (width // 2, height // 2 + 10, html.escape(text)))
    out.append("</svg>")
    return "\n".join(out)


CSS = """
body { background:#111217; color:#ccccdc; font-family: Inter, Helvetica, Arial, sans-serif; margin:0; }
header { padding:10px 16px; border-bottom:1px solid #2c3235; display:flex; gap:24px; align-items:baseline; }
header h1 { font-size:18px; margin:0; color:#fff; font-weight:500; }
header span { font-size:12px; color:#8e8e8e; }
.grid24 { position:relative; margin:8px; }
.panel { position:absolute; background:#181b1f; border:1px solid #2c3235; border-radius:3px; box-sizing:border-box; }
.panel h2 { font-size:13px; font-weight:500; margin:6px 8px 2px 8px; color:#d8d9da; white-space:nowrap; overflow:hidden; }
svg text { fill:#9fa7b3; font-size:10.5px; font-family: Inter, Helvetica, Arial, sans-serif; }
svg .ylab { text-anchor:end; } svg .xlab { text-anchor:middle; }
svg .leg { fill:#ccccdc; font-size:10px; }
svg .nodata { text-anchor:middle; font-size:14px; fill:#8e8e8e; }
svg .stat { text-anchor:middle; font-size:44px; fill:#fff; font-weight:500; }
svg .grid { stroke:#2c3235; stroke-width:1; } svg .frame { fill:none; stroke:#3a4045; }
"""


def render(prom, dashboard, start, end, step, overrides=None, scrape=15, page_width=1580, row_height=30):
    values = variables(dashboard, overrides, step, scrape)
    colw = page_width / 24.0
    body, bottom = [], 0
    for p in all_panels(dashboard):
        g = p.get("gridPos") or {"x": 0, "y": 0, "w": 12, "h": 8}
        x, y, w, h = g["x"] * colw, g["y"] * row_height, g["w"] * colw - 6, g["h"] * row_height - 6
        bottom = max(bottom, y + h + 6)
        series = fetch_panel(prom, p, values, start, end, step)
        cw, ch = int(w - 2), int(h - 28)
        if p.get("type") == "stat":
            chart = svg_stat(p, series, start, end, cw - 12, ch - 8)
            chart = '<div style="margin:4px 6px">%s</div>' % chart
        else:
            chart = svg_timeseries(p, series, start, end, cw, ch)
        body.append('<div class="panel" style="left:%.0fpx;top:%.0fpx;width:%.0fpx;height:%.0fpx" title="%s">'
                    '<h2>%s</h2>%s</div>' % (x, y, w, h, html.escape(p.get("description", "")),
                                             html.escape(p.get("title", "")), chart))
    shown = ", ".join("%s=%s" % (v["name"], values.get(v["name"]))
                      for v in (dashboard.get("templating") or {}).get("list", []) if v.get("type") != "datasource")
    head = ('<header><h1>%s</h1><span>%s → %s (step %gs)</span><span>%s</span><span>data: %s</span></header>'
            % (html.escape(dashboard.get("title", "dashboard")),
               time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start)),
               time.strftime("%H:%M:%S", time.localtime(end)), step, html.escape(shown), html.escape(prom.url)))
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>%s</title><style>%s</style></head>'
            '<body>%s<div class="grid24" style="height:%dpx;width:%dpx">%s</div></body></html>\n'
            % (html.escape(dashboard.get("title", "")), CSS, head, bottom, page_width, "\n".join(body)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", required=True, help="http://HOST:PORT of a running Prometheus")
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD)
    ap.add_argument("--out", required=True)
    ap.add_argument("--start", type=float)
    ap.add_argument("--end", type=float)
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--step", type=float)
    ap.add_argument("--scrape-interval", type=float, default=15,
                    help="seconds between scrapes, for $__rate_interval (Grafana's default 15)")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE for a template variable")
    args = ap.parse_args()
    end = args.end or time.time()
    start = args.start or end - args.minutes * 60
    step = args.step or max(1.0, (end - start) / 240)
    overrides = dict(v.split("=", 1) for v in args.var)
    page = render(Prometheus(args.prometheus), load_dashboard(args.dashboard), start, end, step, overrides,
                  args.scrape_interval)
    with open(args.out, "w") as f:
        f.write(page)
    print("wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
