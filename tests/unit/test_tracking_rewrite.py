"""The html and text rewriting of open and click tracking (core/tracking/rewrite.py)."""

from __future__ import annotations

from html.parser import HTMLParser

from core.tracking.rewrite import rewrite_html, rewrite_text

BASE = "https://t.example.com"


def _link(url: str) -> str:
    return f"{BASE}/t/c/TOKEN{len(url)}"


def _tracked(html: str, pixel: str | None = None) -> tuple[str, int]:
    return rewrite_html(html, link=_link, pixel_url=pixel, base_url=BASE)


def test_uppercase_single_quoted_and_bare_hrefs_are_rewritten_keeping_their_quotes() -> None:
    out, count = _tracked("<A HREF='https://a.example/x'>a</A><a class=x href=http://b.example/y>b</a>")
    assert count == 2
    assert out == (f"<A HREF='{_link('https://a.example/x')}'>a</A>"
                   f"<a class=x href=\"{_link('http://b.example/y')}\">b</a>")


def test_the_sealed_url_is_the_decoded_attribute_value() -> None:
    seen: list[str] = []
    rewrite_html('<a href="https://a.example/?x=1&amp;y=2&#38;z=3">a</a>', link=lambda u: seen.append(u) or "T",
                 pixel_url=None)
    assert seen == ["https://a.example/?x=1&y=2&z=3"]


def test_links_in_comments_scripts_styles_and_other_attributes_stay() -> None:
    html = ('<!-- <a href="https://c.example">c</a> --><script>var s = \'<a href="https://s.example">\';</script>'
            '<style>a[href="https://st.example"] {}</style><img alt=\'<a href="https://alt.example">\' src="x.png">'
            '<a title="href=https://no.example" href="https://yes.example">y</a>')
    out, count = _tracked(html)
    assert count == 1
    assert out == html.replace('href="https://yes.example"', f'href="{_link("https://yes.example")}"')


def test_non_http_links_unsubscribe_links_and_opted_out_links_stay() -> None:
    html = ('<a href="mailto:a@example.com">m</a><a href="tel:+123">t</a><a href="#top">#</a><a href="/rel">r</a>'
            '<a href="https://x.example/Unsubscribe?u=1">u</a><a data-pw-track="off" href="https://o.example">o</a>'
            f'<a href="{BASE}/t/c/already">already</a><a href="https://lu.example/opt-out">lu</a><a name="anchor">n</a>')
    out, count = rewrite_html(html, link=_link, pixel_url=None, skip={"https://lu.example/opt-out"}, base_url=BASE)
    assert (out, count) == (html, 0)


def test_greater_than_inside_a_quoted_attribute_does_not_end_the_tag() -> None:
    out, count = _tracked('<a title="a > b" href="https://gt.example">x</a>')
    assert count == 1 and out == f'<a title="a > b" href="{_link("https://gt.example")}">x</a>'


def test_pixel_goes_before_the_closing_body_or_at_the_end() -> None:
    out, _ = _tracked("<html><BODY><p>hi</p></BODY></html>", pixel="PIXEL")
    assert out.startswith("<html><BODY><p>hi</p><img src=\"PIXEL\" width=\"1\" height=\"1\"") and out.endswith("</BODY></html>")
    fragment, _ = _tracked("<p>hi</p>", pixel="PIXEL")
    assert fragment.startswith("<p>hi</p><img src=\"PIXEL\"")
    no_body, _ = _tracked("<html><p>x</p></html>", pixel="PIXEL")
    assert no_body.endswith('"></html>')


def test_everything_else_is_kept_byte_for_byte_and_still_parses_alike() -> None:
    html = ("<!DOCTYPE html>\n<html><head><meta charset=utf-8></head>\n<body>\n  <p>caf\u00e9 &copy; &amp; <b>bold</b>"
            "</p>\r\n<a\nhref=\"https://multi.example/line\"\n>ml</a>\n<![CDATA[x]]><br/></body></html>")
    out, count = _tracked(html)
    assert count == 1
    assert out == html.replace('"https://multi.example/line"', f'"{_link("https://multi.example/line")}"')

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)

    before, after = Tags(), Tags()
    before.feed(html)
    after.feed(out)
    assert before.tags == after.tags


def test_clicks_off_adds_the_pixel_only() -> None:
    html = '<a href="https://a.example">a</a>'
    out, count = rewrite_html(html, link=None, pixel_url="P")
    assert count == 0 and out.startswith(html) and 'src="P"' in out


def test_text_links_keep_trailing_punctuation_outside() -> None:
    out, count = rewrite_text("See https://a.example/x. Or (https://b.example/y), mailto:x@y, https://q.example/unsubscribe",
                              _link, base_url=BASE)
    assert count == 2
    assert out == (f"See {_link('https://a.example/x')}. Or ({_link('https://b.example/y')}), mailto:x@y,"
                   " https://q.example/unsubscribe")
