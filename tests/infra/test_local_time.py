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


def test_field_reports_group_by_the_organisations_day_not_chinas(app, client, auth_headers):
    """A company in Los Angeles: a check-in counts on its own local day, at its local time; the reports, the route,
    and a phone's naive client time all read the organisation's zone, not a fixed UTC+8."""
    from crm_core.clock import local_date_of, to_local

    zone = "America/Los_Angeles"
    team = make_team()
    db.session.add(OrgSetting(org_id=team["admin"].org_id, key="general", value={"timezone": zone}))
    db.session.commit()
    at = (utcnow() - timedelta(minutes=5)).replace(microsecond=0)
    naive_local = to_local(at, zone).replace(tzinfo=None).isoformat()  # what a phone there sends, no offset
    r = client.post("/api/v1/checkins", headers=auth_headers(team["rep1"]), json={
        "kind": "in", "lat": 34.05, "lng": -118.24, "accuracy_m": 15, "client_time": naive_local})
    assert r.status_code == 201, r.get_json()
    assert datetime.fromisoformat(r.get_json()["client_time"].rstrip("Z")) == at  # stored as the right UTC instant
    day = local_date_of(at, zone).isoformat()
    report = client.get(f"/api/v1/reports/checkins?date_from={day}&date_to={day}", headers=auth_headers(team["admin"])).get_json()
    rows = [row for row in report["rows"] if row["checkins"]]
    assert [(row["date"], row["first_checkin"]) for row in rows] == [(day, local_str(at, "%H:%M", zone))]
    assert local_str(at, "%H:%M", zone) != local_str(at, "%H:%M", "Asia/Shanghai")
    route = client.get(f"/api/v1/reports/checkins/route?employee_id={team['rep1'].employee_id}&date={day}",
                       headers=auth_headers(team["admin"])).get_json()
    assert [p["time"] for p in route["points"]] == [local_str(at, "%H:%M", zone)]
