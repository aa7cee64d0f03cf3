"""The layers point one way (docs/architecture.md), and the engine works without the app."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_PACKAGES = ("server", "worker", "persistence", "firststart")
WEB_STACK = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "rq", "redis", "jinja2",
             "pydantic_settings", "psycopg", "argon2", "prometheus_client")


def _imported_top_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and " 0 broken" in done.stdout


def test_no_module_of_the_engine_imports_the_app():
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_top_names(path) & set(APP_PACKAGES + WEB_STACK))
        for path in (REPO / "glassbox").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


# A module set to None in sys.modules is one Python treats as not installed: importing it
# raises ImportError and importlib.util.find_spec answers None, as for a missing package.
BLOCKER = "import sys\nsys.modules.update({name: None for name in BLOCKED})\n"


def _run_without_app(code: str) -> subprocess.CompletedProcess[str]:
    blocked = repr(set(APP_PACKAGES + WEB_STACK))
    script = f"BLOCKED = {blocked}\n{BLOCKER}\n{textwrap.dedent(code)}"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_engine_cli_works_with_only_the_engine_installed():
    done = _run_without_app(
        """
        import sys
        from glassbox.cli import main
        sys.argv = ["glassbox", "--help"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ("trace", "models", "corpus", "transcoders", "features"):
        assert command in done.stdout
    for app_command in ("serve", "worker", "setup"):
        assert f" {app_command} " not in done.stdout


def test_the_full_cli_offers_the_app_commands():
    done = subprocess.run([sys.executable, "-m", "glassbox", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ("trace", "models", "serve", "worker", "setup"):
        assert f" {command} " in done.stdout


def test_the_engine_library_imports_with_only_the_engine_installed():
    done = _run_without_app(
        """
        import glassbox
        from glassbox.attribution import attribute
        from glassbox.graph.json_import import graph_from_json
        from glassbox.training.api import train_transcoders
        print(glassbox.trace.__name__, attribute.__name__, graph_from_json.__name__)
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["trace", "attribute", "graph_from_json"]
