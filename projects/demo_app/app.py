"""Demo shop: the small web app the demo project's repository starts with (seed_demo).

`python app.py PORT` serves it on 127.0.0.1:PORT: the shop's page lists every feature a task
added under features/ (the demo agent writes one file per task), and /health answers "ok".
Standard library only, so any Python 3 runs it.
"""

import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent


def page() -> str:
    items = []
    for feature in sorted((HERE / "features").glob("task-*.md")):
        lines = [line for line in feature.read_text().splitlines() if line.strip()]
        title = lines[0].lstrip("# ") if lines else feature.stem
        details = " ".join(lines[1:])
        items.append(f"<li><strong>{html.escape(title)}</strong> {html.escape(details)}</li>")
    listed = "".join(items) or "<li>No feature yet: give the demo agent a task.</li>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Demo shop</title></head>"
        f"<body><h1>Demo shop</h1><h2>Features</h2><ul id='features'>{listed}</ul></body></html>"
    )


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body, kind = 200, page(), "text/html; charset=utf-8"
        if self.path == "/health":
            body, kind = "ok\n", "text/plain"
        elif self.path != "/":
            status, body, kind = 404, "not found\n", "text/plain"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
