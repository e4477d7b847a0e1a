"""Verdicts against the targets, and the table printed at the end of a run."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.messages import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"


def verdicts(results: dict[str, Any]) -> dict[str, Any]:
    """PASS/FAIL per target; ``valid`` is false when a request failed or a message was not stored."""
    targets, servers = results["targets"], results["servers"]
    saisine, bound = servers["saisine"], servers["bound"]
    ratio = saisine["throughput"]["messages_per_s"] / bound["throughput"]["messages_per_s"]
    p99 = saisine["latency"]["latency_ms"]["p99"]
    checks: dict[str, Any] = {
        "throughput_ratio": {
            "value": round(ratio, 3),
            "target": f">= {targets['throughput_ratio_min']}",
            "pass": ratio >= targets["throughput_ratio_min"],
        },
        "p99_ms": {
            "value": p99,
            "target": f"<= {targets['p99_ms_max']}",
            "pass": p99 <= targets["p99_ms_max"],
        },
    }
    memory = results.get("memory")
    if memory:
        checks["memory_factor"] = {
            "value": memory["factor"],
            "target": f"<= {targets['memory_factor_max']}",
            "pass": memory["factor"] <= targets["memory_factor_max"],
        }
    # every round of every server was checked when the best one was chosen (bench/ingest.py)
    problems = [f"{name}: {p}" for name, s in servers.items() for p in s["rounds_problems"]]
    if memory and memory["statuses"] != [202, 202]:
        problems.append(f"memory: answers {memory['statuses']}")
    return verdict(checks, problems)


def server_problems(phases: dict[str, Any]) -> list[str]:
    """What voids one server's run: a failed request in any phase, a 202 not in the database."""
    problems = [
        f"{phase}: {data['failures']} failed"
        for phase, data in phases.items()
        if isinstance(data, dict) and data.get("failures")
    ]
    stored = phases["stored"]
    if stored["accepted_202"] != stored["in_database"]:
        problems.append(f"{stored['accepted_202']} answered 202, {stored['in_database']} stored")
    return problems


def verdict(checks: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The checks, and whether the run is valid (no problem) and every target met."""
    return {
        **checks,
        "valid": not problems,
        "problems": problems,
        "all_pass": not problems and all(c["pass"] for c in checks.values()),
    }


def mark(check: dict[str, Any]) -> str:
    return "PASS" if check["pass"] else "FAIL"


@contextmanager
def work_folder(prefix: str, keep: bool) -> Iterator[Path]:
    """A fresh folder for a run's servers and files, removed afterwards unless ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"work folder kept: {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _latency(phase: dict[str, Any]) -> str:
    lat = phase["latency_ms"]
    return f"{lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f}"


def render(results: dict[str, Any]) -> str:
    env, settings, v = results["environment"], results["settings"], results["verdicts"]
    s, b = results["servers"]["saisine"], results["servers"]["bound"]
    rows = [
        ("", "saisine", "bound", "verdict"),
        (
            f"sustained msg/s ({settings['requests']} msgs, {settings['concurrency']} conns)",
            f"{s['throughput']['messages_per_s']:.1f}",
            f"{b['throughput']['messages_per_s']:.1f}",
            f"ratio {v['throughput_ratio']['value']:.2f} (>= 0.6) {mark(v['throughput_ratio'])}",
        ),
        (
            "  every round's msg/s (the best counts)",
            " / ".join(f"{r:.0f}" for r in s.get("rounds_per_s", [])),
            " / ".join(f"{r:.0f}" for r in b.get("rounds_per_s", [])),
            "",
        ),
        ("  latency p50 / p99 / max ms", _latency(s["throughput"]), _latency(b["throughput"]), ""),
        (
            f"open loop {settings['rate']:.0f}/s for {settings['duration']:.0f} s: p50 / p99 / max ms",
            _latency(s["latency"]),
            _latency(b["latency"]),
            f"p99 {v['p99_ms']['value']:.1f} ms (<= 25) {mark(v['p99_ms'])}",
        ),
        (
            "  completed msg/s (sent / time to last answer)",
            f"{s['latency']['messages_per_s']:.1f}",
            f"{b['latency']['messages_per_s']:.1f}",
            "",
        ),
        (
            "server CPU ms/msg (sustained)",
            f"{s['throughput']['server_cpu_ms_per_message']:.2f}",
            f"{b['throughput']['server_cpu_ms_per_message']:.2f}",
            "",
        ),
        (
            "client CPU share (sustained)",
            f"{s['throughput']['client_cpu_share']:.0%}",
            f"{b['throughput']['client_cpu_share']:.0%}",
            "of one core",
        ),
        (
            "CPU elsewhere: kernel I/O, other work",
            f"{s['throughput']['elsewhere_cpu_share']:.0%}",
            f"{b['throughput']['elsewhere_cpu_share']:.0%}",
            "of one core",
        ),
        (
            "failed requests",
            str(sum(p.get("failures", 0) for p in s.values() if isinstance(p, dict))),
            str(sum(p.get("failures", 0) for p in b.values() if isinstance(p, dict))),
            "",
        ),
        (
            "stored / answered 202",
            f"{s['stored']['in_database']} / {s['stored']['accepted_202']}",
            f"{b['stored']['in_database']} / {b['stored']['accepted_202']}",
            "",
        ),
    ]
    memory = results.get("memory")
    if memory:
        rows.append(
            (
                f"peak memory, one {memory['message_bytes'] / 1e6:.1f} MB message",
                f"+{memory['peak_above_idle_bytes'] / 1e6:.1f} MB",
                "",
                f"{memory['factor']:.2f}x (<= 5x) {mark(v['memory_factor'])}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"Saisine ingest benchmark, {env['date']}, {env['cpus']} cores, Python {env['python']}, "
        f"SQLite {env['sqlite']}",
        f"message: {env['message']['bytes']:,} bytes ({env['message']['source']})",
        "",
    ]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.append("")
    if v["problems"]:
        lines.append("INVALID RUN: " + "; ".join(v["problems"]))
    lines.append("ALL TARGETS MET" if v["all_pass"] else "TARGETS MISSED")
    return "\n".join(lines)


def finish(
    name: str, args: argparse.Namespace, results: dict[str, Any], show: Callable[[dict[str, Any]], str]
) -> int:
    """Save the results as JSON, print the table; the exit code: 2 invalid run, 1 a target missed
    under ``--strict``, else 0."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS_DIR / f"{name}-{stamp}{'-quick' if args.quick else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(show(results))
    print(f"\nresults: {output.relative_to(PROJECT_ROOT) if output.is_relative_to(PROJECT_ROOT) else output}")
    verdict = results["verdicts"]
    if not verdict["valid"]:
        return 2
    return 1 if args.strict and not verdict["all_pass"] else 0
