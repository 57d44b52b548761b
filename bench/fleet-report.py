#!/usr/bin/env python3
"""Writes docs/fleet.md from what `make bench-fleet` measured.

Input: the output of bench/fleet-dom0.sh ("FLEET <kind> key=value ..." lines, see there) and the
facts bench/fleet.sh gathered on the host (info.txt, key=value lines). Python 3 standard library
only. Every figure in the report comes from those lines; nothing is carried over from another run.

`bench/fleet-report.py --check` runs the generator on bench/fleet-sample.txt (a hand-made run,
not a measurement) and checks what it writes; `make test-host` runs it.
"""

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile

KINDS = ("appliance", "virsh", "peer")
LABEL = {"appliance": "xenecho", "virsh": "xenecho by libvirt", "peer": "Linux + nginx"}
# What started a guest of each kind, and what ended it at the teardown.
CREATE = {"appliance": "`xl create`", "virsh": "`virsh define` + `virsh start`", "peer": "`xl create`"}
DESTROY = {"appliance": "`xl destroy`", "virsh": "`virsh destroy` + `virsh undefine`", "peer": "`xl destroy`"}
# The appliance's fleets, which the goal is about.
APPLIANCE_KINDS = ("appliance", "virsh")
GOAL_GUESTS = 100
GOAL_RATIO = 2.0


# --- Reading ---------------------------------------------------------------------------------
def parse_results(path):
    """The FLEET lines as (kind, {key: value}) in order."""
    records = []
    # newline="\n": a console line quoted in a crash message may carry a CR, not a line end.
    with open(path, encoding="utf-8", errors="replace", newline="\n") as results:
        for line in results:
            line = line.replace("\r", "").rstrip("\n")
            if not line.startswith("FLEET "):
                continue
            try:
                words = shlex.split(line[len("FLEET "):])
            except ValueError:  # an unbalanced quote in a crash message: take what splits
                words = line[len("FLEET "):].split()
            if not words:
                continue
            fields = {}
            for word in words[1:]:
                key, _, value = word.partition("=")
                fields[key] = value
            records.append((words[0], fields))
    return records


def parse_info(path):
    """bench/fleet.sh's key=value lines as a dict (empty when there is no such file)."""
    info = {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                key, _, value = line.rstrip("\n").partition("=")
                if key:
                    info[key] = value
    return info


def command_of(info):
    """The command a run's info names (bench/fleet.sh of before 5 Dec 2026 wrote `''` when it had
    no argument)."""
    command = info.get("command", "bench/fleet.sh")
    return command[:-3] if command.endswith(" ''") else command


def merge_runs(runs):
    """The records of several runs ([(records, info)], oldest first) as one run's: a fleet (its
    phase, boots, checkpoints, crashes, stop and teardown) comes from the last run that measured
    it, the scale-out curve likewise; the host and config lines from the first run. Each record
    taken carries "run" (its run's index), and so does each phase."""
    phase_kinds = [{f.get("kind") for k, f in records if k in ("phase", "stop")} for records, _ in runs]
    has_balance = [any(k == "balance" for k, _ in records) for records, _ in runs]
    merged = []
    for index, (records, _) in enumerate(runs):
        later_kinds = set().union(*phase_kinds[index + 1:])
        later_balance = any(has_balance[index + 1:])
        for kind, fields in records:
            if kind in ("host", "config") and index > 0:
                continue
            if kind == "end":
                continue    # below: the run is finished when every run is
            if kind == "balance" and later_balance:
                continue
            if fields.get("kind") in later_kinds:
                continue
            merged.append((kind, dict(fields, run=str(index))))
    if all(any(k == "end" for k, _ in records) for records, _ in runs):
        merged.append(("end", dict(next(f for k, f in runs[0][0] if k == "end"))))
    return merged


def number(value):
    """A float, or None for anything else (including "nan" for what was not there)."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def pair_delta(pair):
    """'12.3/14.5' (before/after) -> 2.2, or None."""
    if not pair or "/" not in pair:
        return None
    before, after = (number(part) for part in pair.split("/", 1))
    if before is None or after is None:
        return None
    return max(after - before, 0.0)


class Phase:
    """One kind of guest's fleet: its boots, checkpoints, crashes and end."""

    def __init__(self, kind):
        self.kind = kind
        self.start = None       # the "phase" line
        self.boots = []         # every "boot" line, in order
        self.checkpoints = []
        self.crashes = []
        self.stop = None
        self.teardown = None
        self.run = 0            # which run measured it (merge_runs)

    def answered_boot(self, index):
        """The boot line with which guest INDEX first answered, or None."""
        for boot in self.boots:
            if boot.get("status") == "ok" and boot.get("i") == str(index):
                return boot
        return None

    def http_ms(self, index):
        boot = self.answered_boot(index)
        return number(boot.get("http_ms")) if boot else None

    def times_up_to(self, n):
        """Create-to-answer times (ms) of guests 1..N, those that answered."""
        return [t for t in (self.http_ms(i) for i in range(1, n + 1)) if t is not None]

    def reached(self):
        """The number of guests started (the stop line's n, else the last guest that answered)."""
        if self.stop:
            return int(number(self.stop.get("n")) or 0)
        indices = [int(b["i"]) for b in self.boots if b.get("status") == "ok" and b.get("i", "").isdigit()]
        return max(indices, default=0)


class Fleet:
    """Everything the run printed, sorted by kind."""

    def __init__(self, records, info, runs=None):
        self.info = info
        self.runs = runs or [info]   # every run's info, oldest first (merge_runs)
        self.host, self.config, self.end, self.errors = {}, {}, None, []
        self.phases = {kind: Phase(kind) for kind in KINDS}
        self.balance = []       # the scale-out curve's "balance" lines, in order
        for kind, fields in records:
            phase = self.phases.get(fields.get("kind"))
            if kind == "host":
                self.host = fields
            elif kind == "config":
                self.config = fields
            elif kind == "end":
                self.end = fields
            elif kind == "error":
                self.errors.append(fields)
            elif kind == "balance":
                self.balance.append(fields)
            elif phase is None:
                continue
            elif kind == "phase":
                phase.start = fields
                phase.run = int(number(fields.get("run")) or 0)
            elif kind == "boot":
                phase.boots.append(fields)
            elif kind == "checkpoint":
                phase.checkpoints.append(fields)
            elif kind == "crash":
                phase.crashes.append(fields)
            elif kind == "stop":
                phase.stop = fields
            elif kind == "teardown":
                phase.teardown = fields

    def ran(self, kind):
        return self.phases[kind].start is not None

    def memory(self, kind):
        key = "peer_memory" if kind == "peer" else "appliance_memory"
        return (self.phases[kind].start or {}).get("memory") or self.config.get(key, "?")


# --- Formatting ----------------------------------------------------------------------------------
def fmt(value, digits=0, unit=""):
    """A number with thousands separators, or an en dash for nothing."""
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(header, rows, align=None):
    """A Markdown table; ALIGN is each column's alignment row cell (default: right)."""
    align = align or ["---:"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def wrk_errors(fields):
    """The sample wrk's errors (connect, read, write, timeout, non-2xx), or None without a run."""
    if "err_connect" not in fields:
        return None
    return sum(int(number(fields.get(key)) or 0)
               for key in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))


def wrk_rate(fields):
    requests, micros = number(fields.get("requests")), number(fields.get("duration_us"))
    if not requests or not micros:
        return None
    return requests / (micros / 1e6)


def percent(pair, seconds, guests=1):
    """CPU share over the idle window, in % of one CPU (per guest when GUESTS > 1)."""
    delta, seconds = pair_delta(pair), number(seconds)
    if delta is None or not seconds or not guests:
        return None
    return 100.0 * delta / seconds / guests


# --- Analysis ------------------------------------------------------------------------------------
def goal(fleet, kind="appliance"):
    """(met, serving, first_ms, last_ms, ratio, last_index) for the appliances of KIND."""
    phase = fleet.phases[kind]
    serving = max((int(number(c.get("answered")) or 0) for c in phase.checkpoints), default=0)
    last_index = phase.reached()
    first_ms, last_ms = phase.http_ms(1), phase.http_ms(last_index) if last_index else None
    ratio = last_ms / first_ms if first_ms and last_ms is not None else None
    met = serving >= GOAL_GUESTS and ratio is not None and ratio <= GOAL_RATIO
    return met, serving, first_ms, last_ms, ratio, last_index


def stop_words(phase):
    """What stopped the growth, in words."""
    stop = phase.stop
    if stop is None:
        return "the run ended before this fleet stopped growing (the test host stopped or timed out)"
    reason, why = stop.get("reason", "?"), stop.get("why", "")
    if reason == "limit":
        return f"nothing: it reached the largest size asked for ({stop.get('n', '?')})"
    if reason == "create-failed":
        return f"{CREATE[phase.kind]} of guest {int(number(stop.get('n')) or 0) + 1} failed: `{why}`"
    if reason == "libvirtd":
        return f"libvirtd, which did not start: `{why}`"
    if reason == "no-answer":
        return f"a guest that did not answer: {why}"
    if reason == "time-budget":
        return "the run's time budget was spent (`--timeout`)"
    return f"{reason}: {why}"


def memory_per_guest(phase):
    """Xen's free memory taken per guest (MB), from the phase's start to its largest checkpoint."""
    if not phase.start or not phase.checkpoints:
        return None
    last = phase.checkpoints[-1]
    before, after, n = number(phase.start.get("free_mb")), number(last.get("free_mb")), number(last.get("n"))
    if before is None or after is None or not n:
        return None
    return (before - after) / n


# --- The report: sections ------------------------------------------------------------------------
def render_header(fleet):
    info = fleet.info
    if len(fleet.runs) > 1:
        generated = ("Generated by `make bench-fleet` from " + str(len(fleet.runs)) + " runs (each fleet's section "
                     "names its run): " + "; ".join(f"run {i + 1} on {r.get('date', '?')} from revision "
                                                     f"`{r.get('revision', '?')}`" for i, r in enumerate(fleet.runs))
                     + ". Do not edit by hand (bench/fleet-report.py writes it). Each run is one boot of ")
    else:
        generated = (f"Generated by `make bench-fleet` on {info.get('date', '?')} from revision "
                     f"`{info.get('revision', '?')}`; do not edit by hand (bench/fleet-report.py writes it). One boot of ")
    parts = ["# Fleet: how many appliances one Xen host serves at once\n",
             generated + "the emulated Xen host (QEMU TCG → Xen 4.17 → Debian dom0, 3 GB, dom0 1 GB, 2 CPUs), "
             "which starts appliances one `xl create` at a time, each with its own name, MAC and DHCP address, each "
             "verified to answer before the next (with the scale-out curve on the way); then Linux + nginx guests the "
             "same way, for the comparison; then appliances again by libvirt. The host is "
             "about a thousand times slower than hardware: **read the counts, the memory and the trends, not the "
             "absolute times.** The other benchmarks are in [benchmarks.md](benchmarks.md).\n"]
    if fleet.end is None:
        parts.append("> **This run did not finish** (the test host stopped or timed out): what follows is what came "
                     "out before that.\n")
    for error in fleet.errors:
        parts.append(f"> The dom0 script stopped on an error (line {error.get('line', '?')}, status "
                     f"{error.get('status', '?')}).\n")
    return parts


def render_summary(fleet):
    lines = []
    for kind in APPLIANCE_KINDS:
        if not fleet.ran(kind):
            continue
        met, serving, first_ms, last_ms, ratio, last_index = goal(fleet, kind)
        lines.append(
            f"- **Goal, {LABEL[kind]}** (at least {GOAL_GUESTS} appliances serving at once, the last one's time "
            f"from {CREATE[kind]} to its first answer within {GOAL_RATIO:g}× the first's): "
            f"**{'met' if met else 'not met'}**. {serving} appliances answered at once at the most; guest 1 "
            f"answered {fmt(first_ms)} ms after its {CREATE[kind]}, guest {last_index} (the last) {fmt(last_ms)} ms"
            + (f" ({ratio:.2f}×)." if ratio is not None else "."))
    if not fleet.ran("appliance"):
        lines.append("- **Goal**: not measured (the appliances' fleet did not run).")
    for kind in KINDS:
        phase = fleet.phases[kind]
        if not fleet.ran(kind):
            option = {"peer": ("peers", "--no-linux"), "virsh": ("virsh", "--no-virsh")}.get(kind)
            if option:
                why = phase.stop and stop_words(phase)
                lines.append(f"- {LABEL[kind]}: not run" + (f" (`{option[1]}`)." if fleet.config.get(option[0]) == "no"
                                                             else f": {why}." if why else "."))
            continue
        last = phase.checkpoints[-1] if phase.checkpoints else {}
        per_guest = memory_per_guest(phase)
        lines.append(
            f"- {LABEL[kind]} ({fleet.memory(kind)} MB each): {phase.reached()} started, "
            f"{last.get('answered', '–')} of {last.get('running', '–')} running answered at the last checkpoint; "
            f"Xen's free memory went down {fmt(per_guest, 1)} MB a guest; growth stopped by {stop_words(phase)}. "
            f"Crashes: {len(phase.crashes)}"
            + (f" ({sum(1 for c in phase.crashes if c.get('why', '').startswith('emulator-fault'))} with the "
               "emulator fault's mark)." if phase.crashes else "."))
    curve = balance_summary(fleet)
    if curve:
        lines.append(f"- Scale-out behind nginx in dom0: {curve}")
    return ["## Summary\n", "\n".join(lines) + "\n"]


def checkpoint_rows(phase):
    rows = []
    for point in phase.checkpoints:
        n = int(number(point.get("n")) or 0)
        times = phase.times_up_to(n)
        rate, errors = wrk_rate(point), wrk_errors(point)
        wrk_cell = "–"
        if rate is not None or errors is not None:
            wrk_cell = f"{fmt(rate)} req/s, {fmt(errors)} errors, p99 {fmt((number(point.get('p99_us')) or 0) / 1000, 1)} ms"
        if point.get("wrk_status") == "crashed":
            wrk_cell += " (the guest crashed)"
        label = f"{n}" + (" (last)" if point.get("final") == "yes" else "")
        rows.append([label, f"{point.get('answered', '–')}/{point.get('running', '–')}",
                     fmt(phase.http_ms(1)), fmt(phase.http_ms(n)), fmt(median(times)),
                     fmt(number(point.get("dom0_cpu")), 1), fmt(number(point.get("xenstored_cpu")), 2),
                     fmt(number(point.get("free_mb"))), fmt(number(point.get("dom0_avail_mb"))),
                     f"{wrk_cell} ({point.get('sample', '–')})"])
    return rows


def cost_rows(phase):
    """Per checkpoint: what each guest added since the previous one cost dom0 and xenstored, and the
    fleet at rest."""
    rows = []
    previous_n, previous_dom0, previous_xs = 0, None, None
    if phase.start:
        previous_dom0, previous_xs = number(phase.start.get("dom0_cpu")), number(phase.start.get("xenstored_cpu"))
    for point in phase.checkpoints:
        n = int(number(point.get("n")) or 0)
        added = n - previous_n
        dom0, xs = number(point.get("dom0_cpu")), number(point.get("xenstored_cpu"))
        dom0_each = (dom0 - previous_dom0) / added if added > 0 and dom0 is not None and previous_dom0 is not None else None
        xs_each = (xs - previous_xs) / added if added > 0 and xs is not None and previous_xs is not None else None
        running = int(number(point.get("running")) or 0)
        idle = point.get("idle_s")
        rows.append([str(n), fmt(dom0_each, 2), fmt(xs_each, 3), fmt(number(point.get("sweep_ms"))),
                     fmt(percent(point.get("idle_guests_cpu"), idle), 1),
                     fmt(percent(point.get("idle_guests_cpu"), idle, running), 2),
                     fmt(percent(point.get("idle_dom0_cpu"), idle), 1),
                     fmt(percent(point.get("idle_xenstored_cpu"), idle), 1)])
        # The next interval starts after this checkpoint's own requests.
        previous_n = n
        previous_dom0 = number(point.get("dom0_cpu_after"))
        previous_xs = number(point.get("xenstored_cpu_after"))
    return rows


def trend_rows(phase, bucket=16):
    """Create-to-answer by groups of BUCKET guests, in order of creation."""
    answered = [b for b in phase.boots if b.get("status") == "ok" and b.get("i", "").isdigit()]
    rows = []
    for low in range(1, max((int(b["i"]) for b in answered), default=0) + 1, bucket):
        group = [b for b in answered if low <= int(b["i"]) < low + bucket]
        if not group:
            continue
        high = max(int(b["i"]) for b in group)
        rows.append([f"{low}–{high}" if high > low else str(low), str(len(group)),
                     fmt(median(number(b.get("create_ms")) for b in group)),
                     fmt(median(number(b.get("address_ms")) for b in group)),
                     fmt(median(number(b.get("http_ms")) for b in group)),
                     fmt(max(number(b.get("http_ms")) or 0 for b in group)),
                     fmt(median(number(b.get("free_mb")) for b in group))])
    return rows


def render_phase(fleet, kind):
    phase = fleet.phases[kind]
    config = fleet.config
    title = f"## {LABEL[kind]} ({fleet.memory(kind)} MB each)\n"
    if not fleet.ran(kind):
        return [title, "Not run.\n"]
    start = phase.start
    run = ""
    if len(fleet.runs) > 1:
        info = fleet.runs[phase.run]
        run = (f"From run {phase.run + 1} ({info.get('date', '?')}, revision `{info.get('revision', '?')}`, "
               f"`{command_of(info)}`). ")
    parts = [title, run +
             f"Grown one guest at a time towards {start.get('limit', '?')} (checkpoints at "
             f"{config.get('sizes', '?')}, and at the last size reached); Xen had {fmt(number(start.get('free_mb')))} MB "
             f"free and dom0 {fmt(number(start.get('dom0_avail_mb')))} MB available before the first. Growth stopped by "
             f"{stop_words(phase)}.\n",
             "At each checkpoint: every running guest is asked for `GET /` (a second try after 3 s); the create-to-"
             "answer times are those of guest 1, of guest N and the median of guests 1 to N (from just before "
             f"{CREATE[kind]} to the first HTTP 200 at the address the guest published); dom0's CPU seconds (`xl list`) and "
             "xenstored's (user + system, `/proc/PID/stat`) are totals since dom0 booted, taken before the "
             "checkpoint's own requests; then "
             f"`wrk -t{config.get('wrk_threads', '?')} -c{config.get('wrk_connections', '?')} "
             f"-d{config.get('wrk_seconds', '?')}s` against the newest guest (named in brackets).\n",
             table(["N", "answered / running", "guest 1 ms", "guest N ms", "median ms", "dom0 CPU s",
                    "xenstored CPU s", "Xen free MB", "dom0 available MB", "wrk sample"],
                   checkpoint_rows(phase)) + "\n",
             "What the guests added since the previous checkpoint cost, per guest (creating it and polling it "
             f"until it answered), and the fleet at rest: CPU over {config.get('idle_seconds', '?')} s of quiet "
             "after the sweep, in % of one CPU (Xen's accounting, 0.1 s resolution per domain), and how long the "
             "sweep of every guest took.\n",
             table(["N", "dom0 CPU s per guest added", "xenstored CPU s per guest added", "sweep ms",
                    "idle: fleet CPU %", "idle: per guest %", "idle: dom0 CPU %", "idle: xenstored CPU %"],
                   cost_rows(phase)) + "\n",
             f"Create-to-answer along the growth (medians by groups of guests; {CREATE[kind]} returned, the address "
             "known, the first HTTP 200; Xen's free memory once the guest answered):\n",
             table(["guests", "answered", f"{CREATE[kind]} ms", "address ms", "first 200 ms", "slowest 200 ms",
                    "Xen free MB"], trend_rows(phase)) + "\n"]
    failed = [b for b in phase.boots if b.get("status") != "ok"]
    if failed:
        parts.append("Starts that did not answer:\n")
        parts.append("\n".join(
            f"- guest {b.get('i', '?')} (try {b.get('attempt', '?')}, {b.get('running', '?')} running): "
            f"{b.get('status', '?')}" + (f" – `{b['why']}`" if b.get("why") else "")
            + (f", Xen free {b.get('free_mb')} MB" if b.get("free_mb") not in (None, "nan") else "")
            for b in failed) + "\n")
    if phase.crashes:
        parts.append("Crashes (each counted, destroyed and not replaced):\n")
        parts.append("\n".join(
            f"- {c.get('name', '?')} during {c.get('phase', '?')} ({c.get('running', '?')} running, state "
            f"{c.get('state', '?')}): `{c.get('why', '?')}`" for c in phase.crashes) + "\n")
    if phase.teardown:
        parts.append(f"Teardown: {DESTROY[kind]} of the {phase.teardown.get('guests', '?')} running guests took "
                     f"{fmt(number(phase.teardown.get('ms')))} ms.\n")
    return parts


def balance_rate(fields):
    """Requests per second of a balance line, or None when its wrk did not run."""
    return wrk_rate(fields)


def balance_points(fleet):
    """(curve, direct, alone): the balancer lines by number of instances, and the two bounds."""
    curve = [b for b in fleet.balance if b.get("what") == "balancer"]
    direct = next((b for b in fleet.balance if b.get("what") == "direct"), None)
    alone = next((b for b in fleet.balance if b.get("what") == "nginx-alone"), None)
    return curve, direct, alone


def balance_summary(fleet):
    """The curve in one sentence, or None when it did not run."""
    curve, direct, alone = balance_points(fleet)
    rates = [(b.get("instances", "?"), balance_rate(b)) for b in curve]
    if not rates:
        return None
    text = ", ".join(f"{n}: {fmt(rate)}" for n, rate in rates) + " req/s"
    bound = balance_rate(alone) if alone else None
    if bound:
        best = max((rate for _, rate in rates if rate), default=None)
        text += (f"; nginx answering by itself in dom0 does {fmt(bound)} req/s, the ceiling of any curve here"
                 + (f" (the best point is {100 * best / bound:.0f}% of it)." if best else "."))
    else:
        text += "."
    return text


def render_balance(fleet):
    """The scale-out section: the curve, its two bounds, what bounds it."""
    curve, direct, alone = balance_points(fleet)
    if not curve and not direct and not alone:
        return []
    config = fleet.config
    bound = balance_rate(alone) if alone else None
    rows = []
    for point, label in [(b, f"{b.get('instances', '?')} behind nginx") for b in curve] + \
            [(direct, "1, no balancer (wrk straight at it)"), (alone, "none: nginx answers by itself")]:
        if point is None:
            continue
        rate, errors = balance_rate(point), wrk_errors(point)
        dom0 = pair_delta(point.get("dom0_cpu"))
        requests = number(point.get("requests"))
        rows.append([label, "yes" if point.get("checked") == "yes" else "**no**", fmt(rate), fmt(errors),
                     fmt((number(point.get("p50_us")) or 0) / 1000, 1) if rate else "–",
                     fmt((number(point.get("p99_us")) or 0) / 1000, 1) if rate else "–",
                     fmt(1e6 * dom0 / requests, 0) if dom0 is not None and requests else "–",
                     f"{100 * rate / bound:.0f}%" if rate and bound else "–"])
    parts = ["## Scale-out: several appliances behind one address\n",
             f"When the xl fleet had {config.get('balance_at', '?')} appliances, the first B of them (in domain-id "
             "order) were put behind nginx in dom0 by [examples/balancer.sh](../examples/balancer.sh), for each B of "
             f"{config.get('balance_sizes', '?')}: its `upstream` list is made from `xl list` and each domain's "
             "published address, round robin with idle keep-alive connections to the appliances, one nginx "
             "worker per dom0 vCPU. \"checked\" means every one of the B appliances answered through it "
             "(`X-Echo-Instance` names the one that served). Then "
             f"`wrk -t{config.get('wrk_threads', '?')} -c{config.get('balance_connections', '?')} "
             f"-d{config.get('balance_seconds', '?')}s` against the balancer; and the curve's two bounds: one "
             "appliance with no balancer in the way, and nginx in dom0 answering `return 200` by itself, with "
             "nothing behind it. dom0's CPU is Xen's accounting of its two vCPUs over the wrk run (wrk, nginx "
             "and netback all run there).\n",
             table(["appliances", "checked", "req/s", "errors", "p50 ms", "p99 ms", "dom0 CPU µs per request",
                    "share of nginx alone"], rows) + "\n"]
    measured = [(int(number(b.get("instances")) or 0), balance_rate(b), b) for b in curve if balance_rate(b)]
    if measured:
        (low_n, low_rate, _), (high_n, high_rate, _) = measured[0], measured[-1]
        words = [f"From {low_n} to {high_n} appliance{'s' if high_n != 1 else ''} behind the balancer the rate "
                 f"went from {fmt(low_rate)} to {fmt(high_rate)} req/s ({high_rate / low_rate:.2f}×)."]
        direct_rate = balance_rate(direct) if direct else None
        if bound and direct_rate:
            words.append(f"One appliance answered wrk straight at {fmt(direct_rate)} req/s, and nginx alone, with "
                         f"nothing behind it, at {fmt(bound)}: a request through the balancer costs both, so "
                         f"{fmt(1 / (1 / bound + 1 / direct_rate))} req/s is the most this host could give it even "
                         "if proxying cost nginx no more than answering by itself.")
        words.append("The test host has one emulated core: QEMU's TCG runs every vCPU (dom0's two, where wrk, "
                     "nginx and the vif backends run, and each appliance's) on one thread of this machine, so "
                     "an appliance added brings no CPU, only more switching between domains"
                     + (", and the curve cannot rise." if high_rate < 1.5 * low_rate else
                        f"; still, {high_n} appliances served {high_rate / low_rate:.1f}× what one did.")
                     + " On hardware each appliance brings a vCPU of its own and the balancer runs on cores of "
                     "its own, so this bound does not hold there; what the curve would then be, this host cannot "
                     "show. dom0's CPU per request above is Xen's accounting of its vCPUs' share of that one core.")
        parts.append(" ".join(words) + "\n")
    return parts


def render_discussion(fleet):
    """What the figures say, in words computed from them; the rules of reading them."""
    lines = []
    appliance, peer = fleet.phases["appliance"], fleet.phases["peer"]
    met, serving, first_ms, last_ms, ratio, last_index = goal(fleet)
    if fleet.ran("appliance"):
        lines.append(f"- The appliances: {serving} answered at once at the most, each in "
                     f"{fleet.memory('appliance')} MB. Growth stopped by {stop_words(appliance)}.")
        times = appliance.times_up_to(last_index)
        if len(times) >= 16:
            head, tail = median(times[:8]), median(times[-8:])
            lines.append(f"- Guest 1 against guest {last_index} is one boot against one: the median of the first 8 "
                         f"boots was {fmt(head)} ms, of the last 8 {fmt(tail)} ms"
                         + (f" ({tail / head:.2f}×)." if head and tail else "."))
    virsh = fleet.phases["virsh"]
    if fleet.ran("appliance") and fleet.ran("virsh"):
        n = min(appliance.reached(), virsh.reached())
        xl_median, virsh_median = median(appliance.times_up_to(n)), median(virsh.times_up_to(n))
        xl_create = median(number(b.get("create_ms")) for b in appliance.boots if b.get("status") == "ok")
        virsh_create = median(number(b.get("create_ms")) for b in virsh.boots if b.get("status") == "ok")
        if xl_median and virsh_median:
            lines.append(f"- By libvirt against by xl, over the first {n} guests of each: the median create-to-answer "
                         f"was {fmt(virsh_median)} ms against {fmt(xl_median)} ms ({virsh_median / xl_median:.2f}×); "
                         f"`virsh define` + `virsh start` returned in a median {fmt(virsh_create)} ms, `xl create` in "
                         f"{fmt(xl_create)} ms. The guest does the same either way (libvirt's Xen driver is libxl, "
                         "as xl's is); the difference is the toolstack's.")
    if fleet.ran("appliance") and fleet.ran("peer"):
        a_each, p_each = memory_per_guest(appliance), memory_per_guest(peer)
        if a_each and p_each:
            lines.append(f"- Memory: each appliance took {fmt(a_each, 1)} MB of Xen's free memory, each Linux guest "
                         f"{fmt(p_each, 1)} MB ({p_each / a_each:.1f}×): on the same host {appliance.reached()} "
                         f"appliances against {peer.reached()} Linux guests.")
        a_first, p_first = appliance.http_ms(1), peer.http_ms(1)
        if a_first and p_first:
            lines.append(f"- The first guest answered {fmt(a_first)} ms after `xl create` (xenecho) against "
                         f"{fmt(p_first)} ms (Linux + nginx).")
    if peer.crashes:
        faults = sum(1 for c in peer.crashes if c.get("why", "").startswith("emulator-fault"))
        lines.append(f"- {len(peer.crashes)} Linux guest{'s' if len(peer.crashes) != 1 else ''} crashed ({faults} with the emulator fault's mark: QEMU 7.2's "
                     "SVM emulation re-injects the event-channel upcall until the stack overflows, see "
                     "[event-loop.md](event-loop.md)); a crashed guest is not replaced, so the Linux fleet can "
                     "serve fewer guests than it started.")
    lines.append("- Every domain shares the emulated host's two CPUs with dom0, which runs `xl`, the hotplug "
                 "scripts, udhcpd and the polling `curl`: the times grow with whatever dom0 and xenstored do per "
                 "domain as much as with the guests. The counts and the memory per guest are the host's own; the "
                 "times are the emulator's.")
    return ["## Discussion\n", "\n".join(lines) + "\n"]


def render_how(fleet):
    info, config, host = fleet.info, fleet.config, fleet.host
    return ["## How it was run\n",
            "```sh\n"
            "make bench-fleet            # = make image, then:\n"
            + "".join(f"{command_of(r)}\n" for r in fleet.runs) +
            "#   testbed/setup.sh --peer    (test host + peer image, cached)\n"
            "#   testbed/run.sh --guest-dir build/testbed/fleet/guest --script bench/fleet-dom0.sh --timeout ...\n"
            "#   bench/fleet-report.py ...  (this file)\n"
            "# in dom0, for guest I (NNN = I in three digits, XX:YY = I in two bytes):\n"
            f"xl create -q xl.cfg name=\"xenecho-fleet-NNN\" memory={config.get('appliance_memory', '?')} "
            "vif=['bridge=xenbr0,mac=00:16:3e:fe:XX:YY'] on_crash=\"preserve\"\n"
            f"xl create -q build/peer/peer.cfg name=\"peer-fleet-NNN\" memory={config.get('peer_memory', '?')} "
            "vif=['bridge=xenbr0,mac=00:16:3e:fd:XX:YY'] on_crash=\"preserve\"\n"
            "# by libvirt: xenecho.xml with <name>xenecho-virsh-NNN</name>, <mac address='00:16:3e:fc:XX:YY'/>,\n"
            f"# the memory ({config.get('appliance_memory', '?')} MB), the kernel's absolute path and "
            "<on_crash>preserve</on_crash>:\n"
            "virsh define xenecho-virsh-NNN.xml; virsh start xenecho-virsh-NNN\n"
            f"# the scale-out curve, for B in {config.get('balance_sizes', '?')}:\n"
            "bash examples/balancer.sh --instances B --keep      # nginx in dom0 on port 8080\n"
            f"wrk -t{config.get('wrk_threads', '?')} -c{config.get('balance_connections', '?')} "
            f"-d{config.get('balance_seconds', '?')}s --timeout 5s http://127.0.0.1:8080/\n"
            "curl -s http://GUEST_IP/     # every 0.25 s until a 200; once per guest at each checkpoint\n"
            f"wrk -t{config.get('wrk_threads', '?')} -c{config.get('wrk_connections', '?')} "
            f"-d{config.get('wrk_seconds', '?')}s --timeout 5s http://SAMPLE_IP/\n"
            "```\n",
            f"Options: `make bench-fleet FLEET_ARGS='--sizes \"1 8 32\" --no-virsh --no-linux'` (see `bench/fleet.sh --help`). "
            "The appliance's memory is `--memory` (8 MB unless given: the smallest with which `make bench`'s wrk probe "
            "passes, where xl.cfg has 64 MB), the Linux guest's `--linux-memory` "
            "(112 MB unless given: the smallest `make bench` found to serve); both have xl.cfg's one vCPU. Every "
            "guest gets its address from dom0's udhcpd, whose pool is "
            f"{host.get('dhcp_pool', '?')}; a guest's address is what it publishes (xenecho in xenstore "
            "`data/ipv4-address`, the peer on its console).\n"]


def render_machine(fleet):
    info, host = fleet.info, fleet.host
    rows = [["host CPU", info.get("cpu", "?")], ["host cores (`nproc`)", info.get("nproc", "?")],
            ["host memory (`free -h`)", info.get("memory", "?")],
            ["QEMU", info.get("qemu", "?") + " (TCG, `-smp 2 -m 3072`)"],
            ["Xen", f"{host.get('xen', '?')} ({info.get('package.xen-hypervisor-4.17-amd64', '?')}), "
                    f"{host.get('xen_cpus', '?')} CPUs, {host.get('total_mb', '?')} MB"],
            ["dom0", f"Linux {host.get('dom0_kernel', '?')}, {host.get('dom0_vcpus', '?')} vCPUs, "
                     f"{host.get('dom0_mem_mb', '?')} MB; {host.get('xenstored', '?')}; {host.get('wrk', 'wrk')}"],
            ["peer", f"{info.get('package.linux-image', '?')}, {info.get('package.nginx', '?')}"],
            ["whole `make bench-fleet`", "; ".join(f"{r.get('host_seconds', '?')} s" for r in fleet.runs)
             + (f" (dom0 script of the first: {(fleet.end or {}).get('seconds', '?')} s)" if len(fleet.runs) > 1
                else f" (dom0 script: {(fleet.end or {}).get('seconds', '?')} s)")]]
    return ["## The machine\n", table(["", ""], rows, [":---", ":---"]) + "\n"]


def render(fleet):
    return (render_header(fleet) + render_summary(fleet) + render_phase(fleet, "appliance")
            + render_balance(fleet) + render_phase(fleet, "virsh") + render_phase(fleet, "peer")
            + render_discussion(fleet) + render_how(fleet) + render_machine(fleet))


def write_report(path, parts):
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(parts))


# --- The check ---------------------------------------------------------------------------------------
def check():
    """The generator on bench/fleet-sample.txt: it must write the report with the sample's figures."""
    here = os.path.dirname(os.path.abspath(__file__))
    fleet = Fleet(parse_results(os.path.join(here, "fleet-sample.txt")),
                  {"date": "sample", "revision": "sample", "command": "bench/fleet.sh"})
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "fleet.md")
        write_report(out, render(fleet))
        with open(out, encoding="utf-8") as written:
            text = written.read()
    expected = [
        "**Goal, xenecho** (at least 100 appliances serving at once",   # the goal line
        "**met**",                                             # 130 answered, 7,400 / 6,000 ms = 1.23×
        "**Goal, xenecho by libvirt** (at least 100 appliances",
        "3 appliances answered at once at the most; guest 1 answered 6,910 ms after its `virsh define` + "
        "`virsh start`, guest 3 (the last) 6,930 ms",
        "**not met**",                                         # the libvirt fleet stopped at 3
        "| 8 behind nginx | **no** | 1,040 |",                  # the curve: 10,400 requests in 10 s
        "| none: nginx answers by itself | yes | 2,500 |",     # its ceiling
        "| 4 behind nginx | yes | 1,050 | 0 | 6.3 | 18.0 | 952 | 42% |",
        "went from 900 to 1,040 req/s (1.16×)",
        "1,111 req/s is the most this host could give it",
        "`virsh destroy` + `virsh undefine` of the 3 running guests",
        "130 appliances answered at once at the most",
        "(1.23×)",
        "| 128 | 128/128 | 6,000 | 7,300 |",                    # a checkpoint row: guest 1 and guest 128
        "| 130 (last) | 130/130 |",                            # the last size reached gets its row
        "`xl create` of guest 131 failed: `libxl: error: cannot allocate memory`",
        "emulator-fault",                                      # the peer's crash is listed
        "Linux + nginx (112 MB each): 2 started",
        "guest 3 (try 1, 2 running): died",
    ]
    # Two runs merged: the libvirt fleet of a second run replaces the first run's.
    records = parse_results(os.path.join(here, "fleet-sample.txt"))
    second = [(kind, dict(fields, ip="10.88.0.200") if kind == "boot" else fields) for kind, fields in records
              if fields.get("kind") == "virsh" or kind == "end"]
    runs = [(records, {"date": "first", "revision": "aaaa"}), (second, {"date": "second", "revision": "bbbb"})]
    merged = Fleet(merge_runs(runs), runs[0][1], [info for _, info in runs])
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "fleet.md")
        write_report(out, render(merged))
        with open(out, encoding="utf-8") as written:
            merged_text = written.read()
    if "From run 2 (second, revision `bbbb`" not in merged_text or "from 2 runs" not in merged_text \
            or len(merged.phases["virsh"].boots) != 3 or merged.phases["appliance"].run != 0:
        print("fleet-report.py --check: two runs were not merged as they should be", file=sys.stderr)
        expected.append("(merged runs)")
        text = text.replace("(merged runs)", "")
    missing = [piece for piece in expected if piece not in text]
    for piece in missing:
        print(f"fleet-report.py --check: missing from the report: {piece!r}", file=sys.stderr)
    if "nan" in text.replace("nanoseconds", ""):
        print("fleet-report.py --check: a 'nan' reached the report", file=sys.stderr)
        missing.append("nan")
    if missing:
        return 1
    print("fleet-report.py --check: the report of bench/fleet-sample.txt has what it must", file=sys.stderr)
    return 0


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", action="append",
                        help="the output of bench/fleet-dom0.sh (FLEET lines); again for another run, whose "
                             "fleets replace the earlier run's")
    parser.add_argument("--info", action="append", help="bench/fleet.sh's key=value facts (one per --results)")
    parser.add_argument("--out", default="docs/fleet.md", help="the report to write")
    parser.add_argument("--check", action="store_true", help="check the generator on bench/fleet-sample.txt")
    args = parser.parse_args()
    if not args.check and not args.results:
        parser.error("--results is required (or --check)")
    return args


def main():
    args = parse_arguments()
    if args.check:
        sys.exit(check())
    if len(args.results) != len(args.info or []):
        sys.exit("fleet-report.py: give one --info for each --results")
    runs = [(parse_results(results), parse_info(info)) for results, info in zip(args.results, args.info)]
    fleet = Fleet(merge_runs(runs), runs[0][1], [info for _, info in runs])
    write_report(args.out, render(fleet))
    print(f"fleet-report.py: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
