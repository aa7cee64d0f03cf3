"""Service layer: what the API does, independent of HTTP. Functions take a Session and plain
values, raise server.errors classes, and commit their own transactions."""
