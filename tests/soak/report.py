#!/usr/bin/env python3
"""Writes docs/soak.md from the "SOAK key=value ..." lines tests/soak/dom0.sh printed.

Exit status 0 when the soak passed (it ran to its end, legitimate clients saw no error, heap and
grants in use were the same after as before, nothing left open), 1 when it did not.
"""
import argparse
import datetime
import re
import sys


def parse(path):
    """Every SOAK line as (kind, {key: value}), in order."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as results:
        for line in results:
            match = re.match(r"\s*SOAK (\w+)(.*)", line)
            if not match:
                continue
            kind, rest = match.groups()
            if kind == "metric":
                name, _, value = rest.strip().rpartition(" ")
                records.append(("metric", {"name": name, "value": value}))
                continue
            # "SOAK phase=before ..." names its kind by its first field.
            fields = dict(re.findall(r"(\w+)=(\S*)", kind + rest))
            if kind == "attack":
                fields["text"] = re.sub(r"^\s*round=\S+ at=\S+ ", "", rest).strip()
            records.append((kind, fields))
    return records


def number(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--revision", default="unknown")
    parser.add_argument("--minutes", type=int, required=True)
    parser.add_argument("--host-seconds", type=int, default=0)
    arguments = parser.parse_args()
    records = parse(arguments.results)
    of = lambda kind: [fields for record_kind, fields in records if record_kind == kind]

    phases = {fields.get("phase"): fields for fields in of("phase")}
    before, after = phases.get("before", {}), phases.get("after", {})
    wrk_runs = of("wrk")
    wrk_requests = sum(number(run.get("requests")) or 0 for run in wrk_runs)
    wrk_errors = sum((number(run.get("socket_errors")) or 0) + (number(run.get("non2xx")) or 0) for run in wrk_runs)
    churn = (of("churn") or [{}])[-1]
    churn_ok, churn_failed = number(churn.get("ok")), number(churn.get("failed"))
    churn_failures = of("churn_failure")
    ran = (of("ran") or [{}])[-1].get("seconds")
    state = (of("guest") or [{}])[-1].get("state", "")
    attacks = of("attack")
    pauses = of("pause")
    metrics = of("metric")

    legit_errors = wrk_errors + (churn_failed if churn_failed is not None else 1)
    checks = [
        ("the soak ran to its end", ran is not None and number(ran) >= arguments.minutes * 60 - 60),
        ("legitimate clients saw no error", legit_errors == 0 and churn_ok is not None),
        ("heap in use the same after as before", before.get("heap_used") and before.get("heap_used") == after.get("heap_used")),
        ("grants in use the same after as before", before.get("grants_in_use") and before.get("grants_in_use") == after.get("grants_in_use")),
        ("nothing open or half-open after the settle", after.get("open") == "0" and after.get("half_open") == "0"),
        ("the guest still running", bool(state) and "c" not in state),
    ]
    passed = all(ok for _, ok in checks)

    lines = [
        "# Soak: hostile and legitimate clients at once",
        "",
        f"`make soak` (`tests/soak/run.sh --minutes {arguments.minutes}`), run "
        f"{datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} on revision "
        f"`{arguments.revision}`, {arguments.host_seconds} s on this machine in all. For {arguments.minutes} minutes a "
        "guest of its own (`per-client=64`) served legitimate clients from dom0's address (wrk keep-alive "
        "load, 16 connections, 60 s runs with a 30 s timeout; and churn, one curl request per connection) "
        "while `build/xenecho-attack` attacked it from a second address in turn (SYN flood, silent, "
        "zero-window, slow-body, vanishing clients) and `xl pause`/`xl unpause` froze it for 5 s every "
        "5 minutes. Heap and grants are read from its metrics before and 60 s after.",
        "",
        f"**Verdict: {'passed' if passed else 'FAILED'}.**",
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {what} | {'yes' if ok else '**no**'} |" for what, ok in checks]
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| ran | {ran or '?'} s |",
        f"| wrk requests (keep-alive) | {wrk_requests} in {len(wrk_runs)} runs |",
        f"| wrk socket errors + non-2xx | {wrk_errors} |",
        f"| churn requests ok / failed | {churn_ok if churn_ok is not None else '?'} / {churn_failed if churn_failed is not None else '?'} |",
        f"| requests served in all (metric, after) | {after.get('requests', '?')} |",
        f"| heap in use before / after | {before.get('heap_used', '?')} / {after.get('heap_used', '?')} bytes |",
        f"| grants in use before / after | {before.get('grants_in_use', '?')} / {after.get('grants_in_use', '?')} |",
        f"| open / half-open after | {after.get('open', '?')} / {after.get('half_open', '?')} |",
        f"| attack rounds | {len(attacks)} |",
        f"| pauses | {len(pauses)} |",
        f"| guest state after | `{state or '?'}` |",
        "",
    ]
    if churn_failures:
        lines += ["Churn failures (HTTP status, curl's exit code, seconds into the soak):", ""]
        lines += [
            f"- {failure.get('code')}, curl exit {failure.get('curl_exit', '?')}, at {failure.get('at')} s"
            for failure in churn_failures[:20]
        ]
        lines.append("")
    if attacks:
        lines += ["What each attack round reported (the first of each kind):", ""]
        seen = set()
        for attack in attacks:
            kind = attack["text"].split(":")[0]
            if kind not in seen:
                seen.add(kind)
                lines.append(f"- {attack['text']}")
        lines.append("")
    if metrics:
        lines += ["The guest's counters after:", "", "```"]
        lines += [f"{metric['name']} {metric['value']}" for metric in metrics]
        lines += ["```", ""]
    with open(arguments.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"soak: {'passed' if passed else 'FAILED'}: " + "; ".join(f"{what}: {'yes' if ok else 'no'}" for what, ok in checks))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
