"""Server benchmark against real Postgres and Redis.

Starts the real server (`glassbox serve`: uvicorn, one process) on 127.0.0.1 and measures
1. graph fetch: p50/p99 latency and requests/s of GET /api/graphs/{slug}/data with 32
   concurrent clients (and with one), gzip and plain, with the bytes each response carries;
   the load comes from wrk when it is installed (apt-get install wrk), else httpx async clients;
2. queue overhead per job: trivial jobs run by a real RQ worker whose tracer is instant (the
   server tests' fake tracer, timed inside the worker): submit -> done minus trace time;
3. two real `glassbox worker` processes running two real traces at once (the demo model when it
   is pulled, else the tiny random model), against one worker doing the same two traces.

Everything it touches is its own: a database `glassbox_bench_<hex>` (dropped at the end), a
Redis database number locked the way the server tests lock theirs (flushed at the end), its
own queue name. Traffic goes to 127.0.0.1 only; every loop is bounded by a count or a clock,
and an alarm stops the whole run after --max-seconds.

    .venv/bin/python bench/server_bench.py                       # ~2-3 min, writes bench/SERVER_BENCH.md
    .venv/bin/python bench/server_bench.py --graph graph.json    # serve this graph JSON in part 1
    .venv/bin/python bench/server_bench.py --trace-model tiny    # part 3 on the tiny random model

Without --graph, part 1 serves a real graph of the demo model (Gemma 3 270M + the 2k PLT set,
1,000 feature nodes), traced once with `glassbox trace` and kept in <glassbox home>/bench/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

log = logging.getLogger("server_bench")

PG_ADMIN_URL = os.environ.get("GLASSBOX_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE_URL = os.environ.get("GLASSBOX_BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DBS = range(5, 0, -1)  # the server tests take 15..6; same lock keys, so nobody collides
DEMO_MODEL = "gemma-3-270m"
DEMO_TRANSCODERS = REPO.parent / "shared/transcoders/gemma-3-270m-plt-2k"
GRAPH_PROMPT = "Fact: Michael Jordan plays the sport of"
GRAPH_FEATURE_NODES = 1000
GRAPH_SLUG = "bench-graph"
# Part 3 prompts: two different prompts of similar length (identical requests would be deduplicated).
TINY_PROMPTS = (
    "Fact : Michael Jordan plays the sport of basketball . The capital of the state containing Dallas "
    "is Austin . The opposite of small is large and the opposite of hot is cold . a cat sat on the mat "
    "and how gratitude work",
    "The capital of the state containing Dallas is Austin . Fact : Michael Jordan plays the sport of "
    "basketball . a cat sat on the hat and the opposite of big is small . 36 + 59 = 95 in French and "
    "Chinese to be",
)
DEMO_PROMPTS = (
    "Fact: Michael Jordan plays the sport of",
    "The capital of the state containing Dallas is",
)
POLL_S = 0.005
WAIT_JOB_S = 600.0


# ---- machine and report helpers ------------------------------------------------------------


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "?"


def quantiles(values: list[float]) -> dict[str, float]:
    """p50, p90, p99, max and mean of `values` (nearest-rank percentiles)."""
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max", "mean")}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]

    return {
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def human_bytes(n: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


# ---- resources: database, Redis database, processes -----------------------------------------


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A new Postgres database for this run; dropped (with its connections) at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"glassbox_bench_{secrets.token_hex(4)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    log.info("created database %s", name)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        log.info("dropped database %s", name)


@contextmanager
def bench_redis(base_url: str) -> Iterator[str]:
    """An empty Redis database number nobody else holds (lock key in db 0); flushed at the end."""
    from redis import Redis

    lock_conn = Redis.from_url(f"{base_url}/0")
    owner = f"server_bench:{os.getpid()}"
    for db in REDIS_DBS:
        key = f"glassbox-test-lock:{db}"
        if not lock_conn.set(key, owner, nx=True, ex=1800):
            continue
        conn = Redis.from_url(f"{base_url}/{db}")
        if conn.dbsize() == 0:
            break
        conn.close()
        lock_conn.delete(key)
    else:
        lock_conn.close()
        raise RuntimeError(f"no free, empty Redis database among {list(REDIS_DBS)}")
    log.info("using Redis database %d", db)
    try:
        yield f"{base_url}/{db}"
    finally:
        conn.flushdb()
        conn.close()
        if lock_conn.get(key) == owner.encode():
            lock_conn.delete(key)
        lock_conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Child processes of this run, each with its own log file; stopped by pid, never by name."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log_dir / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(
                argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self, name: str, timeout_s: float = 20.0) -> None:
        """SIGTERM (RQ and uvicorn shut down cleanly), then SIGKILL if it does not exit."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def child_env(*, database_url: str, redis_url: str, tag: str) -> dict[str, str]:
    """Production settings for the server and workers, except what a benchmark must change:
    plain-http cookies, no rate limits, cheap password hashes (only registration uses them)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("GLASSBOX_") or k == "GLASSBOX_HOME") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "GLASSBOX_DATABASE_URL": database_url,
            "GLASSBOX_REDIS_URL": redis_url,
            "GLASSBOX_QUEUE_NAME": f"gbx-bench-{tag}",
            "GLASSBOX_REDIS_PREFIX": f"gbx-bench-{tag}:",
            **bench_client_settings(),
        }
    )
    return env


def bench_client_settings() -> dict[str, str]:
    """What every benchmark changes for its scripted clients: plain-http cookies, no rate limits,
    cheap password hashes, no progress bars, this checkout importable."""
    return {
        "GLASSBOX_SECRET_KEY": secrets.token_urlsafe(32),
        "GLASSBOX_COOKIE_SECURE": "false",
        "GLASSBOX_TRACE_RATE_LIMIT_PER_USER": "0",
        "GLASSBOX_TRACE_RATE_LIMIT_PER_ADDRESS": "0",
        "GLASSBOX_AUTH_RATE_LIMIT_PER_ADDRESS": "0",
        "GLASSBOX_PREVIEW_RATE_LIMIT_PER_ADDRESS": "0",
        "GLASSBOX_PASSWORD_HASH_TIME_COST": "1",
        "GLASSBOX_PASSWORD_HASH_MEMORY_KIB": "8",
        "TQDM_DISABLE": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }


def glassbox_cli() -> str:
    exe = Path(sys.executable).with_name("glassbox")
    return str(exe) if exe.exists() else "glassbox"


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(interval_s)


# ---- the server and its API -----------------------------------------------------------------


def start_server(procs: Processes, env: dict[str, str], port: int, processes: int | None = None, *,
                 log_level: str = "warning") -> str:
    """`glassbox serve` (migrates the new database first); returns its base URL once ready.
    processes None: the embedded default (one process, the in-process worker)."""
    import httpx

    argv = [glassbox_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if processes is not None:
        argv += ["--processes", str(processes)]
    argv += ["--log-level", log_level]
    procs.start("server", argv, env)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if not procs.alive("server"):
            raise RuntimeError(f"the server exited:\n{procs.log_tail('server')}")
        try:
            return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 180, "server ready", interval_s=0.2)
    return base


def check(response: Any, status: int) -> Any:
    if response.status_code != status:
        request = response.request
        raise RuntimeError(f"{request.method} {request.url} -> {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def user_client(base: str, username: str) -> Any:
    """Register `username`, log in, make an API key; a client that sends it (no cookies, no CSRF)."""
    import httpx

    password = "bench password 123"
    with httpx.Client(base_url=base, timeout=60) as browser:
        check(browser.post("/api/auth/register", json={"username": username, "password": password}), 201)
        login = {"username": username, "password": password}
        session = check(browser.post("/api/auth/login", json=login), 200)
        headers = {"X-CSRF-Token": session["csrf_token"]}
        key = check(browser.post("/api/auth/keys", json={"name": "bench"}, headers=headers), 201)["key"]
    return httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {key}"})


def register_model(admin: Any, *, name: str, source: str, tc_source: str, n_layers: int) -> None:
    check(admin.post("/api/models", json={"name": name, "source": source}), 201)
    body = {"name": "tc", "source": tc_source, "is_default": True, "n_layers": n_layers}
    check(admin.post(f"/api/models/{name}/transcoder-sets", json=body), 201)


def submit(client: Any, model: str, prompt: str, params: dict[str, Any] | None = None) -> str:
    body = {"model": model, "prompt": prompt, "params": params or {}}
    job = check(client.post("/api/traces", json=body), 202)
    if job["deduplicated"]:
        raise RuntimeError(f"job for {prompt!r} was deduplicated; the bench needs fresh jobs")
    return job["id"]


# ---- the database, read directly for job timestamps and worker names -------------------------


@dataclass
class JobRow:
    id: str
    status: str
    prompt: str
    worker: str | None
    created: float
    started: float | None
    finished: float | None
    duration_s: float | None
    error: str | None


class JobReader:
    def __init__(self, database_url: str):
        from persistence.db import make_engine, make_sessionmaker

        self.engine = make_engine(database_url)
        self.sessions = make_sessionmaker(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def rows(self, ids: list[str]) -> list[JobRow]:
        from sqlalchemy import select

        from persistence.tables import Job

        def ts(value: datetime | None) -> float | None:
            return value.timestamp() if value is not None else None

        with self.sessions() as session:
            jobs = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)))}
            return [
                JobRow(
                    id=j.id,
                    status=str(j.status.value),
                    prompt=j.request.get("prompt", ""),
                    worker=j.worker_name,
                    created=j.created_at.timestamp(),
                    started=ts(j.started_at),
                    finished=ts(j.finished_at),
                    duration_s=j.duration_s,
                    error=j.error,
                )
                for j in (jobs[i] for i in ids if i in jobs)
            ]

    def wait_finished(self, ids: list[str], timeout_s: float = WAIT_JOB_S) -> list[JobRow]:
        """Poll until every job is done; a failed or cancelled one stops the bench."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.rows(ids)
            bad = [r for r in rows if r.status in ("failed", "cancelled")]
            if bad:
                raise RuntimeError(f"job {bad[0].id} {bad[0].status}: {bad[0].error}")
            if len(rows) == len(ids) and all(r.status == "done" for r in rows):
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not done within {timeout_s:.0f} s")
            time.sleep(0.02)


def wait_workers(redis_url: str, queue_name: str, count: int, procs: Processes, names: list[str]) -> None:
    """Until exactly `count` RQ workers listen on the queue (they register when they start)."""
    from redis import Redis
    from rq import Queue, Worker

    with Redis.from_url(redis_url) as conn:
        queue = Queue(queue_name, connection=conn)

        def registered() -> bool:
            for name in names:
                if not procs.alive(name):
                    raise RuntimeError(f"{name} exited:\n{procs.log_tail(name)}")
            return len(Worker.all(queue=queue)) == count

        wait_until(registered, 180, f"{count} worker(s) registered", interval_s=0.2)


# ---- part 1: graph fetch ----------------------------------------------------------------------


@dataclass
class LoadResult:
    tool: str
    encoding: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bytes_per_response: float  # as sent over the wire (body; wrk: with headers)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.rps * self.bytes_per_response / 1e6


async def _fetch_loop(
    url: str, headers: dict[str, str], deadline: float, budget: list[int], out: dict[str, list]
) -> None:
    """One client with one connection, requests back to back; raw (still compressed) bytes."""
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    size = 0
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                out["latency"].append(time.perf_counter() - t0)
                out["bytes"].append(size)
            else:
                out["errors"].append(1)


def httpx_load(url: str, *, encoding: str, clients: int, seconds: float, max_requests: int) -> LoadResult:
    headers = {"Accept-Encoding": encoding}
    out: dict[str, list] = {"latency": [], "bytes": [], "errors": []}

    async def run() -> float:
        t0 = time.perf_counter()
        budget = [max_requests]
        await asyncio.gather(*(_fetch_loop(url, headers, t0 + seconds, budget, out) for _ in range(clients)))
        return time.perf_counter() - t0

    wall = asyncio.run(run())
    q = quantiles(out["latency"])
    return LoadResult(
        tool="httpx",
        encoding=encoding,
        clients=clients,
        requests=len(out["latency"]),
        errors=len(out["errors"]),
        seconds=wall,
        p50_ms=q["p50"] * 1000,
        p99_ms=q["p99"] * 1000,
        bytes_per_response=statistics.fmean(out["bytes"]) if out["bytes"] else float("nan"),
    )


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, "socket_errors": %.0f, ' ..
    '"status_errors": %.0f, "p50_us": %.0f, "p99_us": %.0f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_load(url: str, *, encoding: str, clients: int, seconds: float, script: Path) -> LoadResult:
    threads = max(1, min(clients, os.cpu_count() or 1))
    argv = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    argv += ["-s", str(script), "-H", f"Accept-Encoding: {encoding}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary:\n{out.stdout}\n{out.stderr}")
    s = json.loads(line.removeprefix("WRKJSON "))
    ok = s["requests"] - s["status_errors"]
    return LoadResult(
        tool="wrk",
        encoding=encoding,
        clients=clients,
        requests=int(ok),
        errors=int(s["socket_errors"] + s["status_errors"]),
        seconds=s["duration_us"] / 1e6,
        p50_ms=s["p50_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
        bytes_per_response=s["bytes"] / s["requests"] if s["requests"] else float("nan"),
    )


@dataclass
class FetchPart:
    graph_source: str
    nodes: int
    links: int
    json_bytes: int
    gzip_bytes: int
    results: list[LoadResult] = field(default_factory=list)
    load: tuple[str, str] = ("", "")


def part_fetch(admin: Any, base: str, graph: Path, graph_source: str, args: argparse.Namespace) -> FetchPart:
    load_start = load_average()
    raw = graph.read_bytes()
    meta = check(
        admin.post(
            "/api/graphs/import",
            params={"slug": GRAPH_SLUG},
            content=raw,
            headers={"Content-Type": "application/json"},
        ),
        201,
    )
    url = f"{base}/api/graphs/{GRAPH_SLUG}/data"
    gzip_bytes = raw_size(admin, url, "gzip")
    part = FetchPart(graph_source, meta["node_count"], meta["link_count"], meta["size_bytes"], gzip_bytes)
    load = load_runner(args)
    log.info("part 1: graph %d nodes, %d links; warming up", part.nodes, part.links)
    load(url, "gzip", args.clients, 2.0)
    for encoding in ("gzip", "identity"):
        for clients, seconds in ((1, args.fetch_seconds / 2), (args.clients, args.fetch_seconds)):
            log.info("part 1: %s, %d client(s), %.0f s", encoding, clients, seconds)
            part.results.append(load(url, encoding, clients, seconds))
    part.load = (load_start, load_average())
    return part


def raw_size(client: Any, url: str, encoding: str) -> int:
    """Body bytes as sent (-1 if the server did not use `encoding`)."""
    with client.stream("GET", url, headers={"Accept-Encoding": encoding}) as response:
        size = sum(len(chunk) for chunk in response.iter_raw())
        sent = response.headers.get("content-encoding", "identity")
    return size if sent == encoding else -1


def load_runner(args: argparse.Namespace) -> Callable[[str, str, int, float], LoadResult]:
    """(url, encoding, clients, seconds) -> LoadResult, with wrk or httpx (--tool)."""
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "httpx"
    if tool == "httpx":
        return lambda url, enc, clients, seconds: httpx_load(
            url, encoding=enc, clients=clients, seconds=seconds, max_requests=20_000
        )
    if shutil.which("wrk") is None:
        raise RuntimeError("--tool wrk: wrk is not installed (apt-get install wrk)")
    script = Path(args.tmp) / "wrk_summary.lua"
    script.write_text(WRK_SCRIPT)
    return lambda url, enc, clients, seconds: wrk_load(
        url, encoding=enc, clients=clients, seconds=seconds, script=script
    )


# ---- part 2: queue overhead -----------------------------------------------------------------


@dataclass
class QueuePart:
    n: int
    seq: dict[str, dict[str, float]] = field(default_factory=dict)  # measure -> quantiles (ms)
    burst_n: int = 0
    burst_wall_s: float = 0.0
    burst_trace_s: float = 0.0
    load: tuple[str, str] = ("", "")


def read_trace_log(path: Path) -> dict[str, float]:
    """prompt -> seconds inside the tracer, as the fake worker wrote them."""
    out: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            item = json.loads(line)
            out[item["prompt"]] = item["end"] - item["start"]
    return out


def submit_and_wait(client: Any, model: str, prompt: str) -> tuple[str, float, float, float]:
    """(job id, POST start, POST end, time the client saw it done), polling every POLL_S."""
    t0 = time.time()
    job_id = submit(client, model, prompt)
    t1 = time.time()
    deadline = time.monotonic() + 60
    while True:
        job = check(client.get(f"/api/jobs/{job_id}"), 200)
        if job["status"] == "done":
            return job_id, t0, t1, time.time()
        if job["status"] in ("failed", "cancelled") or time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} is {job['status']}: {job['error']}")
        time.sleep(POLL_S)


def part_queue(
    base: str, procs: Processes, env: dict[str, str], reader: JobReader, args: argparse.Namespace
) -> QueuePart:
    load_start = load_average()
    trace_log = Path(args.tmp) / "fake-trace.jsonl"
    worker_env = {**env, "GBX_BENCH_TRACE_LOG": str(trace_log)}
    procs.start("fake-worker", [sys.executable, str(Path(__file__).resolve()), "--fake-worker"], worker_env)
    wait_workers(env["GLASSBOX_REDIS_URL"], env["GLASSBOX_QUEUE_NAME"], 1, procs, ["fake-worker"])
    client = user_client(base, "queue-bench")
    part = QueuePart(n=args.jobs)
    submit_and_wait(client, "tiny", "warm up the queue")
    log.info("part 2: %d jobs one at a time", args.jobs)
    seen = [submit_and_wait(client, "tiny", f"queue bench sequential {i}") for i in range(args.jobs)]
    rows = {r.id: r for r in reader.rows([s[0] for s in seen])}
    traced = read_trace_log(trace_log)
    measures: dict[str, list[float]] = {k: [] for k in SEQ_MEASURES}
    for job_id, t_post, t_posted, t_seen in seen:
        row = rows[job_id]
        trace_s = traced[row.prompt]
        if row.started is None or row.finished is None:
            raise RuntimeError(f"job {job_id} is done without start or finish times")
        measures["post"].append(t_posted - t_post)
        measures["client"].append(t_seen - t_post - trace_s)
        measures["server"].append(row.finished - row.created - trace_s)
        measures["pickup"].append(row.started - row.created)
        measures["run"].append(row.finished - row.started - trace_s)
        measures["trace"].append(trace_s)
    part.seq = {k: {q: v * 1000 for q, v in quantiles(vals).items()} for k, vals in measures.items()}
    log.info("part 2: %d jobs submitted at once", args.jobs)
    ids = [submit(client, "tiny", f"queue bench burst {i}") for i in range(args.jobs)]
    done = reader.wait_finished(ids)
    traced = read_trace_log(trace_log)
    part.burst_n = len(ids)
    part.burst_wall_s = max(r.finished or 0 for r in done) - min(r.created for r in done)
    part.burst_trace_s = sum(traced[r.prompt] for r in done)
    client.close()
    procs.stop("fake-worker")
    part.load = (load_start, load_average())
    return part


SEQ_MEASURES = {
    "client": "submit -> done seen by the client, minus trace (POST + queue + run + polling every 5 ms)",
    "server": "submit -> done in the database (created_at -> finished_at), minus trace",
    "post": "POST /api/traces answered (validate, tokenize, insert, enqueue)",
    "pickup": "created_at -> started_at (commit, enqueue, RQ dequeue, claim)",
    "run": "started_at -> finished_at minus trace (progress writes, storing the graph)",
    "trace": "inside the fake tracer (for reference)",
}


def fake_worker_main() -> None:
    """The worker of part 2: `run_worker` (a real GlassboxWorker on RQ) with the server tests'
    instant fake tracer, timed; the times go to $GBX_BENCH_TRACE_LOG, one JSON line per job."""
    sys.path.insert(0, str(REPO / "tests" / "server"))
    from gbx_fakes import FakeTracer

    from persistence.settings import Settings
    from worker.rq_worker import run_worker

    inner = FakeTracer(steps=1, step_delay_s=0.0)
    trace_log = Path(os.environ["GBX_BENCH_TRACE_LOG"])

    def tracer(spec: Any, progress: Any) -> Any:
        start = time.time()
        output = inner(spec, progress)
        end = time.time()
        with trace_log.open("a") as f:
            f.write(json.dumps({"prompt": spec.prompt, "start": start, "end": end}) + "\n")
        return output

    logging.basicConfig(level=logging.WARNING)
    run_worker(Settings(), tracer=tracer, name=f"bench-fake-{os.getpid()}")


# ---- part 3: two workers ----------------------------------------------------------------------


@dataclass
class Round:
    name: str
    workers: int
    jobs: list[JobRow]
    wall_s: float  # first submit (created_at) -> last finished_at

    @property
    def overlap_s(self) -> float:
        a, b = self.jobs
        end = min(a.finished or 0.0, b.finished or 0.0)
        return max(0.0, end - max(a.started or 0.0, b.started or 0.0))


@dataclass
class WorkersPart:
    model: str
    prompts: tuple[str, ...]
    params: dict[str, Any]
    rounds: list[Round] = field(default_factory=list)
    load: tuple[str, str] = ("", "")


def run_pair(
    base: str, reader: JobReader, model: str, prompts: tuple[str, ...], params: dict, user: str
) -> Round:
    """Submit the two prompts back to back (a new user, so nothing is deduplicated); wait for both."""
    client = user_client(base, user)
    try:
        ids = [submit(client, model, p, params) for p in prompts]
    finally:
        client.close()
    rows = reader.wait_finished(ids)
    wall = max(r.finished or 0 for r in rows) - min(r.created for r in rows)
    return Round(user, 0, rows, wall)


def part_workers(
    base: str, admin: Any, procs: Processes, env: dict[str, str], reader: JobReader, args: argparse.Namespace
) -> WorkersPart:
    """Warm-up (each worker loads the model), `rounds` pairs on two workers, then on one."""
    load_start = load_average()
    if args.trace_model == "demo" or (args.trace_model == "auto" and demo_available()):
        model, prompts = DEMO_MODEL, DEMO_PROMPTS
        params = {"max_feature_nodes": args.trace_feature_nodes}
        register_model(admin, name=model, source=DEMO_MODEL, tc_source=str(DEMO_TRANSCODERS), n_layers=18)
    else:
        model, prompts, params = "tiny", TINY_PROMPTS, {}
    part = WorkersPart(model, prompts, params)
    check(admin.post(f"/api/models/{model}/tokenize", json={"prompt": prompts[0], "top_k": 0}), 200)
    worker_env = dict(env)
    if args.worker_threads:
        worker_env.update(OMP_NUM_THREADS=str(args.worker_threads), MKL_NUM_THREADS=str(args.worker_threads))
    names = ["worker-1", "worker-2"]
    for i, name in enumerate(names, 1):
        argv = [glassbox_cli(), "worker", "--name", f"bench-w{i}", "--log-level", "warning"]
        procs.start(name, argv, worker_env)
    redis_url, queue = env["GLASSBOX_REDIS_URL"], env["GLASSBOX_QUEUE_NAME"]
    wait_workers(redis_url, queue, 2, procs, names)

    def rounds(label: str, workers: int, count: int) -> None:
        for i in range(1, count + 1):
            log.info("part 3: %s, round %d of %d", label, i, count)
            rnd = run_pair(base, reader, model, prompts, params, f"{label.replace(' ', '-')}-{i}")
            rnd.name, rnd.workers = label, workers
            part.rounds.append(rnd)

    rounds("warm-up", 2, 1)
    rounds("two workers", 2, args.rounds)
    procs.stop("worker-2")
    wait_workers(redis_url, queue, 1, procs, ["worker-1"])
    rounds("one worker", 1, args.rounds)
    procs.stop("worker-1")
    part.load = (load_start, load_average())
    return part


# ---- the graph for part 1 -----------------------------------------------------------------------


def demo_available() -> bool:
    """The demo model is pulled and its transcoder set is on disk (nothing is downloaded)."""
    from glassbox.models import demo

    return demo.local_path(DEMO_MODEL) is not None and (DEMO_TRANSCODERS / "config.yaml").is_file()


def ensure_graph(args: argparse.Namespace, tiny_dirs: tuple[Path, Path]) -> tuple[Path, str]:
    """The graph JSON to serve, and a line saying what it is."""
    if args.graph:
        return Path(args.graph), f"`{args.graph}`"
    from glassbox.home import glassbox_home

    cached = glassbox_home() / "bench" / "server-bench-graph.json"
    what = (
        f"{DEMO_MODEL} + `{DEMO_TRANSCODERS.name}`, prompt {GRAPH_PROMPT!r}, "
        f"max_feature_nodes {GRAPH_FEATURE_NODES} (`glassbox trace`, cached in GLASSBOX_HOME/bench/)"
    )
    if cached.exists():
        return cached, what
    if not demo_available():
        log.warning("demo model or transcoders missing; serving a tiny-model graph instead")
        return tiny_graph(args, tiny_dirs), "tiny random model from glassbox.testing (NOT a realistic size)"
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.json")
    argv = [glassbox_cli(), "trace", GRAPH_PROMPT, "-m", DEMO_MODEL, "-t", str(DEMO_TRANSCODERS)]
    argv += ["--max-feature-nodes", str(GRAPH_FEATURE_NODES), "-o", str(tmp)]
    log.info("making the part 1 graph once (about a minute on 2 CPUs): %s", " ".join(argv))
    try:
        env = {**os.environ, "TQDM_DISABLE": "1"}
        subprocess.run(argv, check=True, capture_output=True, timeout=900, env=env)
        tmp.replace(cached)
        return cached, what
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("could not trace the demo model (%s); serving a tiny-model graph instead", exc)
        tmp.unlink(missing_ok=True)
    return tiny_graph(args, tiny_dirs), "tiny random model from glassbox.testing (NOT a realistic size)"


def tiny_graph(args: argparse.Namespace, tiny_dirs: tuple[Path, Path]) -> Path:
    import glassbox

    model = glassbox.load_model(str(tiny_dirs[0]))
    transcoders = glassbox.load_transcoders(str(tiny_dirs[1]))
    result = glassbox.trace(TINY_PROMPTS[0], model=model, transcoders=transcoders)
    path = Path(args.tmp) / "tiny-graph.json"
    path.write_text(json.dumps(result.to_json(slug=GRAPH_SLUG, scan="tiny")))
    return path


def make_tiny_dirs(root: Path) -> tuple[Path, Path]:
    from glassbox.testing import make_random_transcoders_dir, make_tiny_model_dir

    model_dir = make_tiny_model_dir(root / "tiny-model", "llama")
    return model_dir, make_random_transcoders_dir(root / "tiny-tc", model_dir)


# ---- report ----------------------------------------------------------------------------------------


@dataclass
class Run:
    command: str
    started: datetime
    load_start: str
    load_end: str = ""
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    fetch: FetchPart | None = None
    queue: QueuePart | None = None
    workers: WorkersPart | None = None


def versions(database_url: str, redis_url: str) -> dict[str, str]:
    import fastapi
    import httpx
    import rq
    import uvicorn
    from redis import Redis
    from sqlalchemy import text

    from persistence.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        pg = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    engine.dispose()
    with Redis.from_url(redis_url) as conn:
        rv = str(conn.info("server")["redis_version"])
    return {
        "Python": platform.python_version(),
        "Postgres": pg,
        "Redis": rv,
        "uvicorn": uvicorn.__version__,
        "FastAPI": fastapi.__version__,
        "RQ": rq.__version__,
        "httpx": httpx.__version__,
    }


def fmt(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def render(run: Run, args: argparse.Namespace) -> str:
    lines = [
        "# Server bench: graph fetch, queue overhead, parallel workers",
        "",
        f"Generated by `bench/server_bench.py`; command: `{run.command}`.",
        "",
        "| | |",
        "|---|---|",
        f"| date | {run.started.strftime('%Y-%m-%d %H:%M UTC')} |",
        f"| machine | {os.cpu_count()} CPU cores ({cpu_model()}), {memory_gib()} RAM, {platform.system()} "
        f"{platform.release()} |",
        f"| load average (1/5/15 min) at start | {run.load_start} |",
        f"| load average (1/5/15 min) at end | {run.load_end} |",
        f"| run time | {run.seconds:.0f} s |",
        f"| software | {', '.join(f'{k} {v}' for k, v in run.versions.items())} |",
        f"| server | `glassbox serve --processes {args.server_processes}` (uvicorn) on 127.0.0.1, "
        "Postgres and Redis on 127.0.0.1, own database and Redis db |",
        "",
    ]
    if run.fetch:
        lines += render_fetch(run.fetch)
    if run.queue:
        lines += render_queue(run.queue)
    if run.workers:
        lines += render_workers(run.workers, args)
    lines += [
        "## Notes",
        "",
        "- The load generator (httpx or wrk), the server, Postgres and Redis share the same CPUs, so "
        "requests/s is a floor for this machine; on a machine shared with other work (see the load "
        "average) every figure is inflated.",
        "- httpx rows read raw bytes and do not decompress (a browser would); wrk counts headers in its "
        "bytes. The server sends the stored gzip as is when the client accepts gzip, and decompresses "
        "per request otherwise.",
        "- Part 3 gives each worker half the cores (OMP_NUM_THREADS; --worker-threads) in both the two- "
        "and the one-worker rounds, so it measures how the queue runs traces side by side, not how one "
        "worker scales with cores. With torch's default (--worker-threads 0) each worker uses every core "
        "and two workers oversubscribe the CPU. On a machine busy with other work, two processes also "
        "get two shares of the scheduler, so two workers can beat one by more than the cores explain.",
        "",
    ]
    return "\n".join(lines)


def render_fetch(part: FetchPart) -> list[str]:
    ratio = part.json_bytes / part.gzip_bytes if part.gzip_bytes > 0 else float("nan")
    lines = [
        "## 1. Graph fetch: GET /api/graphs/{slug}/data, anonymous, public graph",
        "",
        f"Graph: {part.graph_source}; {part.nodes:,} nodes, {part.links:,} links; JSON "
        f"{human_bytes(part.json_bytes)}, gzip {human_bytes(part.gzip_bytes)} ({fmt(ratio)}x smaller). "
        f"Load average {part.load[0]} -> {part.load[1]}.",
        "",
        "| tool | Accept-Encoding | clients | requests | errors | p50 ms | p99 ms | requests/s | "
        "bytes/response | MB/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in part.results:
        lines.append(
            f"| {r.tool} | {r.encoding} | {r.clients} | {r.requests:,} | {r.errors} | {fmt(r.p50_ms)} | "
            f"{fmt(r.p99_ms)} | {fmt(r.rps)} | {human_bytes(r.bytes_per_response)} | {fmt(r.mb_per_s, 2)} |"
        )
    return [*lines, ""]


def render_queue(part: QueuePart) -> list[str]:
    lines = [
        "## 2. Queue overhead per job (instant fake tracer, one real RQ worker process)",
        "",
        f"{part.n} trivial jobs submitted one at a time (the next after the last is done), tiny model "
        "registered for the prompt check; times in ms. Load average "
        f"{part.load[0]} -> {part.load[1]}.",
        "",
        "| measure | p50 | p90 | max | mean |",
        "|---|---|---|---|---|",
    ]
    for key, label in SEQ_MEASURES.items():
        q = part.seq[key]
        lines.append(f"| {label} | {fmt(q['p50'])} | {fmt(q['p90'])} | {fmt(q['max'])} | {fmt(q['mean'])} |")
    rate = part.burst_n / part.burst_wall_s if part.burst_wall_s else float("nan")
    per_job = (part.burst_wall_s - part.burst_trace_s) / part.burst_n * 1000 if part.burst_n else float("nan")
    lines += [
        "",
        f"Burst: {part.burst_n} jobs submitted back to back, one worker: first created -> last finished "
        f"{part.burst_wall_s:.2f} s, {fmt(rate)} jobs/s, {fmt(per_job)} ms per job besides the trace.",
        "",
    ]
    return lines


def render_workers(part: WorkersPart, args: argparse.Namespace) -> list[str]:
    params = json.dumps(part.params) if part.params else "defaults"
    threads = f"OMP_NUM_THREADS={args.worker_threads} per worker" if args.worker_threads else "torch default"
    lines = [
        "## 3. Real traces on real `glassbox worker` processes",
        "",
        f"Model `{part.model}`, params {params}, {threads}. Each round submits two different prompts "
        "back to back (a fresh user, so nothing is deduplicated); start/end in s from the round's first "
        "submit, trace = the job's duration_s (claim to stored graph), wall = first submit to last "
        f"finish, overlap = time both jobs ran at once. Load average {part.load[0]} -> {part.load[1]}.",
        "",
        "| round | workers | job | worker | start | end | trace s | wall s | overlap s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rnd in part.rounds:
        t0 = min(j.created for j in rnd.jobs)
        for i, job in enumerate(rnd.jobs):
            summary = f"{rnd.wall_s:.2f} | {rnd.overlap_s:.2f}" if i == 0 else " | "
            lines.append(
                f"| {rnd.name} | {rnd.workers} | {i + 1} | {job.worker} | {(job.started or 0) - t0:.2f} | "
                f"{(job.finished or 0) - t0:.2f} | {fmt(job.duration_s or float('nan'), 2)} | {summary} |"
            )
    two = [r for r in part.rounds if r.name == "two workers"]
    one = [r for r in part.rounds if r.name == "one worker"]
    if one and two:
        two_wall = statistics.median(r.wall_s for r in two)
        one_wall = statistics.median(r.wall_s for r in one)
        both = sum(1 for r in two if len({j.worker for j in r.jobs}) == 2)
        lines += [
            "",
            f"Median wall time for two traces: {two_wall:.2f} s with two workers vs {one_wall:.2f} s with "
            "one "
            f"({one_wall / two_wall:.2f}x); in {both} of {len(two)} two-worker rounds the jobs ran on "
            "different workers, with running intervals overlapping "
            f"{', '.join(f'{r.overlap_s:.2f}' for r in two)} s (one worker: "
            f"{', '.join(f'{r.overlap_s:.2f}' for r in one)} s). The warm-up round includes each worker "
            "loading the model on its first job.",
        ]
    return [*lines, ""]


# ---- main -------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--graph", help="graph JSON to serve in part 1 (default: a cached demo-model graph)")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients in part 1")
    p.add_argument("--fetch-seconds", type=float, default=8.0, help="length of each 32-client run")
    p.add_argument(
        "--tool", choices=("auto", "wrk", "httpx"), default="auto", help="load generator (auto: wrk if there)"
    )
    p.add_argument("--jobs", type=int, default=40, help="jobs in each half of part 2")
    p.add_argument(
        "--trace-model",
        choices=("auto", "demo", "tiny"),
        default="auto",
        help="model of part 3 (auto: the demo model Gemma 3 270M if pulled, else the tiny random model)",
    )
    p.add_argument("--rounds", type=int, default=3, help="part 3 rounds with two workers and with one")
    p.add_argument(
        "--worker-threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="OMP threads of each part 3 worker (default: half the cores; 0: torch's default, all cores)",
    )
    p.add_argument("--trace-feature-nodes", type=int, default=32, help="max_feature_nodes of demo traces")
    p.add_argument("--server-processes", type=int, default=1, help="uvicorn processes")
    p.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 1,3")
    p.add_argument("--out", default=str(REPO / "bench" / "SERVER_BENCH.md"), help="report file ('' for none)")
    p.add_argument("--max-seconds", type=int, default=900, help="stop (and clean up) after this long")
    p.add_argument("--fake-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 256 or not 1 <= args.jobs <= 500 or args.fetch_seconds > 120:
        p.error("--clients must be 1-256, --jobs 1-500, --fetch-seconds at most 120")
    if not 1 <= args.rounds <= 20:
        p.error("--rounds must be 1-20")
    return args


class Stopped(Exception):
    """SIGTERM or the --max-seconds alarm: unwind so every resource is cleaned up."""


def _stop(signum: int, frame: Any) -> None:
    raise Stopped(f"stopped by signal {signal.Signals(signum).name}")


def run_bounded(run_bench: Any, args: argparse.Namespace) -> Any:
    """`run_bench(args, stack)` with logs on, stopped by SIGTERM or after `args.max_seconds`:
    a bench always ends by itself, and its servers and workers are shut down on the way out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGALRM, _stop)
    signal.alarm(args.max_seconds)
    try:
        with ExitStack() as stack:
            return run_bench(args, stack)
    finally:
        signal.alarm(0)


def run_bench(args: argparse.Namespace, stack: ExitStack) -> Run:
    run = Run(" ".join(["python bench/server_bench.py", *sys.argv[1:]]), datetime.now(UTC), load_average())
    parts = {p.strip() for p in args.parts.split(",")}
    t0 = time.monotonic()
    args.tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="server-bench-"))
    tiny_dirs = make_tiny_dirs(Path(args.tmp))
    graph, graph_source = ensure_graph(args, tiny_dirs) if "1" in parts else (Path(), "")
    database_url = stack.enter_context(bench_database(PG_ADMIN_URL))
    redis_url = stack.enter_context(bench_redis(REDIS_BASE_URL))
    run.versions = versions(database_url, redis_url)
    env = child_env(database_url=database_url, redis_url=redis_url, tag=secrets.token_hex(4))
    procs = Processes(Path(args.tmp))
    stack.callback(procs.stop_all)
    base = start_server(procs, env, free_port(), args.server_processes)
    reader = JobReader(database_url)
    stack.callback(reader.close)
    admin = user_client(base, "admin")
    stack.callback(admin.close)
    register_model(admin, name="tiny", source=str(tiny_dirs[0]), tc_source=str(tiny_dirs[1]), n_layers=2)
    if "1" in parts:
        run.fetch = part_fetch(admin, base, graph, graph_source, args)
    if "2" in parts:
        run.queue = part_queue(base, procs, env, reader, args)
    if "3" in parts:
        run.workers = part_workers(base, admin, procs, env, reader, args)
    run.load_end = load_average()
    run.seconds = time.monotonic() - t0
    return run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.fake_worker:
        fake_worker_main()
        return
    run = run_bounded(run_bench, args)
    report = render(run, args)
    print(report)
    if args.out:
        Path(args.out).write_text(report)
        log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
