"""Done-when of the marketing issue, through real HTTP: A → B → C, a lead with the chain, the
ranking by outcome, and figures that refreshes and bots do not change."""
from __future__ import annotations

import json
import re

import pytest
import requests

from crm_core.db import db
from tests.conftest import LiveServer, _create_schema, _make_app

BROWSER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(params=["embedded", "redis"])
def live(request, tmp_path):
    """Embedded SQLite (views written on the request), and PostgreSQL + Redis (views queued
    and written by the batch writer, drained here where a worker would)."""
    from crm_core.demo import load_demo

    if request.param == "redis":
        app = _make_app(request.getfixturevalue("pg_url"), REDIS_URL=request.getfixturevalue("redis_url"))
    else:
        app = _make_app(f"sqlite:///{tmp_path}/mkt.db")
    with app.app_context():
        _create_schema()
        load_demo()
        db.session.commit()
        db.session.remove()
    with LiveServer(app) as server:
        app.config["PUBLIC_BASE_URL"] = server.url

        def settle():
            conn = app.extensions.get("wxcrm_redis")
            if conn is not None:
                from materials import visitqueue

                with app.app_context():
                    visitqueue.drain(conn, wait=3)
        server.settle = settle
        yield server


def staff(base, username):
    r = requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": "demo123456"}, timeout=10)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


class Viewer:
    """A WeChat user's browser: a session identified by openid; runs what the page's script would."""

    def __init__(self, base, openid=None, ua=BROWSER_UA):
        self.base, self.s = base, requests.Session()
        self.s.headers["User-Agent"] = ua
        if openid:
            self.s.get(f"{base}/h5/dev-login?openid={openid}", timeout=10)

    def open(self, url, run_script=True):
        r = self.s.get(url, timeout=10)
        assert r.status_code == 200, r.text[:300]
        self.code = re.search(r"/m/([A-Za-z0-9]+)", url).group(1)
        self.q = json.loads(re.search(r"var q = (\"[^\"]*\")", r.text).group(1))  # what the page's script appends
        self.share_url = json.loads(re.search(r"shareUrl = (\"[^\"]+\")", r.text).group(1))
        if run_script:
            v = json.loads(re.search(r"v: (\"[^\"]+\")", r.text).group(1))
            assert self.post("seen", {"v": v}).status_code == 200
        return r

    def post(self, what, body):
        return self.s.post(f"{self.base}/m/{self.code}/{what}{self.q}", json=body, headers={"Origin": self.base}, timeout=10)

    def share(self):
        r = self.post("shares", {"channel": "timeline"})
        assert r.status_code == 201
        return r.json()["share_token"]


def test_a_shares_b_shares_c_asks_the_tree_the_lead_and_the_ranking(live):
    base = live.url
    marketer = staff(base, "marketing.wang")
    m = requests.post(f"{base}/api/v1/materials", headers=marketer, timeout=10, json={
        "title": "蓝云净水器 WP100 冬季促销", "summary": "以旧换新，立减 800 元",
        "body_html": "<p>活动详情<script>alert(1)</script><img src=x onerror=alert(1)></p>", "publish": True}).json()
    assert "<script" not in m["body_html"] and "onerror" not in m["body_html"]
    c = requests.post(f"{base}/api/v1/campaigns", headers=marketer, timeout=10, json={
        "name": "冬季促销", "material_ids": [m["id"]], "budget": 5000, "actual_cost": 1200}).json()
    link = f"{base}/m/{m['code']}?c={c['id']}"

    a, b, cc = Viewer(base, "oShareA0001"), Viewer(base, "oShareB0001"), Viewer(base, "oShareC0001")
    page = a.open(link)
    assert 'property="og:title" content="蓝云净水器 WP100 冬季促销"' in page.text
    token_a = a.share()
    assert f"s={token_a}" in a.share_url
    b.open(a.share_url)
    b.share()
    cc.open(b.share_url)
    r = cc.post("intents", {"name": "周先生", "phone": "13612345678", "product": "WP100", "note": "想了解以旧换新"})
    assert r.status_code == 201, r.json()
    lead_id = r.json()["lead_id"]

    live.settle()
    tree = requests.get(f"{base}/api/v1/campaigns/{c['id']}/share-tree", headers=marketer, timeout=10).json()
    root = tree["roots"][0]
    assert len(tree["roots"]) == 1 and root["viewer"] == {"openid": "oShareA0001"} and root["share_token"] == token_a
    assert root["children"][0]["viewer"] == {"openid": "oShareB0001"}
    assert root["children"][0]["children"][0]["viewer"] == {"openid": "oShareC0001"}
    assert (tree["max_depth"], tree["viewers"], root["reach"]) == (2, 3, 2)

    admin = staff(base, "admin")
    lead = requests.get(f"{base}/api/v1/leads/{lead_id}", headers=admin, timeout=10).json()
    assert lead["attribution"]["campaign_id"] == c["id"]
    assert lead["attribution"]["chain"] == [{"openid": "oShareA0001"}, {"openid": "oShareB0001"}]
    assert lead["attribution"]["first_touch"] == {"openid": "oShareA0001"}

    ranking = requests.get(f"{base}/api/v1/campaigns/{c['id']}/top-sharers", headers=marketer, timeout=10).json()["items"]
    assert [(x["openid"], x["reach"], x["leads"]) for x in ranking] == [("oShareA0001", 2, 1), ("oShareB0001", 1, 1)]
    stats = requests.get(f"{base}/api/v1/campaigns/{c['id']}/stats", headers=marketer, timeout=10).json()
    assert (stats["reads"], stats["unique_readers"], stats["forwards"], stats["leads"]) == (3, 3, 2, 1)
    assert stats["cost_per_lead"] == 1200.0

    # refreshes within the hour, a bot, and a page fetched without running its script change nothing
    for _ in range(3):
        a.open(link)
        b.open(a.share_url)
    Viewer(base, ua="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").open(b.share_url)
    Viewer(base).open(a.share_url, run_script=False)
    live.settle()
    again = requests.get(f"{base}/api/v1/campaigns/{c['id']}/stats", headers=marketer, timeout=10).json()
    assert (again["reads"], again["unique_readers"], again["forwards"]) == (3, 3, 2)
    assert again["left_out_visits"] == 2
    assert requests.get(f"{base}/api/v1/campaigns/{c['id']}/top-sharers", headers=marketer, timeout=10).json()["items"] == ranking
    tree2 = requests.get(f"{base}/api/v1/campaigns/{c['id']}/share-tree", headers=marketer, timeout=10).json()
    assert tree2["viewers"] == 3 and tree2["roots"][0]["reach"] == 2

    # the same person asking again updates the lead instead of creating a second one
    r = cc.post("intents", {"name": "周先生", "phone": "136 1234 5678", "note": "周末方便"})
    assert r.status_code == 201 and r.json()["lead_id"] == lead_id and r.json()["new"] is False
