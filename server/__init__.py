"""The Glassbox web application: FastAPI routes over a service layer, SQLAlchemy storage.

Build it with `server.app.create_app(settings)`; nothing is created at import time.
"""
