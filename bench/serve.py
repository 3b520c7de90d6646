"""Serve one benchmark app: `python -m bench.serve KIND --port P` (settings from the env).

uvicorn runs exactly as `promptserve serve/backend` run it (app.cli: log level info,
uvicorn's access log off, heap frozen after start-up), so every variant pays the same server
costs; promptserve's own access line per request is part of what it is measured with.
"""

from __future__ import annotations

import argparse

from app.cli import _run
from app.config import Settings
from bench.apps import APPS


def main() -> None:
    """Parse KIND and --port, build the app, serve it until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(host="127.0.0.1", port=args.port)
    _run(APPS[args.kind](settings), settings)


if __name__ == "__main__":
    main()
