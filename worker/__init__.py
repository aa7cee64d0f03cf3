"""Trace workers: the job functions, the queues that deliver them (RQ on Redis, or threads
inside the server) and the maintenance that recovers dead and lost jobs.

Postgres (or the embedded SQLite) is the record of truth for every job; Redis only delivers.
"""
