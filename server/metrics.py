"""Prometheus metrics, read from the database at scrape time.

Jobs run in other processes and on other machines, so counting in this process would miss
them; the jobs table knows them all. Each app has its own registry (no global state).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Select, func, select

from persistence.db import SessionFactory
from persistence.tables import Job, JobStatus

log = logging.getLogger(__name__)

TRACE_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class JobsCollector(Collector):
    def __init__(self, sessions: SessionFactory):
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            row = session.execute(_duration_query()).one()
        jobs = GaugeMetricFamily("glassbox_jobs", "Trace jobs by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status, 0))
        yield jobs
        yield _histogram(row)


def _duration_query() -> Select[Any]:
    """One row: count, sum, then the cumulative count of each bucket, computed in SQL."""
    done = (Job.status == JobStatus.DONE) & Job.duration_s.is_not(None)
    columns = [func.count().filter(done), func.coalesce(func.sum(Job.duration_s).filter(done), 0.0)]
    columns += [func.count().filter(done & (Job.duration_s <= b)) for b in TRACE_SECONDS_BUCKETS]
    return select(*columns)


def _histogram(row: Any) -> HistogramMetricFamily:
    count, total, *cumulative = row
    buckets = [(floatToGoString(b), int(n)) for b, n in zip(TRACE_SECONDS_BUCKETS, cumulative, strict=True)]
    buckets.append(("+Inf", int(count)))
    return HistogramMetricFamily(
        "glassbox_trace_seconds", "Duration of finished traces", buckets=buckets, sum_value=float(total)
    )


def make_registry(sessions: SessionFactory) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(sessions))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
