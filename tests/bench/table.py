"""The one table `make bench` prints."""

from dataclasses import dataclass


@dataclass
class Row:
    name: str  # what was measured, with its size (e.g. "claims/s over MCP, 8 agents")
    ours: str  # our figure with its unit
    limit: str  # the limit measured in the same run, with what it is
    ratio: str  # ours / limit, e.g. "0.62x"
    target: str = ""  # the target and whether it is met, e.g. ">= 0.40x: met"


def ratio(ours: float, limit: float) -> str:
    return f"{ours / limit:.2f}x" if limit else "n/a"


def render(rows: list[Row]) -> str:
    header = Row("measurement", "ours", "limit (same run)", "ratio", "target")
    cells = [header, *rows]
    widths = [
        max(len(getattr(r, f)) for r in cells) for f in ("name", "ours", "limit", "ratio", "target")
    ]
    lines = []
    for i, r in enumerate(cells):
        values = [r.name, r.ours, r.limit, r.ratio, r.target]
        lines.append(
            "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"
        )
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
