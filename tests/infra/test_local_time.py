"""One organisation time zone (issue #14, item 2): stored in UTC, shown local wherever a person reads it."""
from __future__ import annotations

from datetime import datetime, timedelta

from crm_core.clock import local_str, travel, utcnow
from crm_core.db import db
from crm_core.org.models import OrgSetting
from tests.conftest import console_login
from tests.factories import PASSWORD, make_customer, make_team


def test_local_str_shows_the_zone_not_utc():
    assert local_str(datetime(2026, 12, 1, 7, 52)) == "2026-12-01 15:52"  # Asia/Shanghai by default
    assert local_str("2026-12-01T07:52:00Z", "%H:%M") == "15:52"
    assert local_str(datetime(2026, 7, 1, 7, 52), "%H:%M", "Europe/Berlin") == "09:52"  # summer time
    assert local_str(None) == ""


def test_console_pages_show_ticket_times_in_the_organisations_zone(app, client, auth_headers):
    team = make_team()
    customer = make_customer(team["admin"], "时区测试公司")
    db.session.commit()
    h = auth_headers(team["admin"])
    ticket = client.post("/api/v1/tickets", json={"customer_id": customer.id, "kind": "consultation",
                                                  "description": "时区测试"}, headers=h).get_json()
    created = datetime.fromisoformat(ticket["created_at"].rstrip("Z"))
    c, resp = console_login(app, "acme.admin", PASSWORD)
    assert resp.status_code == 302
    html = c.get(f"/console/service/tickets/{ticket['id']}").get_data(as_text=True)
    assert (created + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") in html
    assert "UTC" not in html
    # an organisation in another zone sees its own local time
    db.session.add(OrgSetting(org_id=team["admin"].org_id, key="general", value={"timezone": "Asia/Tokyo"}))
    db.session.commit()
    html = c.get(f"/console/service/tickets/{ticket['id']}").get_data(as_text=True)
    assert (created + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M") in html


def test_activity_reminder_text_is_local(app, client, auth_headers):
    from crm_core.activities.activities import activity_warnings
    from crm_core.outbox import OutboxMessage

    team = make_team()
    db.session.commit()
    start = (utcnow() + timedelta(minutes=20)).replace(second=0, microsecond=0)
    client.post("/api/v1/activities", json={"subject": "拜访", "kind": "visit", "planned_start": start.isoformat() + "Z",
                                            "warn_before_minutes": 30}, headers=auth_headers(team["rep1"]))
    with travel(timedelta(minutes=1)):
        activity_warnings()
    db.session.commit()
    texts = [m.payload.get("text", "") for m in db.session.scalars(db.select(OutboxMessage))]
    assert any((start + timedelta(hours=8)).strftime("%m-%d %H:%M") in t for t in texts), texts
    assert not any("UTC" in t for t in texts)
