"""Submit to graph: how long a user waits from submitting a trace until its graph can be fetched.

Starts the real app as `glassbox serve` does on its embedded default (a SQLite file in a fresh
Glassbox home, the in-process worker thread, no Redis, the first-start setup off), registers a
user (the first one, an administrator), the model and a transcoder set, then for each prompt:

    POST /api/traces  ->  GET /api/jobs/{id} every --poll-s until done  ->  GET /api/graphs/{slug}/data

one prompt at a time, with the server's default trace options unless --params says otherwise.
The wall time of that sequence is what a user waits. The first trace (not one of the prompts)
loads the model and transcoders: its time is reported on its own line, not in the quantiles.

Where the time goes, per job: queue wait (job created -> claimed) and run time from the job
row; model load, attribution, pruning and scores, graph JSON export and storage from the
worker's log line for the job (`trace job ... done`, JSON logs); the rest ("other") is the
submit request, the gap between the job finishing and the next poll, and the graph fetch.
"server CPU s" is the CPU time the server process used meanwhile (all its threads): the work
itself, which other load on the machine changes far less than wall time (with several torch
threads on a busy machine it also counts their spinning).

    .venv/bin/python bench/submit_bench.py                          # demo model, 10 prompts (~1-2 min)
    .venv/bin/python bench/submit_bench.py --params '{"max_feature_nodes": null}'   # every feature
    .venv/bin/python bench/submit_bench.py --quick                  # tiny random model, 2 prompts

The demo model must be pulled (`glassbox models pull gemma-3-270m`) in GLASSBOX_HOME (it is
read from there; the server runs in a home of its own). Transcoders: --transcoders, else
GLASSBOX_TEST_REFERENCE_TRANSCODERS, else ../shared/transcoders/gemma-3-270m-plt-2k beside the
repository. Torch uses every core unless OMP_NUM_THREADS or --torch-threads
(GLASSBOX_TORCH_THREADS) says otherwise; the report records it and the load average, since other
work on the machine changes the numbers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import server_bench as sb  # noqa: E402  (the sibling bench: processes, ports, clients, quantiles)

log = logging.getLogger("submit_bench")

DEMO_MODEL = "gemma-3-270m"
REFERENCE_ENV = "GLASSBOX_TEST_REFERENCE_TRANSCODERS"
DEFAULT_TRANSCODERS = REPO.parent / "shared" / "transcoders" / "gemma-3-270m-plt-2k"
# Ten prompts of 6-16 tokens (BOS included) of the kinds people trace: facts, opposites,
# another language, code, names (indirect object), arithmetic.
PROMPTS = (
    "The capital of France is",
    "Fact: Michael Jordan plays the sport of",
    "The capital of the state containing Dallas is",
    "The opposite of small is large, and the opposite of hot is",
    "Le contraire de grand est petit, et le contraire de chaud est",
    "def add(a, b):\n    return a",
    "The Eiffel Tower is located in the city of",
    "When John and Mary went to the store together, John gave a drink to",
    "for i in range(10):\n    print(",
    "Two plus three equals five, and four plus four equals",
)
WARMUP_PROMPT = "The first trace of the day loads the model, so it"
QUICK_PROMPTS = ("The capital of Texas is", "a cat sat on the mat and")
MIN_TOKENS, MAX_TOKENS = 6, 16
LOG_MARK = "done in"  # the worker's per-job log line: "trace job <id> done in ..."


@dataclass
class Trace:
    """One prompt from submit to fetched graph, and where its time went."""

    prompt: str
    wall_s: float
    submit_s: float
    queue_s: float
    run_s: float
    timings: dict[str, float]
    n_tokens: int
    max_feature_nodes: int | None  # as the job ran (the server's default unless --params)
    n_features: int
    nodes: int
    links: int
    json_bytes: int
    server_cpu_s: float  # CPU time the server process used meanwhile (every thread)
    replacement: float | None
    completeness: float | None
    load: float

    def part(self, name: str) -> float:
        return float(self.timings.get(name, float("nan")))

    @property
    def other_s(self) -> float:
        """Submit request, the wait for the next poll, the graph fetch, bookkeeping."""
        return self.wall_s - self.queue_s - self.run_s


@dataclass
class Run:
    started: datetime
    machine: str
    threads: str
    load_start: str
    load_end: str = ""
    model: str = ""
    transcoders: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    cold: Trace | None = None
    traces: list[Trace] = field(default_factory=list)


# ---- the server -------------------------------------------------------------------------------


def server_env(home: Path, torch_threads: int | None = None) -> dict[str, str]:
    """The embedded default in a fresh home: no DATABASE_URL or REDIS_URL, no first-start
    setup; plain-http cookies, no rate limits and cheap password hashes for the bench client;
    JSON logs at info level, for the worker's per-job timings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GLASSBOX_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "GLASSBOX_HOME": str(home),
            "GLASSBOX_AUTO_SETUP": "false",
            "GLASSBOX_LOG_FORMAT": "json",
            **sb.bench_client_settings(),
        }
    )
    if torch_threads:
        env["GLASSBOX_TORCH_THREADS"] = str(torch_threads)
    return env


def register(admin: Any, *, name: str, model_source: str, tc_source: str) -> None:
    sb.check(admin.post("/api/models", json={"name": name, "source": model_source}), 201)
    body = {"name": "bench-set", "source": tc_source, "is_default": True}
    sb.check(admin.post(f"/api/models/{name}/transcoder-sets", json=body), 201)


def job_timings(log_path: Path) -> dict[str, dict[str, Any]]:
    """job id -> the worker's timings for it, read from the server's JSON log."""
    found: dict[str, dict[str, Any]] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        if LOG_MARK not in line or '"timings"' not in line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record.get("timings"), dict) and record.get("job_id"):
            found[record["job_id"]] = record["timings"]
    return found


# ---- one trace --------------------------------------------------------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def trace_once(client: Any, model: str, prompt: str, params: dict[str, Any], poll_s: float,
               timeout_s: float) -> tuple[float, float, dict[str, Any], dict[str, Any]]:
    """(wall s, submit s, finished job, graph JSON): POST, poll until done, fetch the graph."""
    t0 = time.perf_counter()
    job = sb.check(client.post("/api/traces", json={"model": model, "prompt": prompt, "params": params}), 202)
    submit_s = time.perf_counter() - t0
    if job["deduplicated"]:
        raise RuntimeError(f"the trace of {prompt!r} was deduplicated; the bench needs fresh jobs")
    deadline = t0 + timeout_s
    while job["status"] != "done":
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"job {job['id']} not done within {timeout_s:.0f} s")
        time.sleep(poll_s)
        job = sb.check(client.get(f"/api/jobs/{job['id']}"), 200)
    response = client.get(f"/api/graphs/{job['graph_slug']}/data")
    graph = sb.check(response, 200)
    wall = time.perf_counter() - t0
    graph["_bytes"] = len(response.content)
    return wall, submit_s, job, graph


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: Any, model: str, prompt: str, args: argparse.Namespace, log_path: Path,
            server_pid: int) -> Trace:
    cpu0 = process_cpu_s(server_pid)
    wall, submit_s, job, graph = trace_once(
        client, model, prompt, args.params, args.poll_s, args.job_timeout_s
    )
    cpu = process_cpu_s(server_pid) - cpu0
    created, started, finished = (_ts(job[k]) for k in ("created_at", "started_at", "finished_at"))
    timings: dict[str, float] = {}
    for _ in range(50):  # the log line is written right after the job row; allow for buffering
        timings = job_timings(log_path).get(job["id"], {})
        if timings:
            break
        time.sleep(0.05)
    meta = graph["metadata"]
    gb = meta.get("glassbox", {})
    return Trace(
        prompt=prompt,
        wall_s=wall,
        submit_s=submit_s,
        queue_s=max(started - created, 0.0),
        run_s=max(finished - started, 0.0),
        timings=timings,
        n_tokens=len(meta.get("prompt_tokens", [])),
        max_feature_nodes=meta.get("generation_settings", {}).get("max_feature_nodes"),
        n_features=int(gb.get("n_features", 0)),
        nodes=len(graph["nodes"]),
        links=len(graph["links"]),
        json_bytes=int(graph["_bytes"]),
        server_cpu_s=cpu,
        replacement=gb.get("replacement_score"),
        completeness=gb.get("completeness_score"),
        load=os.getloadavg()[0],
    )


def check_lengths(client: Any, model: str, prompts: tuple[str, ...], quick: bool) -> None:
    """Every prompt is 6-16 tokens (BOS included), as the new-graph page's preview counts them."""
    if quick:
        return
    for prompt in prompts:
        body = {"prompt": prompt, "top_k": 0}
        n = len(sb.check(client.post(f"/api/models/{model}/tokenize", json=body), 200)["token_ids"])
        if not MIN_TOKENS <= n <= MAX_TOKENS:
            raise RuntimeError(f"{prompt!r} is {n} tokens; the bench's prompts are {MIN_TOKENS}-{MAX_TOKENS}")


# ---- the run ----------------------------------------------------------------------------------


def sources(args: argparse.Namespace, tmp: Path) -> tuple[str, str, str]:
    """(registry name, model folder, transcoder folder) for the run."""
    if args.quick:
        model_dir, tc_dir = sb.make_tiny_dirs(tmp)
        return "tiny", str(model_dir), str(tc_dir)
    from glassbox.models import demo

    model_dir = demo.local_path(DEMO_MODEL)
    if model_dir is None:
        raise SystemExit(f"{DEMO_MODEL} is not pulled: run `glassbox models pull {DEMO_MODEL}` first")
    tc = Path(args.transcoders or os.environ.get(REFERENCE_ENV) or DEFAULT_TRANSCODERS)
    if not tc.is_dir():
        raise SystemExit(f"no transcoder set at {tc} (give --transcoders)")
    return DEMO_MODEL, str(model_dir), str(tc.resolve())


def run_bench(args: argparse.Namespace, stack: ExitStack) -> Run:
    omp = os.environ.get("OMP_NUM_THREADS")
    threads = f"OMP_NUM_THREADS={omp}" if omp else "OMP_NUM_THREADS unset"
    if args.torch_threads:
        threads += f", GLASSBOX_TORCH_THREADS={args.torch_threads}"
    elif not omp:
        threads += " (torch uses every core)"
    run = Run(
        started=datetime.now(UTC),
        machine=args.machine or f"{os.cpu_count()} CPU cores ({sb.cpu_model()}), {sb.memory_gib()} RAM",
        threads=threads,
        load_start=sb.load_average(),
        params=args.params,
    )
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="submit-bench-")))
    name, model_source, tc_source = sources(args, tmp)
    run.model = name
    run.transcoders = Path(tc_source).name
    home = tmp / "home"
    home.mkdir()
    procs = sb.Processes(tmp)
    stack.callback(procs.stop_all)
    # log level info: the worker's per-job timing lines are what the split is read from
    base = sb.start_server(procs, server_env(home, args.torch_threads), sb.free_port(), log_level="info")
    pid = procs.procs["server"].pid
    admin = sb.user_client(base, "bench-admin")
    stack.callback(admin.close)
    register(admin, name=name, model_source=model_source, tc_source=tc_source)
    prompts = QUICK_PROMPTS if args.quick else PROMPTS[: args.prompts]
    log_path = tmp / "server.log"
    log.info("cold trace (loads the model and transcoders)")
    run.cold = measure(admin, name, "The first trace loads the model" if args.quick else WARMUP_PROMPT,
                       args, log_path, pid)
    check_lengths(admin, name, prompts, args.quick)
    for i, prompt in enumerate(prompts):
        run.traces.append(measure(admin, name, prompt, args, log_path, pid))
        t = run.traces[-1]
        log.info("%d/%d %.2f s  %s", i + 1, len(prompts), t.wall_s, prompt.replace("\n", "\\n"))
    run.load_end = sb.load_average()
    if not procs.alive("server"):
        raise RuntimeError(f"the server exited:\n{procs.log_tail('server')}")
    return run


# ---- report -----------------------------------------------------------------------------------

PARTS = (("load_s", "load"), ("attribution_s", "attribution"), ("prune_s", "prune + scores"),
         ("export_s", "export"), ("store_s", "store"))


def _f(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _row(label: str, t: Trace) -> str:
    cells = [label, str(t.n_tokens), f"{t.n_features:,}", _f(t.wall_s), _f(t.submit_s), _f(t.queue_s)]
    cells += [_f(t.part(key)) for key, _ in PARTS]
    cells += [_f(t.other_s), _f(t.server_cpu_s), f"{t.nodes:,} / {t.links:,}", f"{t.json_bytes / 1e6:.2f}",
              _f(t.replacement, 3), _f(t.completeness, 3), _f(t.load)]
    return "| " + " | ".join(cells) + " |"


def render(run: Run, args: argparse.Namespace) -> str:
    command = "python bench/submit_bench.py" + (" " + " ".join(args.argv) if args.argv else "")
    header = ["prompt", "tokens", "feature nodes", "submit -> graph s", "POST s", "queue s"]
    header += [f"{label} s" for _, label in PARTS]
    header += ["other s", "server CPU s", "nodes / links", "JSON MB", "replacement", "completeness",
               "load 1 min"]
    lines = [
        f"`{command}` ({run.started:%Y-%m-%d %H:%M} UTC); machine: {run.machine}; {run.threads}; "
        f"load average {run.load_start} -> {run.load_end}. Model {run.model}, transcoders "
        f"{run.transcoders}; trace options: "
        f"{json.dumps(run.params) if run.params else 'the server defaults'}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for t in run.traces:
        lines.append(_row(f"`{t.prompt.replace(chr(10), '⏎')}`", t))
    walls = [t.wall_s for t in run.traces]
    q = sb.quantiles(walls)
    lines += [
        "",
        f"**Submit -> graph over {len(walls)} prompts: p50 {_f(q['p50'])} s, p90 {_f(q['p90'])} s, "
        f"max {_f(q['max'])} s** (nearest rank); server CPU time per trace: p50 "
        f"{_f(sb.quantiles([t.server_cpu_s for t in run.traces])['p50'])} s. Mean split: "
        + ", ".join(f"{label} {_f(_mean([t.part(k) for t in run.traces]))}" for k, label in PARTS)
        + f", queue {_f(_mean([t.queue_s for t in run.traces]))}, other "
        f"{_f(_mean([t.other_s for t in run.traces]))} s.",
    ]
    if run.cold is not None:
        c = run.cold
        lines += [
            "",
            f"Cold first trace (not in the quantiles; `{c.prompt}`, {c.n_tokens} tokens): "
            f"{_f(c.wall_s)} s, of which the submit request {_f(c.submit_s)} s (it loads the model "
            f"to count the prompt's tokens, unless a preview already did), loading in the worker "
            f"{_f(c.part('load_s'))} s (what the request had not loaded), attribution "
            f"{_f(c.part('attribution_s'))} s.",
        ]
    return "\n".join(lines) + "\n"


def _mean(values: list[float]) -> float:
    good = [v for v in values if v == v]
    return sum(good) / len(good) if good else float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny random model, two prompts (a smoke test)")
    p.add_argument("--transcoders", help="transcoder folder for the demo model")
    p.add_argument("--params", default="{}", help="trace options as JSON (default: the server's)")
    p.add_argument("--prompts", type=int, default=len(PROMPTS), help="how many of the ten prompts")
    p.add_argument("--poll-s", type=float, default=0.1, help="job poll interval, as a page would poll")
    p.add_argument("--torch-threads", type=int, help="GLASSBOX_TORCH_THREADS for the server (default: unset)")
    p.add_argument("--job-timeout-s", type=float, default=600.0)
    p.add_argument("--machine", default="", help="how to describe this machine in the report")
    p.add_argument("--append", help="append the report to this Markdown file")
    p.add_argument("--json", dest="json_out", help="write every measurement to this JSON file")
    p.add_argument("--max-seconds", type=int, default=1800, help="stop (and clean up) after this long")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args.params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        p.error(f"--params is not JSON: {exc}")
    if not isinstance(args.params, dict):
        p.error("--params must be a JSON object")
    if not 1 <= args.prompts <= len(PROMPTS) or args.poll_s <= 0:
        p.error(f"--prompts 1-{len(PROMPTS)}, --poll-s > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = sb.run_bounded(run_bench, args)
    report = render(run, args)
    print(report)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write("\n" + report)
    if args.json_out:
        data = {"run": {k: v for k, v in vars(run).items() if k not in ("cold", "traces")},
                "cold": vars(run.cold) if run.cold else None, "traces": [vars(t) for t in run.traces]}
        Path(args.json_out).write_text(json.dumps(data, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
