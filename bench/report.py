#!/usr/bin/env python3
"""Writes docs/benchmarks.md (and its chart) from what `make bench` measured.

Input: the output of bench/dom0.sh ("BENCH <kind> key=value ..." lines, see there), the facts
bench/run.sh gathered on the host (info.txt, key=value lines) and the DMA micro-benchmark's report.
Python 3 standard library only; the chart is a PNG through matplotlib when it can be imported,
else an SVG written here.

Every figure in the report is computed from the runs the guest survived: a run a guest crashed in
is listed and counted, never averaged in, and a ratio is given only where both guests survived.

`bench/report.py --check` runs the generator on bench/report-sample.txt (a hand-made run, not a
measurement), with and without its bulk lines, and checks what it writes; `make test-host` runs it.
"""

import argparse
import math
import os
import re
import shlex
import statistics
import sys
import tempfile
from collections import defaultdict

GUESTS = ("appliance", "peer")
LABEL = {"appliance": "xenecho", "peer": "Linux + nginx"}

# The appliance's counters shown per request (others are in the per-run appendix), with what they
# mean. Names are those of its /metrics page.
COUNTERS = [
    ("xenecho_event_notifications_received_total", "event-channel events taken (all ports)"),
    ("xenecho_event_notifications_sent_total", "event-channel notifications sent (all ports)"),
    ("xenecho_netfront_notifications_received_total", "wake-ups by netback"),
    ("xenecho_netfront_notifications_sent_total", "notifications to netback"),
    ("xenecho_event_polls_total", "sleeps in SCHEDOP_poll"),
    ("xenecho_hypercalls_total", "hypercalls"),
    ("xenecho_grants_total", "grants made"),
    ("xenecho_grant_revokes_total", "grants revoked"),
    ("xenecho_dma_maps_total", "DMA maps"),
    ("xenecho_dma_unmaps_total", "DMA unmaps"),
    ("xenecho_dma_syncs_for_device_total", "DMA syncs for the device"),
    ("xenecho_dma_syncs_for_cpu_total", "DMA syncs for the CPU"),
    ("xenecho_dma_bounce_copies_total", "bounce copies"),
    ("xenecho_rx_packets_total", "frames received"),
    ("xenecho_tx_packets_total", "frames sent"),
]
REQUESTS_COUNTER = "xenecho_http_requests_total"

# The bulk phase: its directions as the report names them, the unit, and the goals (at least
# twice nginx's rate and at most 0.3 times its guest CPU per byte moved, both directions).
DIRECTIONS = (("down", "download"), ("up", "upload"))
MIB = 1 << 20
RATE_GOAL = 2.0
CPU_GOAL = 0.3


# --- Reading ---------------------------------------------------------------------------------
def parse_results(path):
    """The BENCH lines as (kind, {key: value}) in order."""
    records = []
    # newline="\n": a console line quoted in a crash message may carry a CR, not a line end.
    with open(path, encoding="utf-8", errors="replace", newline="\n") as results:
        for line in results:
            line = line.replace("\r", "").rstrip("\n")
            if not line.startswith("BENCH "):
                continue
            try:
                words = shlex.split(line[len("BENCH "):])
            except ValueError:  # an unbalanced quote in a crash message: take what splits
                words = line[len("BENCH "):].split()
            if not words:
                continue
            fields = {}
            for word in words[1:]:
                key, _, value = word.partition("=")
                fields[key] = value
            records.append((words[0], fields))
    return records


def parse_info(path):
    """bench/run.sh's key=value lines as a dict (empty when there is no such file)."""
    info = {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                key, _, value = line.rstrip("\n").partition("=")
                if key:
                    info[key] = value
    return info


def number(value):
    """A float, or None for anything else (including dom0's "nan" for a domain that was gone)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def cpu_delta(pair):
    """'12.3/14.5' (xl list before/after) -> 2.2, or None."""
    if not pair or "/" not in pair:
        return None
    before, after = (number(part) for part in pair.split("/", 1))
    if before is None or after is None:
        return None
    return max(after - before, 0.0)


class Run:
    """One wrk run."""

    def __init__(self, fields, metrics):
        self.fields = fields
        self.guest = fields.get("guest")
        self.phase = fields.get("phase")
        self.connections = int(fields.get("c", "0") or 0)
        self.round = fields.get("round")
        self.memory = fields.get("mem")
        self.status = fields.get("status")
        self.requests = int(number(fields.get("requests")) or 0)
        self.seconds = (number(fields.get("duration_us")) or 0) / 1e6
        self.errors = sum(int(number(fields.get(key)) or 0) for key in
                          ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
        self.p50 = number(fields.get("p50_us"))
        self.p99 = number(fields.get("p99_us"))
        self.cpu_guest = cpu_delta(fields.get("cpu_guest"))
        self.cpu_dom0 = cpu_delta(fields.get("cpu_dom0"))
        self.cpu_other = cpu_delta(fields.get("cpu_other"))
        self.metrics = metrics

    @property
    def survived(self):
        return self.status == "ok" and self.requests > 0

    @property
    def rate(self):
        return self.requests / self.seconds if self.seconds else 0.0


class Transfer:
    """One bulk transfer: a download, an upload or the appliance's echo."""

    def __init__(self, fields):
        self.fields = fields
        self.guest = fields.get("guest")
        self.direction = fields.get("dir")
        self.size = int(number(fields.get("size_mib")) or 0)
        self.round = fields.get("round")
        self.status = fields.get("status")
        self.seconds = number(fields.get("seconds"))
        self.bytes = int(number(fields.get("bytes")) or 0)
        self.cpu_guest = cpu_delta(fields.get("cpu_guest"))
        self.cpu_dom0 = cpu_delta(fields.get("cpu_dom0"))

    @property
    def ok(self):
        return self.status == "ok" and bool(self.seconds) and self.bytes > 0

    @property
    def mib(self):
        return self.bytes / MIB

    @property
    def rate(self):
        """MiB per second, or None without a time."""
        return self.mib / self.seconds if self.seconds else None


def collect(records):
    """The records sorted by kind: wrk runs (with their metrics), boots, crashes, memory probes, memory
    results by guest, the single-line kinds (host, config, ...) by kind, and the bulk transfers."""
    runs, boots, crashes, probes, memory, misc, bulk = [], [], [], [], {}, {}, []
    metrics_by_key = {}
    for kind, fields in records:
        if kind == "metrics":
            key = (fields.get("guest"), fields.get("phase"), fields.get("c"), fields.get("round"))
            metrics_by_key[key] = {name: number(value) for name, value in fields.items()
                                   if name.startswith("xenecho_")}
    for kind, fields in records:
        if kind == "wrk":
            key = (fields.get("guest"), fields.get("phase"), fields.get("c"), fields.get("round"))
            runs.append(Run(fields, metrics_by_key.pop(key, None)))
        elif kind == "boot":
            boots.append(fields)
        elif kind == "crash":
            crashes.append(fields)
        elif kind == "memprobe":
            probes.append(fields)
        elif kind == "memory":
            memory[fields.get("guest")] = fields
        elif kind in ("host", "config", "peer_memory", "end", "appliance"):
            misc.setdefault(kind, {}).update(fields)
        elif kind == "bulk":
            bulk.append(Transfer(fields))
    return runs, boots, crashes, probes, memory, misc, bulk


# --- Figures -----------------------------------------------------------------------------------
def fmt(value, digits=0, unit=""):
    """A number with thousands separators and DIGITS decimals, or "–" for None."""
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def ms(microseconds):
    """Microseconds in milliseconds (None stays None)."""
    return None if microseconds is None else microseconds / 1000.0


def ratio(a, b, digits=2):
    """'a / b' as "1.23×", or "–" when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.{digits}f}×"


def median(values):
    """The median of the values that are not None, or None."""
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


class Cell:
    """The surviving load runs of one guest at one concurrency, summed up."""

    def __init__(self, runs):
        self.runs = [run for run in runs if run.survived]
        self.all = runs
        requests = sum(run.requests for run in self.runs)
        seconds = sum(run.seconds for run in self.runs)
        self.rate = requests / seconds if seconds else None
        self.rates = [run.rate for run in self.runs]
        self.p50 = median(run.p50 for run in self.runs)
        self.p99 = median(run.p99 for run in self.runs)
        self.requests = requests
        self.errors = sum(run.errors for run in self.runs)
        guest = [run.cpu_guest for run in self.runs]
        dom0 = [run.cpu_dom0 for run in self.runs]
        self.cpu_guest = sum(guest) / requests if requests and None not in guest else None
        self.cpu_dom0 = sum(dom0) / requests if requests and None not in dom0 else None
        self.cpu_guest_seconds = sum(guest) if None not in guest else None

    @property
    def ok(self):
        return bool(self.runs)


class BulkCell:
    """One guest's transfers of one direction and size: the median rate of those that were ok, and
    the CPU time per MiB over them (summed seconds over summed MiB)."""

    def __init__(self, transfers):
        self.all = transfers
        self.transfers = [transfer for transfer in transfers if transfer.ok]
        self.rate = median(transfer.rate for transfer in self.transfers)
        self.seconds = median(transfer.seconds for transfer in self.transfers)
        mib = sum(transfer.mib for transfer in self.transfers)
        guest = [transfer.cpu_guest for transfer in self.transfers]
        dom0 = [transfer.cpu_dom0 for transfer in self.transfers]
        self.cpu_guest = sum(guest) / mib if mib and None not in guest else None
        self.cpu_dom0 = sum(dom0) / mib if mib and None not in dom0 else None

    @property
    def ok(self):
        return bool(self.transfers)

    @property
    def rounds(self):
        """The transfers that were ok, of all made: "2/3"."""
        return f"{len(self.transfers)}/{len(self.all)}"


def table(header, rows, align=None):
    """A Markdown table; ALIGN is each column's alignment row cell (default: right)."""
    align = align or ["---:"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- The chart -----------------------------------------------------------------------------------
def chart_png(path, concurrencies, cells):
    """Grouped bars of req/s by concurrency as a PNG through matplotlib; False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4), dpi=110)
    width = 0.38
    colors = {"appliance": "#2b6cb0", "peer": "#c05621"}
    for index, guest in enumerate(GUESTS):
        xs = [position + (index - 0.5) * width for position in range(len(concurrencies))]
        heights = [cells[guest][c].rate or 0 for c in concurrencies]
        bars = axes.bar(xs, heights, width, label=LABEL[guest], color=colors[guest])
        for bar, c in zip(bars, concurrencies):
            cell = cells[guest][c]
            text = fmt(cell.rate) if cell.ok else "crashed" if cell.all else "n/a"
            axes.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                          ha="center", va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
            if len(cell.rates) > 1:  # the spread between rounds
                axes.vlines(bar.get_x() + bar.get_width() / 2, min(cell.rates), max(cell.rates), color="black",
                            linewidth=1)
    axes.set_xticks(range(len(concurrencies)), [str(c) for c in concurrencies])
    axes.set_xlabel("wrk connections")
    axes.set_ylabel("requests per second (emulated host)")
    axes.set_title("GET / with keep-alive, same emulated Xen host, one run")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def chart_svg(path, concurrencies, cells):
    """The same grouped bars as SVG, for a machine without matplotlib."""
    width, height, left, bottom, top = 640, 360, 70, 50, 40
    plot_width, plot_height = width - left - 20, height - top - bottom
    peak = max([cells[g][c].rate or 0 for g in GUESTS for c in concurrencies] + [1])
    scale = plot_height / (peak * 1.1)
    colors = {"appliance": "#2b6cb0", "peer": "#c05621"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="13">'
             'GET / with keep-alive, same emulated Xen host, one run</text>']
    group = plot_width / max(len(concurrencies), 1)
    bar = group * 0.35
    for tick in range(5):
        value = peak * 1.1 * tick / 4
        y = top + plot_height - value * scale
        parts.append(f'<line x1="{left}" x2="{left + plot_width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    for position, c in enumerate(concurrencies):
        center = left + group * (position + 0.5)
        parts.append(f'<text x="{center:.1f}" y="{top + plot_height + 16}" text-anchor="middle">{c}</text>')
        for index, guest in enumerate(GUESTS):
            cell = cells[guest][c]
            value = cell.rate or 0
            x = center + (index - 1) * bar
            y = top + plot_height - value * scale
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{value * scale:.1f}" '
                         f'fill="{colors[guest]}"/>')
            text = fmt(cell.rate) if cell.ok else "crashed" if cell.all else "n/a"
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{text}</text>')
    parts.append(f'<text x="{left + plot_width / 2}" y="{height - 12}" text-anchor="middle">wrk connections</text>')
    parts.append(f'<text x="14" y="{top + plot_height / 2}" transform="rotate(-90 14 {top + plot_height / 2})" '
                 'text-anchor="middle">requests per second</text>')
    for index, guest in enumerate(GUESTS):
        x = left + 10 + index * 150
        parts.append(f'<rect x="{x}" y="{top - 8}" width="10" height="10" fill="{colors[guest]}"/>')
        parts.append(f'<text x="{x + 14}" y="{top + 1}">{LABEL[guest]}</text>')
    parts.append("</svg>")
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(parts) + "\n")


# --- The report: inputs -----------------------------------------------------------------------------
def parse_arguments():
    """The command line: --results and --out (both required unless --check), --info and --dma."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", help="the output of bench/dom0.sh (BENCH lines)")
    parser.add_argument("--info", help="bench/run.sh's key=value facts")
    parser.add_argument("--dma", help="the DMA micro-benchmark's report")
    parser.add_argument("--out", help="the report to write (its chart goes beside it)")
    parser.add_argument("--check", action="store_true", help="check the generator on bench/report-sample.txt")
    args = parser.parse_args()
    if not args.check and not (args.results and args.out):
        parser.error("--results and --out are required (or --check)")
    return args


def is_fault(crash):
    """A crash with the emulator fault's mark."""
    return (crash.get("why") or "").startswith("emulator-fault")


def is_stability(crash):
    """A crash that says something about stability: under load or in a bulk transfer, or with the
    emulator fault's mark.

    A start that died of too little memory (boot or memory probe, no such mark) says something about
    memory and is reported there.
    """
    return crash.get("phase", "").startswith(("load", "bulk")) or is_fault(crash)


class Bench:
    """Everything the report shows, from bench/dom0.sh's records and bench/run.sh's info."""

    def __init__(self, records, info):
        self.info = info
        self.runs, self.boots, self.crashes, self.probes, self.memory, misc, self.transfers = collect(records)
        self.config = misc.get("config", {})
        self.host = misc.get("host", {})
        self.end = misc.get("end")
        self.peer_used = misc.get("peer_memory", {})
        self.concurrencies = [int(c) for c in self.config.get("concurrencies", "").split()] or \
            sorted({run.connections for run in self.runs if run.phase == "load"})
        self.load = [run for run in self.runs if run.phase == "load"]
        self.cells = {guest: {c: Cell([run for run in self.load if run.guest == guest and run.connections == c])
                              for c in self.concurrencies} for guest in GUESTS}
        self.appliance_http = misc.get("appliance", {}).get("http") != "no"
        self.metrics_available = any(run.metrics for run in self.load if run.guest == "appliance")
        self.sizes = {key[len('size.'):]: number(value) for key, value in info.items() if key.startswith("size.")}
        self.peer_size = (self.sizes.get("peer_kernel") or 0) + (self.sizes.get("peer_initramfs") or 0)
        self.stability = [crash for crash in self.crashes if is_stability(crash)]
        self.crash_count = {guest: sum(1 for crash in self.stability if crash.get("guest") == guest)
                            for guest in GUESTS}
        self.fault_count = {guest: sum(1 for crash in self.stability if crash.get("guest") == guest and is_fault(crash))
                            for guest in GUESTS}
        self.load_runs = {guest: [run for run in self.load if run.guest == guest] for guest in GUESTS}
        # The bulk phase: the sizes asked for (or, from a line without them, those measured), each
        # guest's transfers by direction and size, and the appliance's echo.
        self.bulk_sizes = [int(size) for size in self.config.get("bulk_sizes", "").split() if size.isdigit()] or \
            sorted({transfer.size for transfer in self.transfers if transfer.direction != "echo"})
        self.bulk_cells = {}
        for direction, _ in DIRECTIONS:
            for size in self.bulk_sizes:
                self.bulk_cells[direction, size] = {
                    guest: BulkCell([transfer for transfer in self.transfers if transfer.guest == guest
                                     and transfer.direction == direction and transfer.size == size])
                    for guest in GUESTS}
        self.echo = BulkCell([transfer for transfer in self.transfers
                              if transfer.guest == "appliance" and transfer.direction == "echo"])
        self.echo_size = int(number(self.config.get("bulk_echo_mib")) or 0) or \
            next((transfer.size for transfer in self.echo.all), 0)

    def at_most(self, guest):
        """The prefix "≤ " when GUEST's smallest size tried passed: its real minimum may be lower."""
        return "≤ " if self.memory.get(guest, {}).get("below") == "none" else ""


def write_chart(out, bench):
    """The chart beside the report OUT: a PNG through matplotlib, else an SVG; removes the other kind
    left by an earlier run. Returns the chart's file name."""
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(out))[0]
    chart = f"{stem}.png"
    if chart_png(os.path.join(out_dir, chart), bench.concurrencies, bench.cells):
        stale = os.path.join(out_dir, f"{stem}.svg")
    else:
        chart = f"{stem}.svg"
        chart_svg(os.path.join(out_dir, chart), bench.concurrencies, bench.cells)
        stale = os.path.join(out_dir, f"{stem}.png")
    if os.path.exists(stale):
        os.remove(stale)
    return chart


# --- The report: tables -----------------------------------------------------------------------------
def summary_lines(bench):
    """The summary's bullet points: the ratios, boot time, memory, size, crashes and what went wrong."""
    cells = bench.cells
    summary = []
    both = [c for c in bench.concurrencies if cells["appliance"][c].ok and cells["peer"][c].ok]
    for c in both:
        a, p = cells["appliance"][c], cells["peer"][c]
        summary.append(f"- {c} connection{'s' if c != 1 else ''}: xenecho serves **{ratio(a.rate, p.rate, 1)}** the requests "
                       f"per second of Linux + nginx ({fmt(a.rate)} vs {fmt(p.rate)}), p99 latency "
                       f"{ratio(a.p99, p.p99)} of nginx's, guest CPU time per request {ratio(a.cpu_guest, p.cpu_guest, 3)}.")
    for c in bench.concurrencies:
        if c not in both:
            summary.append(f"- {c} connections: no comparison (" + ", ".join(
                f"{LABEL[g]}: {'no surviving run' if cells[g][c].all else 'not measured'}"
                for g in GUESTS if not cells[g][c].ok) + ").")
    boot = {guest: median(number(b.get("http_ms")) for b in bench.boots
                          if b.get("guest") == guest and b.get("phase", "").startswith("boot") and b.get("status") == "ok")
            for guest in GUESTS}
    if boot["appliance"] is not None and boot["peer"] is not None:
        summary.append(f"- Time from `xl create` to the first HTTP answer: {fmt(boot['appliance'])} ms against "
                       f"{fmt(boot['peer'])} ms ({ratio(boot['appliance'], boot['peer'])}).")
    minimum = {guest: number(bench.memory.get(guest, {}).get("min")) for guest in GUESTS}
    if minimum["appliance"] and minimum["peer"]:
        summary.append(f"- Smallest `memory =` that passes a short wrk run: {bench.at_most('appliance')}"
                       f"{fmt(minimum['appliance'])} MB against {bench.at_most('peer')}{fmt(minimum['peer'])} MB "
                       f"({ratio(minimum['appliance'], minimum['peer'])}).")
    sizes, peer_size = bench.sizes, bench.peer_size
    if sizes.get("appliance") and peer_size:
        summary.append(f"- Image on disk: {fmt(sizes['appliance'] / 1024)} KiB against {fmt(peer_size / 1024)} KiB "
                       f"(kernel + initramfs; {ratio(sizes['appliance'], peer_size, 3)}).")
    summary.extend(bulk_summary_lines(bench))
    load_runs = bench.load_runs
    summary.append("- Crashes: " + "; ".join(
        f"{LABEL[g]} {bench.crash_count[g]} ({bench.fault_count[g]} with the emulator fault's mark; it died in "
        f"{sum(1 for run in load_runs[g] if run.status == 'crashed')} of its {len(load_runs[g])} load runs"
        + bulk_crash_text(bench, g) + ")"
        for g in GUESTS) + ". Figures above come from the runs that survived; see [Crashes](#crashes).")
    if not bench.appliance_http:
        summary.append("- **The appliance did not answer HTTP on port 80** in this run: no throughput figures for it.")
    peer_used = bench.peer_used
    if peer_used and peer_used.get("used") != peer_used.get("wanted"):
        why = next((b.get("why") or b.get("status") for b in bench.boots if b.get("guest") == "peer"
                    and b.get("mem") == peer_used.get("wanted") and b.get("status") != "ok"), "")
        summary.append(f"- Linux + nginx could not start with the appliance's {peer_used.get('wanted')} MB"
                       + (f" (`{why}`)" if why else "") + f"; it ran with {peer_used.get('used')} MB, the smallest "
                       f"size of the memory list it started with (the appliance kept {peer_used.get('wanted')} MB).")
    return summary


def bulk_comparisons(bench, direction):
    """Per size, smallest first, where both guests have an ok transfer in DIRECTION: (size, both
    cells, the MiB/s ratio, the guest CPU per MiB ratio); a ratio is None where it cannot be formed."""
    comparisons = []
    for size in bench.bulk_sizes:
        a, p = bench.bulk_cells[direction, size]["appliance"], bench.bulk_cells[direction, size]["peer"]
        if not (a.ok and p.ok):
            continue
        rate = a.rate / p.rate if a.rate and p.rate else None
        cpu = a.cpu_guest / p.cpu_guest if a.cpu_guest is not None and p.cpu_guest else None
        comparisons.append((size, a, p, rate, cpu))
    return comparisons


def bulk_summary_lines(bench):
    """The summary's bulk points: per direction, the ratios at the largest size both guests moved."""
    lines = []
    if not bench.transfers:
        return lines
    for direction, name in DIRECTIONS:
        comparisons = bulk_comparisons(bench, direction)
        if not comparisons:
            lines.append(f"- Bulk {name}: no comparison (no size with an ok transfer of both guests).")
            continue
        size, a, p, _, _ = comparisons[-1]
        lines.append(f"- Bulk {name} of {size} MiB: xenecho moves **{ratio(a.rate, p.rate, 1)}** the MiB/s of "
                     f"Linux + nginx ({fmt(a.rate, 2)} vs {fmt(p.rate, 2)} MiB/s), guest CPU time per MiB "
                     f"{ratio(a.cpu_guest, p.cpu_guest, 3)}; see [Bulk transfers](#bulk-transfers).")
    return lines


def bulk_crash_text(bench, guest):
    """The summary's crash line's " and in N of its M bulk transfers", or nothing without any."""
    transfers = [transfer for transfer in bench.transfers if transfer.guest == guest]
    if not transfers:
        return ""
    crashed = sum(1 for transfer in transfers if transfer.status == "crashed")
    return f" and in {crashed} of its {len(transfers)} bulk transfers"


def bulk_goal(bench, direction, which):
    """Whether the issue's goal WHICH ("rate": at least RATE_GOAL times nginx's MiB/s; "cpu": at most
    CPU_GOAL times its guest CPU per MiB) is met in DIRECTION. Judged at the largest size with the
    figure for both guests; the smaller sizes' ratios follow in brackets. "not measured" without one."""
    figures = []
    for size, _, _, rate, cpu in bulk_comparisons(bench, direction):
        value = rate if which == "rate" else cpu
        if value is not None:
            figures.append((size, value))
    if not figures:
        return "not measured"
    digits = 2 if which == "rate" else 3
    size, value = figures[-1]
    met = value >= RATE_GOAL if which == "rate" else value <= CPU_GOAL
    others = "".join(f"; {other} MiB: {other_value:.{digits}f}×" for other, other_value in figures[:-1])
    return f"**{'met' if met else 'not met'}** at {size} MiB ({value:.{digits}f}×{others})"


def per_mib_ms(seconds_per_mib):
    """CPU seconds per MiB in milliseconds (None stays None)."""
    return None if seconds_per_mib is None else seconds_per_mib * 1e3


def bulk_rows(bench):
    """Per direction and size: both guests' median MiB/s (ok transfers of all), the ratio, and the guest
    and dom0 CPU ms per MiB with the guest's ratio; ratios only where both guests have an ok transfer."""
    rows = []
    for direction, name in DIRECTIONS:
        for size in bench.bulk_sizes:
            a, p = bench.bulk_cells[direction, size]["appliance"], bench.bulk_cells[direction, size]["peer"]
            comparable = a.ok and p.ok
            rows.append([name, size, f"{fmt(a.rate, 2)} ({a.rounds})", f"{fmt(p.rate, 2)} ({p.rounds})",
                         ratio(a.rate, p.rate) if comparable else "–",
                         fmt(per_mib_ms(a.cpu_guest), 1), fmt(per_mib_ms(p.cpu_guest), 1),
                         ratio(a.cpu_guest, p.cpu_guest, 3) if comparable else "–",
                         fmt(per_mib_ms(a.cpu_dom0), 1), fmt(per_mib_ms(p.cpu_dom0), 1)])
    return rows


def transfer_rows(bench):
    """Every bulk transfer, in order, with its figures."""
    names = dict(DIRECTIONS, echo="echo")
    rows = []
    for transfer in bench.transfers:
        rows.append([LABEL.get(transfer.guest, transfer.guest), names.get(transfer.direction, transfer.direction),
                     transfer.size, transfer.round, transfer.status, fmt(transfer.seconds, 3), transfer.bytes,
                     fmt(transfer.rate, 2), fmt(transfer.cpu_guest, 1), fmt(transfer.cpu_dom0, 1)])
    return rows


def throughput_rows(bench):
    """Per concurrency: both guests' req/s, p50 and p99 latency, their ratios and surviving runs."""
    rows = []
    for c in bench.concurrencies:
        a, p = bench.cells["appliance"][c], bench.cells["peer"][c]
        comparable = a.ok and p.ok
        rows.append([c, fmt(a.rate), fmt(p.rate), ratio(a.rate, p.rate) if comparable else "–",
                     fmt(ms(a.p50), 2), fmt(ms(p.p50), 2), fmt(ms(a.p99), 2), fmt(ms(p.p99), 2),
                     ratio(a.p99, p.p99) if comparable else "–",
                     f"{len(a.runs)}/{len(a.all)}", f"{len(p.runs)}/{len(p.all)}"])
    return rows


def cpu_rows(bench, xen_cpus):
    """Per concurrency and guest: CPU seconds and CPU time per request (guest and dom0), dom0's
    ceiling on req/s with XEN_CPUS CPUs, and the ratio where both guests survived."""
    rows = []
    for c in bench.concurrencies:
        for guest in GUESTS:
            cell = bench.cells[guest][c]
            if not cell.ok:
                continue
            ceiling = xen_cpus / cell.cpu_dom0 if xen_cpus and cell.cpu_dom0 else None
            rows.append([c, LABEL[guest], fmt(cell.cpu_guest_seconds, 1),
                         fmt(cell.cpu_guest * 1e3 if cell.cpu_guest is not None else None, 3),
                         fmt(cell.cpu_dom0 * 1e3 if cell.cpu_dom0 is not None else None, 3), fmt(ceiling)])
        a, p = bench.cells["appliance"][c], bench.cells["peer"][c]
        if a.ok and p.ok:
            rows.append([c, "**ratio xenecho / Linux**", "", f"**{ratio(a.cpu_guest, p.cpu_guest, 3)}**",
                         ratio(a.cpu_dom0, p.cpu_dom0), ""])
    return rows


def idle_share(bench):
    """Per guest: the share of a CPU it used, on average, while the other guest was under load."""
    idle = defaultdict(list)
    for run in bench.load:
        if run.cpu_other is not None and run.seconds:
            idle["peer" if run.guest == "appliance" else "appliance"].append(run.cpu_other / run.seconds)
    return idle


def counter_rows(bench):
    """Per counter of COUNTERS, and the requests counter last: its increase per request answered,
    summed over the appliance's surviving load runs at each concurrency."""
    totals = {}
    for c in bench.concurrencies:
        summed = defaultdict(float)
        for run in bench.cells["appliance"][c].runs:
            for name, value in (run.metrics or {}).items():
                summed[name] += value or 0
        totals[c] = summed
    rows = []
    for name, meaning in COUNTERS:
        row = [f"`{name}`", meaning]
        for c in bench.concurrencies:
            requests = totals[c].get(REQUESTS_COUNTER)
            row.append(fmt(totals[c].get(name, 0.0) / requests, 2) if requests else "–")
        rows.append(row)
    rows.append([f"`{REQUESTS_COUNTER}`", "requests counted (the divisor)"]
                + [fmt(totals[c].get(REQUESTS_COUNTER)) for c in bench.concurrencies])
    return rows


def boot_rows(bench):
    """Per guest: the timed boots that answered, its memory, and median (min–max) of each time."""
    rows = []
    for guest in GUESTS:
        timed = [b for b in bench.boots if b.get("guest") == guest and b.get("phase", "").startswith("boot")]
        good = [b for b in timed if b.get("status") == "ok"]

        def spread(key):
            values = [number(b.get(key)) for b in good if number(b.get(key)) is not None]
            if not values:
                return "–"
            return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"
        rows.append([LABEL[guest], f"{len(good)}/{len(timed)}", fmt(number(good[0].get('mem')) if good else None),
                     spread("create_ms"), spread("address_ms"), spread("http_ms")])
    return rows


def memory_rows(bench):
    """Per guest: the smallest memory that passed and every probe's size and result."""
    rows = []
    for guest in GUESTS:
        result = bench.memory.get(guest, {})
        tried = ", ".join(f"{p.get('mem')} MB {p.get('result')}" for p in bench.probes if p.get("guest") == guest)
        minimum_text = f"{bench.at_most(guest)}{result.get('min')} MB" if result.get("min") not in (None, "none") else \
            f"more than {result.get('above')} MB" if result else "–"
        rows.append([LABEL[guest], minimum_text, tried or "–"])
    return rows


def size_rows(bench):
    """Both guests' images on disk, in KiB."""
    sizes, peer_size = bench.sizes, bench.peer_size
    return [["xenecho", "`build/xenecho.elf` (one ELF; loaded segments " + fmt((sizes.get("appliance_loaded") or 0) / 1024)
             + " KiB)", fmt((sizes.get("appliance") or 0) / 1024)],
            ["Linux + nginx", "Debian `vmlinuz` + initramfs (busybox, nginx, glibc, OpenSSL, xen-netfront; "
             + fmt((sizes.get("peer_initramfs_unpacked") or 0) / 1024) + " KiB unpacked)",
             f"{fmt((sizes.get('peer_kernel') or 0) / 1024)} + {fmt((sizes.get('peer_initramfs') or 0) / 1024)} = "
             f"{fmt(peer_size / 1024)}"]]


def crash_rows(bench):
    """Per guest: the crashes counted (stability), by mark and phase, and its load runs that crashed."""
    rows = []
    for guest in GUESTS:
        by_phase = defaultdict(int)
        for crash in bench.stability:
            if crash.get("guest") == guest:
                by_phase[crash.get("phase", "?").split("-")[0]] += 1
        guest_runs = bench.load_runs[guest]
        rows.append([LABEL[guest], bench.crash_count[guest], bench.fault_count[guest], by_phase.get("load", 0),
                     by_phase.get("bulk", 0), by_phase.get("mem", 0),
                     sum(v for k, v in by_phase.items() if k.startswith("boot")),
                     f"{sum(1 for run in guest_runs if run.status == 'crashed')}/{len(guest_runs)}"])
    return rows


def run_rows(bench):
    """Every wrk run, in order, with its figures."""
    rows = []
    for run in bench.runs:
        rows.append([LABEL.get(run.guest, run.guest), run.phase, run.connections, run.round, run.memory, run.status,
                     run.requests, fmt(run.rate), fmt(ms(run.p50), 2), fmt(ms(run.p99), 2), run.errors,
                     fmt(run.cpu_guest, 1), fmt(run.cpu_dom0, 1), fmt(run.cpu_other, 1)])
    return rows


def machine_rows(bench):
    """The host, QEMU, Xen, dom0, the peer's packages, the guests and the run's length."""
    info, host, config, peer_used = bench.info, bench.host, bench.config, bench.peer_used
    return [["host CPU", info.get("cpu", "?")], ["host cores (`nproc`)", info.get("nproc", "?")],
            ["host memory (`free -h`)", info.get("memory", "?")], ["host kernel", info.get("host_kernel", "?")],
            ["QEMU", info.get("qemu", "?") + " (TCG, single-threaded, `-cpu qemu64,+svm,+npt -smp 2 -m 3072`)"],
            ["Xen", f"{host.get('xen', '?')} ({info.get('package.xen-hypervisor-4.17-amd64', '?')}), "
                    f"{host.get('xen_cpus', '?')} CPUs as Xen sees them"],
            ["dom0", f"Linux {host.get('dom0_kernel', '?')}, {host.get('dom0_vcpus', '?')} vCPUs, "
                     f"{host.get('dom0_mem_mb', '?')} MB; {host.get('wrk', 'wrk')}"],
            ["peer", f"{info.get('package.linux-image', '?')}, {info.get('package.nginx', '?')}, "
                     f"{info.get('package.busybox-static', '?')}"],
            ["guests", f"{config.get('vcpus', '?')} vCPU each; xenecho {config.get('memory', '?')} MB, Linux "
                       f"{peer_used.get('used', '?')} MB"],
            ["whole `make bench`", f"{info.get('host_seconds', '?')} s (dom0 script: {(bench.end or {}).get('seconds', '?')} s)"]]


# --- The report: sections ---------------------------------------------------------------------------
# Each returns its parts of the report, which are joined with newlines.
def render_header(bench):
    """The title, where the figures come from, and a warning when the run did not finish."""
    info = bench.info
    parts = ["# Benchmarks: xenecho against Linux + nginx on the same Xen host\n",
             f"Generated by `make bench` on {info.get('date', '?')} from revision `{info.get('revision', '?')}`; "
             "do not edit by hand (bench/report.py writes it). Both guests ran on one emulated Xen host "
             "(QEMU TCG → Xen → Debian dom0), in one boot of it, alternating run by run. The host is about a thousand "
             "times slower than hardware and every domain shares one emulated core with dom0, which runs wrk: "
             "**read the ratios and the counters, not the absolute numbers.**\n",
             "How many appliances the same host serves at once, against how many Linux + nginx guests, is "
             "[fleet.md](fleet.md) (`make bench-fleet`).\n"]
    if bench.end is None:
        parts.append("> **This run did not finish** (the test host stopped or timed out): what follows is what came out "
                     "before that.\n")
    return parts


def render_summary(bench, chart):
    """## Summary, then the chart (file name CHART)."""
    return ["## Summary\n", "\n".join(summary_lines(bench)) + "\n", f"![requests per second by concurrency]({chart})\n"]


def render_throughput(bench):
    """## Throughput and latency: how wrk ran, the table, and wrk's errors."""
    config = bench.config
    errors = {guest: sum(bench.cells[guest][c].errors for c in bench.concurrencies) for guest in GUESTS}
    return ["## Throughput and latency\n",
            f"`wrk -t 1 -c C -d {config.get('duration', '?')}s --timeout 10s` on `GET /` with keep-alive, from dom0, "
            f"{config.get('rounds', '?')} rounds per guest and concurrency, alternating xenecho and Linux (a run the guest "
            "crashed in is run once more after a restart; a guest left without any surviving run at a concurrency gets "
            "one extra round). Requests per "
            "second are all surviving runs' requests over their summed duration; p50/p99 are the median over those "
            "runs of wrk's per-run percentiles. The body is xenecho's echo of the request head "
            "(about 40 bytes) and nginx's fixed 37-byte text.\n",
            table(["connections", "xenecho req/s", "Linux req/s", "req/s ratio", "xenecho p50 ms", "Linux p50 ms",
                   "xenecho p99 ms", "Linux p99 ms", "p99 ratio", "xenecho runs ok", "Linux runs ok"],
                  throughput_rows(bench)) + "\n",
            f"wrk errors (connect, read, write, timeout, non-2xx) in the surviving runs: xenecho {errors['appliance']}, "
            f"Linux {errors['peer']}.\n"]


def render_cpu(bench):
    """## CPU time per request: the table and what the idle guest used."""
    xen_cpus = number(bench.host.get("xen_cpus"))
    parts = ["## CPU time per request (Xen's accounting)\n",
             "Each guest's and dom0's CPU seconds from `xl list` (the Time(s) column, 0.1 s resolution) before and after "
             "each run, summed over the surviving runs and divided by the requests wrk counted. This isolates each "
             "guest's own cost from dom0's (wrk, netback, the bridge), which caps req/s on this host. "
             + (f"The last column is the ceiling dom0 sets: if the guest cost nothing, dom0 could serve at most "
                f"{fmt(xen_cpus)} CPUs / its CPU time per request." if xen_cpus else "") + "\n",
             table(["connections", "guest", "guest CPU s", "guest CPU ms / request", "dom0 CPU ms / request",
                    "dom0 ceiling req/s"], cpu_rows(bench, xen_cpus), ["---:", ":---", "---:", "---:", "---:", "---:"])
             + "\n"]
    idle = idle_share(bench)
    if idle:
        parts.append("While one guest was under load the other stayed up, idle: it used "
                     + ", ".join(f"{LABEL[g]} {statistics.mean(v) * 100:.1f} %" for g, v in sorted(idle.items()))
                     + " of a CPU on average.\n")
    return parts


def render_bulk(bench):
    """## Bulk transfers: how they ran, the table, the issue's goals and the appliance's echo; "not
    measured" without bulk lines."""
    config = bench.config
    parts = ["## Bulk transfers\n"]
    if not bench.transfers:
        why = "`--no-bulk`" if config.get("bulk") == "no" else \
            "no bulk transfer in the results: a run from before the bulk phase, or one that stopped before it"
        parts.append(f"Not measured in this run ({why}).\n")
    else:
        if config.get("bulk_appliance"):
            parts.append(
                f"xenecho runs this phase with `{config['bulk_appliance']}` on its command line, in a new boot (the "
                "load phase's guest runs with the defaults; docs/netfront.md says what the socket buffer buys, and "
                "what it costs in connection slots).\n")
        parts.append(
            f"One transfer at a time from dom0 with curl, {config.get('bulk_rounds', '?')} rounds per guest, size and "
            "direction, alternating xenecho and Linux round by round, the other guest paused meanwhile (an idle Linux "
            "guest's timer interrupts cost this emulated host far more than hardware; a transfer the guest crashed in "
            "is made once more after a restart). **Download**: xenecho generates the body (`GET /?bytes=N`); nginx sends a file with "
            "sendfile (`GET /bulk/<N>M`, a sparse file on a tmpfs: zero pages from the page cache). **Upload**: a `POST` "
            "of N random bytes (`curl -T` from a file in dom0's tmpfs, read as it is sent) to xenecho's sink "
            "(`X-Echo-Sink: 1`: it reads the body to its end, then answers its length and SHA-256) or to nginx's "
            "`/sink` (`return 204`, `client_max_body_size 0`: nginx answers at once, then reads the body and drops "
            "it); a `GET /` follows on the same connection, and its answer, which a server gives only once it has "
            "read the whole body, ends the timing. A transfer is ok when its status is 200 (204 from nginx's sink) and "
            "every byte arrived (for xenecho's sink, the length it answers too).\n")
        parts.append(
            "**MiB/s**: the bytes moved over the wall-clock time around curl (bash's `$EPOCHREALTIME`), with "
            "1 MiB = 2^20 bytes everywhere in this section; the median over the ok transfers, with the ok transfers of "
            "all made in brackets. **CPU**: each domain's `xl list` seconds before and after each transfer (0.1 s "
            "resolution), summed over the ok transfers and divided by the MiB they moved; a transfer of a second or "
            "less carries mostly rounding, so read the largest size.\n")
        parts.append(table(["direction", "MiB", "xenecho MiB/s (ok)", "Linux MiB/s (ok)", "MiB/s ratio",
                            "xenecho guest CPU ms / MiB", "Linux guest CPU ms / MiB", "guest CPU ratio",
                            "xenecho dom0 CPU ms / MiB", "Linux dom0 CPU ms / MiB"],
                           bulk_rows(bench), [":---"] + ["---:"] * 9) + "\n")
    parts.append("**Goals** (from the issue): ≥ 2× Linux + nginx in MB/s and ≤ 0.3× its guest CPU per MB, both "
                 "directions. Judged in MiB (a ratio does not depend on the unit) at the largest size with figures for "
                 "both guests; the smaller sizes' ratios are in brackets.\n")
    parts.append("\n".join([
        "- MiB/s at least 2× Linux + nginx's: " + "; ".join(
            f"{name} {bulk_goal(bench, direction, 'rate')}" for direction, name in DIRECTIONS) + ".",
        "- Guest CPU per MiB at most 0.3× Linux + nginx's: " + "; ".join(
            f"{name} {bulk_goal(bench, direction, 'cpu')}" for direction, name in DIRECTIONS) + "."]) + "\n")
    echo, size = bench.echo, bench.echo_size
    if not echo.all:
        parts.append("xenecho's echo of a large body: not measured.\n")
    elif echo.ok:
        parts.append(f"xenecho's echo of {size} MiB (`POST /echo`, the answer compared with the body by `cmp`): "
                     f"**{fmt(echo.rate, 2)} MiB/s each way** ({size} MiB up and {size} MiB back in "
                     f"{fmt(echo.seconds, 2)} s; the median of {echo.rounds} ok rounds), guest CPU "
                     f"{fmt(per_mib_ms(echo.cpu_guest), 1)} ms and dom0 CPU {fmt(per_mib_ms(echo.cpu_dom0), 1)} ms per "
                     "MiB echoed.\n")
    else:
        parts.append(f"xenecho's echo of {size} MiB (`POST /echo`, the answer compared with the body by `cmp`): "
                     f"no round was ok ({', '.join(transfer.status or '?' for transfer in echo.all)}).\n")
    failed = [transfer for transfer in bench.transfers if not transfer.ok]
    if failed:
        names = dict(DIRECTIONS, echo="echo")
        parts.append("Transfers not counted: " + "; ".join(
            f"{LABEL.get(t.guest, t.guest)} {names.get(t.direction, t.direction)} of {t.size} MiB, round {t.round}: "
            f"{t.status}" for t in failed) + ".\n")
    return parts


def render_counters(bench):
    """## Per-request counters of the appliance, or why there are none."""
    parts = ["## Per-request counters of the appliance\n"]
    if not bench.appliance_http:
        parts.append("No HTTP on the appliance in this run: no counters.\n")
    elif not bench.metrics_available:
        parts.append("**metrics endpoint not available**: the appliance did not answer "
                     "`http://GUEST_IP:19100/metrics` in this run.\n")
    else:
        parts.append("From the appliance's Prometheus page (`http://GUEST_IP:19100/metrics`) scraped before and after each "
                     f"surviving load run: the counter's increase summed over the runs, divided by the increase of "
                     f"`{REQUESTS_COUNTER}` (the requests the appliance itself answered). The two scrapes add one "
                     "connection each to the packet and event counters, negligible against thousands of requests. These "
                     "figures do not depend on the machine's speed.\n")
        header = ["counter", "meaning"] + [f"{c} conn." for c in bench.concurrencies]
        parts.append(table(header, counter_rows(bench), [":---", ":---"] + ["---:"] * len(bench.concurrencies)) + "\n")
    return parts


def render_boot(bench):
    """## Time from `xl create` to the first HTTP answer, and the starts that did not answer."""
    parts = ["## Time from `xl create` to the first HTTP answer\n",
             "dom0 runs `xl create` and then polls: the guest's address (xenecho publishes it in xenstore "
             "`data/ipv4-address`; the peer prints it on its console), then `curl http://IP/` every 0.25 s until a "
             "200. Both get their address by DHCP from dom0's udhcpd. Times in ms from just before `xl create`; "
             "median (min–max) over the timed boots.\n",
             table(["guest", "boots ok", "memory MB", "`xl create` returned", "address known", "first HTTP 200"],
                   boot_rows(bench), [":---", "---:", "---:", "---:", "---:", "---:"]) + "\n"]
    failed = [b for b in bench.boots if b.get("status") != "ok"]
    if failed:
        parts.append("Starts that did not answer: " + "; ".join(
            f"{LABEL.get(b.get('guest'), b.get('guest'))} with {b.get('mem')} MB ({b.get('phase')}): {b.get('status')}"
            + (f" – {b.get('why')}" if b.get("why") else "") for b in failed) + ".\n")
    return parts


def render_memory(bench):
    """## Smallest memory that passes a short wrk run, or that it was not measured."""
    config = bench.config
    parts = ["## Smallest memory that passes a short wrk run\n"]
    if config.get("mem_duration") is None or not bench.probes:
        parts.append("Not measured in this run (`--no-memory`).\n")
    else:
        parts.append(f"A probe boots the guest alone with `memory = M` (vcpus as in xl.cfg), waits for its first HTTP 200, "
                     f"then runs `wrk -c {config.get('mem_connections')} -d {config.get('mem_duration')}s`; it passes when "
                     "the guest survives with no wrk error. Bisection over the sizes listed (assuming more memory never "
                     "hurts). A probe the emulator fault killed is tried again, up to three times; `fault-served` means "
                     "all three were killed by it after the guest had booted and answered, which is counted as enough "
                     "memory (the fault strikes at any size). `≤` means the smallest size in the list passed.\n")
        parts.append(table(["guest", "smallest passing", "probes"], memory_rows(bench), [":---", "---:", ":---"]) + "\n")
    return parts


def render_size(bench):
    """## Image size on disk, and the ratio."""
    parts = ["## Image size on disk\n", table(["guest", "what", "KiB"], size_rows(bench), [":---", ":---", "---:"]) + "\n"]
    if bench.sizes.get("appliance") and bench.peer_size:
        parts.append(f"Ratio xenecho / Linux: {ratio(bench.sizes['appliance'], bench.peer_size, 3)}.\n")
    return parts


def render_crashes(bench):
    """## Crashes: why Linux guests die here, the counts, and every crash with its mark."""
    parts = ["## Crashes\n",
             "On this emulated host Linux PVH guests die at random under network load: QEMU 7.2's SVM emulation "
             "injects the event-channel upcall vector again at the first instruction of its own handler until the "
             "stack overflows (see docs/event-loop.md). xenecho takes no upcall (it blocks in "
             "`SCHEDOP_poll`), so it does not meet it. A crashed guest (`xl list` state `c`, or gone) is counted, "
             "destroyed and started again; the run or bulk transfer it died in is left out of every figure above and "
             "made once more.\n",
             "Crashes of a start that had too little memory (during the timed boots or the memory probes, without "
             "the fault's mark: an out-of-memory panic, say) are not counted here but listed below and in the memory "
             "section.\n",
             table(["guest", "crashes", "with the fault's mark", "in load runs", "in bulk transfers", "in memory probes",
                    "while booting", "load runs crashed"], crash_rows(bench), [":---"] + ["---:"] * 7) + "\n"]
    if bench.crashes:
        parts.append("Every crash, with the mark that identifies it (the emulator fault's stack overflow in the upcall "
                     "handler, a panic message, or the console's last line):\n")
        parts.append("\n".join(f"- {LABEL.get(c.get('guest'), c.get('guest'))}, {c.get('phase')}, {c.get('mem')} MB"
                               + ("" if is_stability(c) else " (not counted: a start with too little memory)")
                               + f": `{(c.get('why') or '').replace('`', '')}`" for c in bench.crashes) + "\n")
    return parts


def render_runs(bench):
    """## Every wrk run, in order."""
    return ["## Every wrk run, in order\n",
            table(["guest", "phase", "conn.", "round", "MB", "status", "requests", "req/s", "p50 ms", "p99 ms",
                   "errors", "guest CPU s", "dom0 CPU s", "other guest CPU s"], run_rows(bench),
                  [":---", ":---"] + ["---:"] * 3 + [":---"] + ["---:"] * 8) + "\n"]


def render_transfers(bench):
    """## Every bulk transfer, in order (nothing when there was none)."""
    if not bench.transfers:
        return []
    return ["## Every bulk transfer, in order\n",
            table(["guest", "direction", "MiB", "round", "status", "seconds", "bytes", "MiB/s", "guest CPU s",
                   "dom0 CPU s"], transfer_rows(bench), [":---", ":---", "---:", "---:", ":---"] + ["---:"] * 5) + "\n"]


def dma_sections(text):
    """The DMA report's tables and lists, each section under its heading (in bold), as Markdown.

    The report has a "## " heading over each table (sync, latency, map + sync + unmap, threads) and over
    its lists (other figures, goals); the prose around them stays in the full note. A report without
    headings (an older one) gives its table lines alone.
    """
    sections, heading, lines = [], None, []

    def close():
        if lines:
            sections.append((f"**{heading}**\n\n" if heading else "") + "\n".join(lines) + "\n")

    for line in text.splitlines():
        if line.startswith("## "):
            close()
            heading, lines = line[3:].strip(), []
        elif line.startswith("|") or (heading and line.startswith("- ")):
            lines.append(line)
    close()
    return sections


def render_dma(bench, dma_path):
    """## DMA micro-benchmark (host): the tables of the report at DMA_PATH, if there is one."""
    info = bench.info
    parts = ["## DMA micro-benchmark (host)\n"]
    dma_text = ""
    if dma_path and os.path.exists(dma_path):
        with open(dma_path, encoding="utf-8") as dma:
            dma_text = dma.read()
    sections = dma_sections(dma_text)
    if sections:
        state = "run as part of this `make bench`" if info.get("dma_ran") == "yes" else \
            "not run this time (`--no-dma`): the last report"
        parts.append(f"`{info.get('command.dma', 'cargo bench -p dma --bench dma_lookup')}` ({state}); the full note, "
                     "with how each figure is measured, is [benchmarks-dma.md](benchmarks-dma.md). Nanoseconds per "
                     "operation on one of N live one-page mappings, by handle against by bus address through an "
                     "index; in brackets, the time over the handle's:\n")
        parts.extend(sections)
    else:
        parts.append("No DMA report found.\n")
    return parts


def render_how(bench):
    """## How it was run: the commands, and the options."""
    info, config, peer_used = bench.info, bench.config, bench.peer_used
    return ["## How it was run\n",
            "```sh\n"
            "make bench                 # = make image, then:\n"
            f"{info.get('command.bench', 'bench/run.sh')}\n"
            "#   testbed/setup.sh --peer   (test host + peer image, cached)\n"
            f"#   {info.get('command.dma', '')}\n"
            "#   testbed/run.sh --guest-dir build/testbed/bench/guest --script bench/dom0.sh --timeout ...\n"
            "#   bench/report.py ...       (this file)\n"
            "# in dom0, per guest (memory and vcpus from xl.cfg):\n"
            f"xl create -q xl.cfg memory={config.get('memory', '?')} vcpus={config.get('vcpus', '?')}\n"
            f"xl create -q build/peer/peer.cfg memory={peer_used.get('used', '?')} vcpus={config.get('vcpus', '?')}\n"
            f"wrk -t 1 -c C -d {config.get('duration', '?')}s --timeout 10s -s bench.lua http://GUEST_IP/   "
            f"# C in {config.get('concurrencies', '?')}\n"
            "curl -s http://GUEST_IP:19100/metrics   # before and after each xenecho run\n"
            + (bulk_commands(bench) if bench.transfers else "") +
            "xl list                                # CPU seconds before and after each run and transfer\n"
            "```\n",
            "Options: `make bench BENCH_ARGS='--duration 5 --rounds 1 --no-memory'`; `--no-bulk` skips the bulk "
            "transfers, `--bulk-sizes \"1 64\"` sets their sizes in MiB (see `bench/run.sh --help`). "
            "The peer is built by `testbed/setup.sh --peer` from Debian bookworm packages: the dom0 kernel as a PVH "
            "domU, an initramfs with busybox and nginx (`testbed/peer/`: its `/init`, `nginx.conf` and xl config); "
            "it asks dom0's udhcpd for its address with busybox udhcpc.\n"]


def bulk_commands(bench):
    """The bulk phase's curl commands, for the "How it was run" block."""
    sizes = " ".join(str(size) for size in bench.bulk_sizes) or "?"
    return ("# bulk, N = S MiB for S in " + sizes + " (Linux: GET /bulk/<S>M, POST /sink without X-Echo-Sink):\n"
            "curl -o /dev/null 'http://GUEST_IP/?bytes=N'\n"
            "curl -X POST -T BODY -H 'Expect:' -H 'X-Echo-Sink: 1' http://GUEST_IP/upload --next http://GUEST_IP/\n"
            f"curl -X POST -T BODY -H 'Expect:' -o ECHOED http://GUEST_IP/echo   # {bench.echo_size or '?'} MiB; "
            "cmp BODY ECHOED\n")


def render_machine(bench):
    """## The machine."""
    return ["## The machine\n", table(["", ""], machine_rows(bench), [":---", ":---"]) + "\n",
            "Other QEMU instances may have shared the host's cores during the run: that moves absolute numbers, not "
            "the alternating comparison.\n"]


# --- The report ------------------------------------------------------------------------------------
def write_report(path, parts):
    """The report's parts, joined with newlines, into PATH."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(parts))


def render(bench, out, dma_path):
    """Writes the chart beside the report OUT; returns the chart's file name and the report's parts,
    section by section."""
    chart = write_chart(out, bench)
    parts = (render_header(bench) + render_summary(bench, chart) + render_throughput(bench) + render_cpu(bench)
             + render_bulk(bench) + render_counters(bench) + render_boot(bench) + render_memory(bench)
             + render_size(bench) + render_crashes(bench) + render_runs(bench) + render_transfers(bench)
             + render_dma(bench, dma_path) + render_how(bench) + render_machine(bench))
    return chart, parts


# --- The check ---------------------------------------------------------------------------------------
def check():
    """The generator on bench/report-sample.txt, and on its lines without the bulk ones (a run from
    before the bulk phase): each report must have what the sample's figures give, and no "nan"."""
    here = os.path.dirname(os.path.abspath(__file__))
    records = parse_results(os.path.join(here, "report-sample.txt"))
    info = {"date": "sample", "revision": "sample", "command.bench": "bench/run.sh"}
    cases = [
        ("bench/report-sample.txt", records, [
            "## Bulk transfers",
            # 64 MiB download: medians 6.11 and 2.61 MiB/s; guest CPU 2.5 s and 16.2 s over 128 MiB.
            "| download | 64 | 6.11 (2/2) | 2.61 (2/2) | 2.34× | 19.5 | 126.6 | 0.154× |",
            # 1 MiB upload: the peer crashed once, made again after its restart.
            "| upload | 1 | 3.92 (2/2) | 3.08 (2/3) | 1.27× |",
            "- MiB/s at least 2× Linux + nginx's: download **met** at 64 MiB (2.34×; 1 MiB: 2.16×); "
            "upload **not met** at 64 MiB (1.59×; 1 MiB: 1.27×).",
            "- Guest CPU per MiB at most 0.3× Linux + nginx's: download **met** at 64 MiB (0.154×",
            "upload **met** at 64 MiB (0.220×",
            "**2.98 MiB/s each way** (32 MiB up and 32 MiB back in 10.75 s; the median of 2/2 ok rounds)",
            "Transfers not counted: Linux + nginx upload of 1 MiB, round 1: crashed.",
            "- Bulk download of 64 MiB: xenecho moves **2.3×** the MiB/s of Linux + nginx (6.11 vs 2.61 MiB/s)",
            "and in 1 of its 9 bulk transfers",
            "| Linux + nginx | 2 | 2 | 1 | 1 | 0 | 0 | 1/5 |",          # one crash in load, one in bulk
            "## Every bulk transfer, in order",
            "| Linux + nginx | upload | 1 | 1 | crashed | 0.150 | 393216 |",
            "curl -o /dev/null 'http://GUEST_IP/?bytes=N'",
        ]),
        ("bench/report-sample.txt without its bulk lines", [r for r in records if r[0] != "bulk"], [
            "## Bulk transfers",
            "Not measured in this run (no bulk transfer in the results",
            "- MiB/s at least 2× Linux + nginx's: download not measured; upload not measured.",
            "- Guest CPU per MiB at most 0.3× Linux + nginx's: download not measured; upload not measured.",
            "xenecho's echo of a large body: not measured.",
            "## Throughput and latency",
        ]),
    ]
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for name, case_records, expected in cases:
            out = os.path.join(directory, "benchmarks.md")
            _, parts = render(Bench(case_records, info), out, None)
            write_report(out, parts)
            with open(out, encoding="utf-8") as written:
                text = written.read()
            missing = [piece for piece in expected if piece not in text]
            if re.search(r"\bnan\b", text):
                missing.append("(no 'nan')")
            for piece in missing:
                print(f"report.py --check: {name}: missing from the report: {piece!r}", file=sys.stderr)
            failed = failed or bool(missing)
    if failed:
        return 1
    print("report.py --check: the reports of bench/report-sample.txt, with and without its bulk lines, have what "
          "they must", file=sys.stderr)
    return 0


def main():
    """Reads the inputs, writes the chart and then the report, section by section (or --check)."""
    args = parse_arguments()
    if args.check:
        sys.exit(check())
    bench = Bench(parse_results(args.results), parse_info(args.info))
    chart, parts = render(bench, args.out, args.dma)
    write_report(args.out, parts)
    print(f"report.py: wrote {args.out} and {chart}", file=sys.stderr)


if __name__ == "__main__":
    main()
