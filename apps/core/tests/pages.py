"""Walk the studio's pages as a logged-in user and look at each one's HTML (for the CSP and label tests)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlparse

SKIP = re.compile(r"(/export|\.csv|\.jsonl|/logout|/download|/admin/|\?format=)")


class PageFacts(HTMLParser):
    """Inline scripts, inline event handlers, javascript: URLs and form controls without a label."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self.controls: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self._label_depth = 0
        self._script: dict[str, str] | None = None
        self._script_text = ""

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        for name, value in attributes.items():
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and value.strip().lower().startswith("javascript:"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag == "script":
            self._script, self._script_text = attributes, ""
        if tag == "label":
            self._label_depth += 1
            if attributes.get("for"):
                self.label_for.add(attributes["for"])
        if tag in ("input", "select", "textarea"):
            kind = attributes.get("type", "text") if tag == "input" else tag
            if kind not in ("hidden", "submit", "button", "reset", "image"):
                self.controls.append({**attributes, "_tag": tag, "_in_label": str(self._label_depth > 0)})

    def handle_endtag(self, tag):
        if tag == "label" and self._label_depth:
            self._label_depth -= 1
        if tag == "script" and self._script is not None:
            if "src" not in self._script and self._script.get("type") not in ("application/json", "text/template"):
                self.inline_scripts.append(self._script_text.strip()[:80])
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script_text += data

    def unlabelled(self) -> list[str]:
        found = []
        for control in self.controls:
            if control["_in_label"] == "True" or control.get("aria-label") or control.get("aria-labelledby"):
                continue
            if control.get("id") and control["id"] in self.label_for:
                continue
            found.append(f"<{control['_tag']} name={control.get('name')!r} id={control.get('id')!r}>")
        return found


def facts(html: str) -> PageFacts:
    parser = PageFacts()
    parser.feed(html)
    parser.close()
    return parser


def walk(client, start: str, *, prefix: str, limit: int = 80) -> dict[str, tuple[object, PageFacts]]:
    """Breadth-first over the links under `prefix`, one page per URL shape (numbers collapsed)."""
    seen_shapes: set[str] = set()
    queue, pages = [start], {}
    while queue and len(pages) < limit:
        url = queue.pop(0)
        shape = re.sub(r"\d+", "N", url)
        if shape in seen_shapes:
            continue
        seen_shapes.add(shape)
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            pages[url] = (response, None)
            continue
        page = facts(response.content.decode())
        pages[url] = (response, page)
        for href in page.links:
            href = urldefrag(href)[0]
            parsed = urlparse(href)
            if parsed.scheme or parsed.netloc or not parsed.path.startswith(prefix) or SKIP.search(href):
                continue
            queue.append(href)
    return pages
