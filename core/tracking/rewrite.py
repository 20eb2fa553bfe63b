"""Rewriting an email's bodies for tracking: links through `/t/c/<token>` and an open
pixel at the end of the html body. Pure functions; the worker calls them on the content
before rendering, so the DKIM signature covers the rewritten bytes.

The html is read with the stdlib's `html.parser`, which knows where tags really are:
links inside comments, `<script>`/`<style>` text or attribute values are not tags and
stay as they are. Only the value of the `href` attribute of `<a>`/`<area>` start tags is
replaced, in place, with the quoting it had; every other byte of the html is kept. The
URL that is sealed in the token is the attribute's decoded value (`&amp;` read as `&`),
which is what a browser would have followed.

Left alone: anything but http(s) URLs (mailto:, tel:, #anchors, relative paths),
unsubscribe links (the URL names `unsubscribe`, or is one of the email's
List-Unsubscribe targets), links already through the tracking base URL, and links whose
tag carries `data-pw-track="off"`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from html.parser import HTMLParser

# One attribute of a start tag's raw text, as html.parser's tolerant reading splits them.
_ATTRIBUTE = re.compile(r"""((?<=['"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*('[^']*'|"[^"]*"|(?!['"])[^>\s]*))?(?:\s|/(?!>))*""")
_TAG_NAME = re.compile(r"<[a-zA-Z][^\t\n\r\f />\x00]*")
_TEXT_URL = re.compile(r"""https?://[^\s<>"'\x00-\x1f\x7f]+""", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""
PIXEL = '<img src="{}" width="1" height="1" alt="" border="0" style="height:1px!important;width:1px!important;border-width:0!important;margin:0!important;padding:0!important">'


def trackable(url: str, skip: Collection[str], base_url: str) -> bool:
    """Whether a link's (decoded) URL is rewritten."""
    stripped = url.strip()
    lower = stripped.lower()
    if not (lower.startswith("http://") or lower.startswith("https://")):
        return False
    if "unsubscribe" in lower or stripped in skip:
        return False
    return not (base_url and stripped.startswith(base_url.rstrip("/") + "/t/"))


class _Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self._lines = [0]
        self._lines += [found.end() for found in re.finditer("\n", html)]  # as html.parser counts lines
        self.anchors: list[tuple[int, str, str]] = []  # (offset of the tag, its raw text, the href value)
        self.body_end: int | None = None
        self.html_end: int | None = None

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "area"):
            return
        values = dict(attrs)
        href = next((v for k, v in attrs if k == "href"), None)
        if href is None or (values.get("data-pw-track") or "").lower() == "off":
            return
        raw = self.get_starttag_text() or ""
        self.anchors.append((self._offset(), raw, href))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_end = self._offset()
        elif tag == "html":
            self.html_end = self._offset()


def _replace_href(raw: str, new_value: str) -> str | None:
    """The start tag's raw text with its (first) href attribute's value replaced."""
    name = _TAG_NAME.match(raw)
    if name is None:
        return None
    for found in _ATTRIBUTE.finditer(raw, name.end()):
        if found.group(1).lower() == "href" and found.group(3) is not None:
            value = found.group(3)
            quote = value[0] if value[:1] in ("'", '"') else '"'
            return raw[:found.start(3)] + f"{quote}{new_value}{quote}" + raw[found.end(3):]
    return None


def rewrite_html(html: str, *, link: Callable[[str], str] | None, pixel_url: str | None,
                 skip: Collection[str] = (), base_url: str = "") -> tuple[str, int]:
    """(the html with tracked links and the pixel, how many links were rewritten).
    `link(url)` gives a link's tracking URL (None: links stay); `pixel_url` the pixel's."""
    parser = _Links(html)
    parser.feed(html)
    parser.close()
    edits: list[tuple[int, int, str]] = []
    if link is not None:
        for offset, raw, href in parser.anchors:
            if html[offset:offset + len(raw)] != raw or not trackable(href, skip, base_url):
                continue
            replaced = _replace_href(raw, link(href.strip()))
            if replaced is not None:
                edits.append((offset, offset + len(raw), replaced))
    count = len(edits)
    if pixel_url is not None:
        at = parser.body_end if parser.body_end is not None else parser.html_end
        at = len(html) if at is None else at
        edits.append((at, at, PIXEL.format(pixel_url)))
    out: list[str] = []
    last = 0
    for start, end, text in sorted(edits, key=lambda e: e[0]):
        out.append(html[last:start])
        out.append(text)
        last = end
    out.append(html[last:])
    return "".join(out), count


def rewrite_text(text: str, link: Callable[[str], str], skip: Collection[str] = (), base_url: str = "") -> tuple[str, int]:
    """The text part with its bare http(s) URLs through tracking links (trailing
    punctuation stays outside the URL)."""
    count = 0

    def one(found: re.Match[str]) -> str:
        nonlocal count
        url = found.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        if not trackable(url, skip, base_url):
            return found.group(0)
        count += 1
        return link(url) + tail

    return _TEXT_URL.sub(one, text), count
