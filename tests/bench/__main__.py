"""`make bench`: runs every tests/bench/bench_*.py and prints one table.

Each module exposes `run() -> list[Row]`. A row is our figure beside the limit measured in the
same run on the same machine (for example raw SQL on the same database), and their ratio.
Speed targets live here, never as timed assertions in the test suite.
"""

import importlib
import os
import pkgutil
import sys
import traceback

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiworker.settings")

import django

django.setup()

from tests.bench.table import Row, render  # noqa: E402


def main(argv: list[str]) -> int:
    wanted = set(argv[1:])
    rows: list[Row] = []
    failed = False
    package = importlib.import_module("tests.bench")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("bench_"):
            continue
        if wanted and info.name.removeprefix("bench_") not in wanted:
            continue
        print(f"running {info.name} …", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(f"tests.bench.{info.name}").run())
        except Exception:
            failed = True
            traceback.print_exc()
            rows.append(Row(name=info.name, ours="error", limit="", ratio="", target="see log"))
    print(render(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
