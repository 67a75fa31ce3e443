"""The coordinator: environments, one worker process per library and section, the table.

``python -m benchmarks`` runs everything; ``--quick`` runs only the floor and limitor in
the current interpreter (no installs, a few seconds). Results are printed and written to
``benchmarks/results/`` (``--out`` elsewhere) as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import envs, report
from benchmarks.redis_server import RedisServer
from benchmarks.worker import BOOTSTRAP

ROOT = envs.ROOT
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("overhead", "shaping", "fairness", "keys", "redis", "total")
CURRENT_LIBRARIES = (
    "floor_ref",
    "limitor_dev",
    "aiolimiter_peer",
    "limits_peer",
    "pyrate_peer",
    "throttled_peer",
    "token_throttle_peer",
)
WORKER_TIMEOUT = 900
NO_REDIS = "no Redis backend yet"
PARALLEL_SECTIONS = ("shaping", "fairness")
"""Sections whose workers (one per library) run at the same time: their limiters sleep
almost all the time and their figures are rates, shares and waits against the configured
limit, not CPU time; run one after the other they would take several minutes."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Compare limitor with limitor 0.6, aiolimiter, limits, pyrate-limiter "
        "and throttled-py (see benchmarks/README.md).",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only the floor and limitor, current interpreter, no installs (a few seconds)",
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="default: all")
    parser.add_argument("--repeats", type=int, help="repeats of each timing (default 5)")
    parser.add_argument(
        "--realtime-repeats", type=int, help="repeats of the real-time sections (default 3)"
    )
    parser.add_argument("--keys", type=int, help="keys in the per-key section (default 100000)")
    parser.add_argument("--python", help="interpreter for the environments (default: 3.12)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write JSON/Markdown")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="run the shaping and fairness workers one at a time too",
    )
    return parser.parse_args(argv)


def plan(args: argparse.Namespace, notes: list[str]) -> list[tuple[envs.Env, list[str]]]:
    """The environments and, for each, the libraries whose workers run in it."""
    if args.quick:
        version = platform.python_version()
        current = envs.Env("current", sys.executable, venv=False, version=version)
        return [(current, ["floor_ref", "limitor_dev"])]
    if args.python:
        found = (args.python, ".".join(map(str, envs.python_version(args.python) or ())))
    else:
        found = envs.find_python()
    runs: list[tuple[envs.Env, list[str]]] = []
    if found is None:
        notes.append("no Python >= 3.12 found: limitor 0.6 skipped (it needs 3.12)")
        python, version = sys.executable, platform.python_version()
    else:
        python, version = found
    tag = "py" + ".".join(version.split(".")[:2])
    current = envs.Env(
        f"current-{tag}",
        python,
        requirements=envs.PEERS,
        optional=envs.OPTIONAL_PEERS,
        editable=True,
        version=version,
    )
    runs.append((current, list(CURRENT_LIBRARIES)))
    if found is not None and tuple(map(int, version.split(".")[:2])) >= (3, 12):
        old = envs.Env(f"limitor06-{tag}", python, requirements=envs.LIMITOR_06, version=version)
        runs.append((old, ["limitor_06"]))
    elif found is not None:
        notes.append(f"Python {version} < 3.12: limitor 0.6 skipped (it needs 3.12)")
    return runs


def run_worker(
    env: envs.Env, library: str, section: str, settings: dict[str, Any], workdir: Path
) -> dict[str, Any]:
    """Run one worker; a failure becomes an error row, never a crash of the run."""
    out = workdir / f"{env.name}-{library}-{section}.json"
    spec = {"library": library, "section": section, "out": str(out), **settings}
    spec_path = workdir / f"{env.name}-{library}-{section}.spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [env.executable, "-c", BOOTSTRAP.format(root=str(ROOT)), str(spec_path)]
    started = time.perf_counter()
    try:
        result = subprocess.run(
            command,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        failure = result.stderr.strip().splitlines()[-1:] if result.returncode else []
    except subprocess.TimeoutExpired:
        failure = [f"worker timed out after {WORKER_TIMEOUT} s"]
    elapsed = time.perf_counter() - started
    if failure or not out.exists():
        log(f"  [{section}] {library}: FAILED after {elapsed:.1f} s: {failure}")
        name = library
        return {
            "meta": {},
            "records": [
                {
                    "section": section,
                    "measure": "",
                    "library": name,
                    "algorithm": "",
                    "value": None,
                    "unit": "",
                    "ref": None,
                    "samples": [],
                    "ratios": [],
                    "status": "error",
                    "note": (failure or ["no output"])[0][:160],
                }
            ],
        }
    log(f"  [{section}] {library} ({env.name}): {elapsed:.1f} s")
    return dict(json.loads(out.read_text()))


def settings_for(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        base = {"repeats": 3, "realtime_repeats": 1, "keys_repeats": 1, "keys": 5000}
        base["target"] = 0.01
    else:
        base = {"repeats": 5, "realtime_repeats": 3, "keys_repeats": 3, "keys": 100_000}
        base["target"] = 0.05
    if args.repeats:
        base["repeats"] = args.repeats
    if args.realtime_repeats:
        base["realtime_repeats"] = args.realtime_repeats
    if args.keys:
        base["keys"] = args.keys
    return base


def header_lines(
    args: argparse.Namespace,
    metas: dict[str, dict[str, Any]],
    notes: list[str],
    settings: dict[str, Any],
    records: list[dict[str, Any]],
) -> list[str]:
    """What ran where: date, machine, interpreters, versions, the floor, and any notes."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"limitor benchmarks, {now}, {'quick' if args.quick else 'full'} run, "
        f"{os.cpu_count()} cores",
        f"repeats: {settings['repeats']} per timing, {settings['realtime_repeats']} per "
        f"real-time figure, {settings['keys_repeats']} per 100k-key timing; medians",
    ]
    environments: dict[str, dict[str, Any]] = {}
    for key, meta in metas.items():
        env = environments.setdefault(key.rsplit(" ", 1)[-1], {"python": meta["python"]})
        for name, version in meta.get("versions", {}).items():
            label = f"{name} {version}" if version else f"{name} (not installed)"
            if name == "limitor" and meta.get("limitor_path"):
                label += f" ({meta['limitor_path']})"
            env.setdefault("packages", {})[label] = True
    for name, env in environments.items():
        packages = ", ".join(env.get("packages", {})) or "-"
        lines.append(f"environment {name}: Python {env['python']}: {packages}")
    floors = [
        r["value"]
        for r in records
        if r["library"] == "floor" and r["measure"] == "sync acquire" and r["value"]
    ]
    floor = f": {floors[0]:.2f} us per acquire in this run" if floors else ""
    lines.append(
        f"floor = a minimal locked token bucket (benchmarks/floor.py){floor}; every worker "
        "times it before every repeat"
    )
    lines.append(
        "columns: 'x ref' = ratio to the section's reference (below each title); "
        "'vs lim' = x ref over limitor's x ref for the same algorithm (else its leaky bucket)"
    )
    return lines + notes


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    notes: list[str] = []
    sections = list(args.sections or (("overhead", "keys") if args.quick else SECTIONS))
    settings = settings_for(args)
    runs = plan(args, notes)
    for env, _ in runs:
        try:
            envs.ensure(env, log)
        except subprocess.CalledProcessError as error:
            log(f"could not prepare {env.name}: {error}")
            notes.append(f"environment {env.name} could not be prepared: {error}")
            runs = [(e, libs) for e, libs in runs if e is not env]
    records: list[dict[str, Any]] = []
    metas: dict[str, dict[str, Any]] = {}
    server = RedisServer()
    redis_tried, redis_url = False, None
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="limitor-bench-") as tmp:
            workdir = Path(tmp)
            for section in sections:
                section_settings = dict(settings)
                if section in ("redis", "total") and not redis_tried:
                    redis_tried, redis_url = True, server.start()
                if section == "total":  # memory always; Redis when a server started
                    if redis_url is None:
                        notes.append("total section: no redis-server on PATH, memory only")
                    else:
                        section_settings["redis_url"] = redis_url
                if section == "redis":
                    url = redis_url
                    if url is None:
                        message = (
                            "Redis section skipped: no redis-server on PATH "
                            "(install it, e.g. apt-get install redis-server)"
                        )
                        log(message)
                        notes.append(message)
                        continue
                    section_settings["redis_url"] = url
                log(f"section {section} ...")
                jobs = [
                    (env, library)
                    for env, libraries in runs
                    for library in libraries
                    if not (section == "redis" and env.name.startswith("limitor06"))
                ]
                parallel = section in PARALLEL_SECTIONS and not args.serial
                with ThreadPoolExecutor(len(jobs) if parallel else 1) as pool:
                    results = pool.map(
                        lambda job, s=section, c=section_settings: run_worker(
                            job[0], job[1], s, c, workdir
                        ),
                        jobs,
                    )
                    for (env, library), result in zip(jobs, results, strict=True):
                        records += result["records"]
                        if result["meta"]:
                            metas[f"{library} {env.name}"] = result["meta"]
    finally:
        server.stop()
    if any(r["library"] == "limitor" and r["status"] == NO_REDIS for r in records):
        notes.append("limitor: no Redis backend yet (its row is measured once it exists)")
    report.annotate(records)
    header = header_lines(args, metas, notes, settings, records)
    summary = report.summary(records)
    table = report.text(records, header)
    table += "\nSummary\n" + "\n".join(f"  {line}" for line in summary or ["-"]) + "\n"
    table += f"\n(total {time.perf_counter() - started:.0f} s)\n"
    print(table)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        kind = "quick" if args.quick else "full"
        payload = {"header": header, "summary": summary, "records": records, "metas": metas}
        for name in (f"{kind}-{stamp}", f"latest-{kind}"):
            (args.out / f"{name}.json").write_text(json.dumps(payload, indent=1))
            md = report.markdown(records, header)
            md += "\n## Summary\n\n" + "\n".join(f"- {line}" for line in summary) + "\n"
            (args.out / f"{name}.md").write_text(md)
        log(f"written: {args.out / f'latest-{kind}.json'} and .md")
    return 0
