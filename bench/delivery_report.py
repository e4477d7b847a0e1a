"""Verdicts of the delivery benchmark against its targets, and the table printed at the end."""

from __future__ import annotations

from typing import Any

from bench.report import mark, verdict

KEPT_UP = 0.95  # share of the rate the gateway must have taken in for the latency phase to count
BUSY_ELSEWHERE = 0.3  # share of a core spent outside the processes measured, past which a run is disturbed


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """PASS/FAIL per target; ``valid`` is false when a delivery or a message went wrong."""
    targets, phases = results["targets"], results["phases"]
    checks: dict[str, Any] = {}
    if "worker" in phases:
        worker, bound = phases["worker"], phases["bound"]
        ratio = worker["per_s"] / bound["per_s"]
        checks["deliveries_per_s"] = {
            "value": worker["per_s"],
            "target": f">= {targets['deliveries_per_s_min']:.0f}",
            "pass": worker["per_s"] >= targets["deliveries_per_s_min"],
        }
        checks["bound_ratio"] = {
            "value": round(ratio, 3),
            "target": f">= {targets['bound_ratio_min']}",
            "pass": ratio >= targets["bound_ratio_min"],
        }
    latency = phases.get("latency")
    if latency:
        p99 = latency["accepted_to_registered_ms"].get("p99", float("inf"))
        # the target holds at a steady rate: a gateway that fell behind on intake did not see it
        kept_up = latency["intake"]["messages_per_s"] >= KEPT_UP * latency["rate"]
        checks["p99_ms"] = {
            "value": p99,
            "target": f"< {targets['p99_ms_max']:.0f} at {latency['rate']:.0f} messages/s",
            "kept_up": kept_up,
            "pass": kept_up and p99 < targets["p99_ms_max"],
        }
    problems = [f"{name}: {p}" for name, phase in phases.items() for p in phase.get("problems", [])]
    problems += [
        f"{name}: {phase['failures']} failed calls {phase['errors']}"
        for name, phase in phases.items()
        if phase.get("failures")
    ]
    return verdict(checks, problems)


def _ms(summary: dict[str, Any]) -> str:
    if not summary.get("count"):
        return "-"
    return f"{summary['p50']:.1f} / {summary['p99']:.1f} / {summary['max']:.1f}"


def _share(phase: dict[str, Any], key: str) -> str:
    return f"{phase[key]:.0%}" if key in phase else ""


def render(results: dict[str, Any]) -> str:
    env, v, phases = results["environment"], results["verdicts"], results["phases"]
    rows = [("", "worker", "bound", "registry alone", "verdict")]
    if "worker" in phases:
        rows += _throughput_rows(results)
    if "latency" in phases:
        rows += _latency_rows(phases["latency"], v)
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        f"Saisine delivery benchmark, {env['date']}, {env['cpus']} cores, Python {env['python']}, "
        f"SQLite {env['sqlite']}, zeep {env['zeep']}",
    ]
    if "cases" in results:
        cases = results["cases"]
        lines.append(
            f"cases: {cases['messages']} initial procedures from {cases['fixtures']} fixtures, "
            f"{cases['mean_bytes']:,} bytes on average, each its own procedure"
        )
    lines.append("")
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.append("")
    busy = max((phase.get("elsewhere_cpu_share", 0.0) for phase in phases.values()), default=0.0)
    if busy > BUSY_ELSEWHERE:
        lines.append(
            f"WARNING: the machine was busy with other work (up to {busy:.0%} of a core): "
            "the rates and latencies above are lower than this code can do"
        )
    if v["problems"]:
        lines.append("INVALID RUN: " + "; ".join(v["problems"]))
    lines.append("ALL TARGETS MET" if v["all_pass"] else "TARGETS MISSED")
    return "\n".join(lines)


Row = tuple[str, str, str, str, str]


def _throughput_rows(results: dict[str, Any]) -> list[Row]:
    settings, v, phases = results["settings"], results["verdicts"], results["phases"]
    w, b, r = phases["worker"], phases["bound"], phases["registry"]
    return [
        (
            f"deliveries/s ({w['sent']} cases, {settings['concurrency']} in flight, "
            f"best of {len(w.get('rounds_per_s', [1]))})",
            f"{w['per_s']:.1f}",
            f"{b['per_s']:.1f}",
            f"{r['per_s']:.1f}",
            f"{mark(v['deliveries_per_s'])} (>= 300); ratio {v['bound_ratio']['value']:.2f} "
            f"(>= 0.7) {mark(v['bound_ratio'])}",
        ),
        (
            "  registry call p50 / p99 / max ms",
            _ms(w["call_ms"]),
            _ms(b["latency_ms"]),
            _ms(r["latency_ms"]),
            "",
        ),
        (
            "client CPU ms per delivery (worker / zeep / raw)",
            f"{w['worker_cpu_ms_per_delivery']:.2f}",
            f"{b['client_cpu_ms_per_call']:.2f}",
            f"{r['client_cpu_ms_per_call']:.2f}",
            "",
        ),
        (
            "registry CPU ms per call",
            f"{w['registry_cpu_ms_per_call']:.2f}",
            f"{b['registry_cpu_ms_per_call']:.2f}",
            f"{r['registry_cpu_ms_per_call']:.2f}",
            "",
        ),
        (
            "registry CPU share",
            _share(w, "registry_cpu_share"),
            _share(b, "registry_cpu_share"),
            _share(r, "registry_cpu_share"),
            "of one core",
        ),
        (
            "client CPU share",
            _share(w, "worker_cpu_share"),
            _share(b, "client_cpu_share"),
            _share(r, "client_cpu_share"),
            "of one core",
        ),
        (
            "CPU elsewhere: kernel, database, other work",
            _share(w, "elsewhere_cpu_share"),
            _share(b, "elsewhere_cpu_share"),
            _share(r, "elsewhere_cpu_share"),
            "of one core",
        ),
    ]


def _latency_rows(latency: dict[str, Any], v: dict[str, Any]) -> list[Row]:
    return [
        (
            f"accepted -> registered at {latency['rate']:.0f}/s for {latency['duration_s']:.0f} s, "
            "p50 / p99 / max ms",
            _ms(latency["accepted_to_registered_ms"]),
            "",
            "",
            f"p99 {v['p99_ms']['value']:.1f} ms (< 1000) {mark(v['p99_ms'])}",
        ),
        (
            "  intake HTTP p50 / p99 / max ms; gateway CPU share",
            _ms(latency["intake"]["latency_ms"]),
            f"{latency['intake']['server_cpu_share']:.0%}",
            "",
            f"{latency['registered']} / {latency['measured']} registered",
        ),
        (
            "  messages/s the gateway took in",
            f"{latency['intake']['messages_per_s']:.1f}",
            "",
            "",
            "kept up" if v["p99_ms"]["kept_up"] else f"FELL BEHIND (< {KEPT_UP:.0%} of the rate)",
        ),
    ]
