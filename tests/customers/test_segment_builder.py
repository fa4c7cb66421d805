"""The segment builder's calls: the live count is what the members list gives, values are checked per field
(bad ones named, never a 500), a segment is renamed and its conditions changed, and the marketer builds them."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def test_the_count_matches_the_members_and_bad_values_are_named(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    for name, tags in (("茶企甲", ["VIP"]), ("茶企乙", ["VIP"]), ("餐饮丙", [])):
        assert client.post("/api/v1/customers", json={"name": name, "tags": tags}, headers=h).status_code == 201
    vip = [{"field": "tags", "op": "contains", "value": "VIP"}]
    assert client.post("/api/v1/segments/count", headers=h, json={"conditions": vip}).get_json() == {"count": 2}
    assert client.post("/api/v1/segments/count", headers=h, json={"conditions": []}).get_json() == {"count": 3}
    # another salesperson's scope holds none of them
    assert client.post("/api/v1/segments/count", headers=auth_headers(team["rep3"]), json={"conditions": vip}).get_json() == {"count": 0}
    for cond, words in [({"field": "created_at", "op": "within_days", "value": "三十"}, "天数应为整数"),
                        ({"field": "value_score", "op": "gte", "value": 150}, "0–100"),
                        ({"field": "tags", "op": "contains", "value": " "}, "还没有填写值"),
                        ({"field": "owner_id", "op": "eq", "value": "张三"}, "编号应为整数")]:
        r = client.post("/api/v1/segments/count", headers=h, json={"conditions": [cond]})
        assert r.status_code == 422 and words in r.get_json()["error"]["message"], (cond, r.get_json())
    seg = client.post("/api/v1/segments", headers=h, json={"name": "VIP", "conditions": vip}).get_json()
    members = client.get(f"/api/v1/segments/{seg['id']}/members", headers=h).get_json()["total"]
    assert members == 2
    changed = client.put(f"/api/v1/segments/{seg['id']}", headers=h, json={
        "name": "餐饮", "conditions": [{"field": "name", "op": "contains", "value": "餐饮"}]})
    assert changed.status_code == 200 and changed.get_json()["name"] == "餐饮"
    assert client.get(f"/api/v1/segments/{seg['id']}/members", headers=h).get_json()["total"] == 1
    # another salesperson cannot rewrite it (campaigns push to segments): only its creator or a marketer
    r = client.put(f"/api/v1/segments/{seg['id']}", headers=auth_headers(team["rep2"]), json={"conditions": []})
    assert r.status_code == 403
    # a value of the wrong shape is refused, not a database error
    r = client.post("/api/v1/segments/count", headers=h, json={"conditions": [{"field": "industry", "op": "eq", "value": ["茶", "酒"]}]})
    assert r.status_code == 422 and "应为文字" in r.get_json()["error"]["message"]


def test_the_built_in_marketer_builds_the_segments_it_pushes_to(team, client, auth_headers):
    from sqlalchemy import select

    from crm_core.org.models import Organization, Position
    from crm_core.org.organization import create_user, upsert_employee

    org = db.session.get(Organization, team["rep1"].org_id)
    pos = db.session.scalars(select(Position).where(Position.org_id == org.id)).first()
    marketer = create_user(org, f"{org.code}.mkt", "password-123456", ["marketer"], upsert_employee(org, "MKT", "市场", pos))
    db.session.commit()
    from tests.conftest import token_for

    h = token_for(client, marketer.username, "password-123456")
    r = client.post("/api/v1/segments", headers=h, json={"name": "企业客户", "conditions": [{"field": "kind", "op": "eq", "value": "company"}]})
    assert r.status_code == 201, r.get_json()
    assert client.post("/api/v1/segments/count", headers=h, json={"target": "contact", "conditions": []}).status_code == 200
