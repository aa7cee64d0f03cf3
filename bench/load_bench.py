"""Load bench: many anonymous readers and many users tracing at once, against the real server.

Starts `glassbox serve` (uvicorn, one process) on 127.0.0.1 with its own Postgres database and
Redis database (bench/server_bench.py's helpers), registers the tiny random model (the server
tokenizes every prompt with it), imports one public graph, starts one real RQ worker process
whose tracer is the server tests' instant fake (jobs run the whole queue -> claim -> store path
without the cost of a model), then runs at the same time:

- --readers anonymous clients (100), each with its own connection, each fetching the graph
  --fetches times: GET /api/graphs/{slug}/data (gzip, as browsers ask) and GET /api/graphs/{slug};
- --users users (20), each with its own API key, each submitting --traces traces with
  different prompts (POST /api/traces) and polling each job (GET /api/jobs/{id}) until it is
  done.

Every answer's status is counted; any 5xx, failed job or transport error makes the run fail
(exit status 1). Latency p50/p99 per request kind and submit -> done per trace are reported as
a Markdown section (printed; appended to a file with --append). Traffic goes to 127.0.0.1 only;
every loop is bounded by a count, and an alarm stops the whole run after --max-seconds.

    .venv/bin/python bench/load_bench.py                          # ~1-2 min on 2 cores
    .venv/bin/python bench/load_bench.py --append bench/RESULTS.md --machine "2-core CPU, shared"
    .venv/bin/python bench/load_bench.py --graph graph.json       # serve this graph JSON instead
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server_bench as sb  # noqa: E402  (the sibling bench: database, Redis, processes, server)

log = logging.getLogger("load_bench")

GRAPH_SLUG = "load-bench-graph"
POLL_S = 0.05
JOB_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0


@dataclass
class Tally:
    """Latencies (s) and status codes per request kind, and what went wrong."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    failed_jobs: list[str] = field(default_factory=list)
    trace_done_s: list[float] = field(default_factory=list)

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.latency.setdefault(kind, []).append(seconds)
        self.statuses.setdefault(kind, Counter())[status] += 1

    def server_errors(self) -> int:
        return sum(n for counts in self.statuses.values() for status, n in counts.items() if status >= 500)

    def ok(self) -> bool:
        return not (self.server_errors() or self.transport_errors or self.failed_jobs)


async def _timed(client: Any, tally: Tally, kind: str, method: str, url: str, **kwargs: Any) -> Any:
    """One request, timed and counted; None when the transport failed (counted too)."""
    import httpx

    t0 = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        tally.transport_errors[f"{kind}: {type(exc).__name__}"] += 1
        return None
    tally.record(kind, response.status_code, time.perf_counter() - t0)
    return response


async def reader(base: str, fetches: int, tally: Tally) -> None:
    """An anonymous browser: the graph's JSON, then its page data, `fetches` times."""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Accept-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        url = f"/api/graphs/{GRAPH_SLUG}"
        for _ in range(fetches):
            await _timed(client, tally, "graph data", "GET", f"{url}/data", headers=headers)
            await _timed(client, tally, "graph metadata", "GET", url)


async def tracer_user(base: str, key: str, index: int, traces: int, tally: Tally) -> None:
    """A user with an API key: submit `traces` different prompts, poll each until done."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(traces):
            body = {"model": "tiny", "prompt": f"user {index} asks question {i} about the cat on the mat"}
            t0 = time.perf_counter()
            response = await _timed(client, tally, "trace submit", "POST", "/api/traces", json=body)
            if response is None or response.status_code != 202:
                continue
            await _follow(client, response.json()["id"], t0, tally)


async def _follow(client: Any, job_id: str, t0: float, tally: Tally) -> None:
    deadline = time.perf_counter() + JOB_TIMEOUT_S
    while time.perf_counter() < deadline:
        response = await _timed(client, tally, "job poll", "GET", f"/api/jobs/{job_id}")
        answered = response is not None and response.status_code == 200
        status = response.json().get("status") if answered else None
        if status == "done":
            tally.trace_done_s.append(time.perf_counter() - t0)
            return
        if status in ("failed", "cancelled"):
            tally.failed_jobs.append(f"{job_id} {status}: {response.json().get('error')}")
            return
        await asyncio.sleep(POLL_S)
    tally.failed_jobs.append(f"{job_id}: not done within {JOB_TIMEOUT_S:.0f} s")


def run_load(base: str, keys: list[str], args: argparse.Namespace) -> tuple[Tally, float]:
    tally = Tally()

    async def everything() -> float:
        t0 = time.perf_counter()
        readers = [reader(base, args.fetches, tally) for _ in range(args.readers)]
        users = [tracer_user(base, key, i, args.traces, tally) for i, key in enumerate(keys)]
        await asyncio.gather(*readers, *users)
        return time.perf_counter() - t0

    return tally, asyncio.run(everything())


# ---- set-up ----------------------------------------------------------------------------------


def api_keys(base: str, count: int) -> list[str]:
    """`count` new users, each with an API key."""
    keys = []
    for i in range(count):
        client = sb.user_client(base, f"load-user-{i}")
        keys.append(client.headers["Authorization"].removeprefix("Bearer "))
        client.close()
    return keys


def import_graph(admin: Any, graph: Path) -> dict[str, Any]:
    body = graph.read_bytes()
    params = {"slug": GRAPH_SLUG}
    return sb.check(admin.post("/api/graphs/import", params=params, content=body,
                               headers={"Content-Type": "application/json"}), 201)


def start_fake_worker(procs: sb.Processes, env: dict[str, str], tmp: Path) -> None:
    """server_bench's fake worker: a real GlassboxWorker (RQ) with the instant fake tracer."""
    worker_env = {**env, "GBX_BENCH_TRACE_LOG": str(tmp / "fake-trace.jsonl")}
    procs.start("fake-worker", [sys.executable, str(HERE / "server_bench.py"), "--fake-worker"], worker_env)
    sb.wait_workers(env["GLASSBOX_REDIS_URL"], env["GLASSBOX_QUEUE_NAME"], 1, procs, ["fake-worker"])


@dataclass
class Run:
    started: datetime
    machine: str
    load: tuple[str, str]
    graph: str
    tally: Tally
    wall_s: float
    versions: dict[str, str]


def run_bench(args: argparse.Namespace, stack: ExitStack) -> Run:
    started, load_start = datetime.now(UTC), sb.load_average()
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-bench-")))
    tiny_dirs = sb.make_tiny_dirs(tmp)
    database_url = stack.enter_context(sb.bench_database(sb.PG_ADMIN_URL))
    redis_url = stack.enter_context(sb.bench_redis(sb.REDIS_BASE_URL))
    env = sb.child_env(database_url=database_url, redis_url=redis_url, tag=secrets.token_hex(4))
    procs = sb.Processes(tmp)
    stack.callback(procs.stop_all)
    base = sb.start_server(procs, env, sb.free_port(), 1)
    admin = sb.user_client(base, "admin")
    stack.callback(admin.close)
    sb.register_model(admin, name="tiny", source=str(tiny_dirs[0]), tc_source=str(tiny_dirs[1]), n_layers=2)
    graph = Path(args.graph) if args.graph else sb.tiny_graph(argparse.Namespace(tmp=str(tmp)), tiny_dirs)
    meta = import_graph(admin, graph)
    what = f"`{args.graph}`" if args.graph else "a graph of the tiny random model (server_bench's prompt)"
    size = f"{meta['node_count']:,} nodes, {meta['link_count']:,} links, {meta['size_bytes']:,} B of JSON"
    graph_line = f"{what}, {size}"
    start_fake_worker(procs, env, tmp)
    keys = api_keys(base, args.users)
    sb.check(admin.get(f"/api/graphs/{GRAPH_SLUG}/data"), 200)  # warm: the first read of a graph
    log.info("load: %d readers x %d fetches, %d users x %d traces", args.readers, args.fetches, args.users,
             args.traces)
    tally, wall = run_load(base, keys, args)
    if not procs.alive("server"):
        raise RuntimeError(f"the server exited:\n{procs.log_tail('server')}")
    machine = args.machine or f"{os.cpu_count()} CPU cores ({sb.cpu_model()}), {sb.memory_gib()} RAM"
    versions = sb.versions(database_url, redis_url)
    return Run(started, machine, (load_start, sb.load_average()), graph_line, tally, wall, versions)


# ---- report ----------------------------------------------------------------------------------


KINDS = ("graph data", "graph metadata", "trace submit", "job poll")


def render(run: Run, args: argparse.Namespace) -> str:
    t = run.tally
    requests = sum(sum(c.values()) for c in t.statuses.values())
    lines = [
        f"## Load: {args.readers} anonymous graph readers and {args.users} users tracing at once "
        f"({run.started:%Y-%m-%d})",
        "",
        f"`bench/load_bench.py --readers {args.readers} --fetches {args.fetches} --users {args.users} "
        f"--traces {args.traces}`; machine: {run.machine}; load average {run.load[0]} -> {run.load[1]}; "
        f"{', '.join(f'{k} {v}' for k, v in run.versions.items())}.",
        "",
        "`glassbox serve` (uvicorn, one process) on 127.0.0.1 with Postgres and Redis on the same "
        "machine; one RQ worker process with the server tests' instant fake tracer (no model runs: "
        "this measures the server, the queue and the database, not attribution); the tiny random "
        "model is registered, and the server tokenizes every prompt with it. The load generator "
        f"(httpx, asyncio) shares the cores. Graph: {run.graph}. Rate limits off.",
        "",
        "| request | count | statuses | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        seconds = t.latency.get(kind, [])
        q = {name: sb.fmt(value * 1000) for name, value in sb.quantiles(seconds).items()}
        counts = ", ".join(f"{s}: {n:,}" for s, n in sorted(t.statuses.get(kind, Counter()).items()))
        row = [kind, f"{len(seconds):,}", counts or "-", q["p50"], q["p99"], q["max"]]
        lines.append("| " + " | ".join(row) + " |")
    done = sb.quantiles(t.trace_done_s)
    verdict = "no 5xx, no transport errors, every job done" if t.ok() else (
        f"**{t.server_errors()} 5xx, {sum(t.transport_errors.values())} transport errors "
        f"({dict(t.transport_errors)}), {len(t.failed_jobs)} jobs not done**"
    )
    lines += [
        "",
        f"{requests:,} requests in {run.wall_s:.1f} s ({requests / run.wall_s:,.0f}/s): {verdict}. "
        f"Traces, submit -> done seen by the polling client: {len(t.trace_done_s)} of "
        f"{args.users * args.traces}, p50 {sb.fmt(done['p50'])} s, p99 {sb.fmt(done['p99'])} s.",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readers", type=int, default=100, help="concurrent anonymous graph readers")
    p.add_argument("--fetches", type=int, default=10, help="graph fetches (data + metadata) per reader")
    p.add_argument("--users", type=int, default=20, help="concurrent users submitting traces")
    p.add_argument("--traces", type=int, default=3, help="traces per user")
    p.add_argument("--graph", help="graph JSON to serve (default: a graph of the tiny random model)")
    p.add_argument("--machine", default="", help="how to describe this machine in the report")
    p.add_argument("--append", help="append the report section to this Markdown file")
    p.add_argument("--max-seconds", type=int, default=600, help="stop (and clean up) after this long")
    args = p.parse_args(argv)
    if not (1 <= args.readers <= 500 and 1 <= args.fetches <= 1000 and 0 <= args.users <= 200
            and 1 <= args.traces <= 100):
        p.error("--readers 1-500, --fetches 1-1000, --users 0-200, --traces 1-100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = sb.run_bounded(run_bench, args)
    report = render(run, args)
    print(report)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as out:  # appends: others may write sections too
            out.write("\n" + report)
        log.info("appended to %s", args.append)
    for problem in run.tally.failed_jobs[:10]:
        log.error("job: %s", problem)
    return 0 if run.tally.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
