"""Activities, warnings, the calendar feed and work plans (日程管理)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from crm_core.activities.activities import activity_warnings
from crm_core.clock import travel, utcnow
from crm_core.db import db
from crm_core.outbox import OutboxMessage
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


def _notices(kind):
    db.session.expire_all()
    return db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.payload["kind"].as_string() == kind)).all()


def test_status_flow_and_illegal_transition(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    a = client.post("/api/v1/activities", json={"subject": "拜访客户", "kind": "visit"}, headers=h).get_json()
    assert a["status"] == "planned" and a["assignee_id"] == team["rep1"].employee_id
    started = client.post(f"/api/v1/activities/{a['id']}/status", json={"status": "in_progress"}, headers=h).get_json()
    assert started["actual_start"]
    done = client.post(f"/api/v1/activities/{a['id']}/status", json={"status": "done", "result": "签了意向"}, headers=h).get_json()
    assert done["actual_end"] and done["result"] == "签了意向"
    back = client.post(f"/api/v1/activities/{a['id']}/status", json={"status": "in_progress"}, headers=h)
    assert back.status_code == 409 and "已完成" in back.get_json()["error"]["message"]


def test_assignment_collaborators_and_scope(team, client, auth_headers):
    mgr = auth_headers(team["manager"])
    a = client.post("/api/v1/activities", headers=mgr, json={
        "subject": "联合拜访", "assignee_id": team["rep1"].employee_id, "collaborator_ids": [team["rep3"].employee_id]}).get_json()
    # assigned to rep1 and shared with rep3 (outside both scopes otherwise)
    assert client.get(f"/api/v1/activities/{a['id']}", headers=auth_headers(team["rep1"])).status_code == 200
    assert client.get(f"/api/v1/activities/{a['id']}", headers=auth_headers(team["rep3"])).status_code == 200
    assert client.get(f"/api/v1/activities/{a['id']}", headers=auth_headers(team["rep2"])).status_code == 404
    assert any(n.recipient == str(team["rep1"].employee_id) for n in _notices("activity_assigned"))
    # a salesperson cannot assign work to others
    resp = client.post("/api/v1/activities", headers=auth_headers(team["rep1"]), json={
        "subject": "x", "assignee_id": team["rep2"].employee_id})
    assert resp.status_code == 403


def test_sub_activity_reports_back_to_the_main_one(team, client, auth_headers):
    mgr = auth_headers(team["manager"])
    main = client.post("/api/v1/activities", headers=mgr, json={"subject": "季度回访"}).get_json()
    sub = client.post("/api/v1/activities", headers=mgr, json={"subject": "回访A客户", "parent_id": main["id"],
                                                               "assignee_id": team["rep1"].employee_id}).get_json()
    client.post(f"/api/v1/activities/{sub['id']}/status", json={"status": "done", "result": "客户满意"},
                headers=auth_headers(team["rep1"]))
    assert "客户满意" in client.get(f"/api/v1/activities/{main['id']}", headers=mgr).get_json()["result"]


def test_early_and_overdue_warnings_are_sent_once(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    start = utcnow() + timedelta(hours=2)
    client.post("/api/v1/activities", headers=h, json={
        "subject": "演示", "planned_start": start.isoformat() + "Z", "planned_end": (start + timedelta(hours=1)).isoformat() + "Z",
        "warn_before_minutes": 60})
    assert activity_warnings() == 0
    with travel(timedelta(hours=1, minutes=1)):
        assert activity_warnings() == 1
        assert activity_warnings() == 0
    with travel(timedelta(hours=3, minutes=1)):
        assert activity_warnings() == 1
        assert activity_warnings() == 0
    db.session.commit()
    assert len(_notices("activity_start")) == 1 and len(_notices("activity_overdue")) == 1


def test_times_without_offset_are_china_time(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    a = client.post("/api/v1/activities", headers=h, json={"subject": "早会", "planned_start": "2026-12-01T09:00:00"}).get_json()
    assert a["planned_start"] == "2026-12-01T01:00:00Z"
    bad = client.post("/api/v1/activities", headers=h, json={
        "subject": "x", "planned_start": "2026-12-01T10:00:00+08:00", "planned_end": "2026-12-01T09:00:00+08:00"})
    assert bad.status_code == 422


def test_calendar_feed_json_and_ics(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    client.post("/api/v1/activities", headers=h, json={"subject": "拜访西湖茶业", "planned_start": "2026-12-02T10:00:00+08:00"})
    client.post("/api/v1/activities", headers=h, json={"subject": "下月的事", "planned_start": "2027-01-15T10:00:00+08:00"})
    cal = client.get("/api/v1/calendar?date_from=2026-12-01&date_to=2026-12-31", headers=h).get_json()
    assert [a["subject"] for a in cal["items"]] == ["拜访西湖茶业"]
    ics = client.get("/api/v1/calendar?date_from=2026-12-01&date_to=2026-12-31&format=ics", headers=h)
    assert ics.mimetype == "text/calendar"
    text = ics.get_data(as_text=True)
    assert "BEGIN:VEVENT" in text and "SUMMARY:拜访西湖茶业" in text and "DTSTART:20261202T020000Z" in text
    # the manager sees rep1's calendar; the peer manager sees nothing of it
    emp = team["rep1"].employee_id
    url = f"/api/v1/calendar?employee_id={emp}&date_from=2026-12-01&date_to=2026-12-31"
    assert client.get(url, headers=auth_headers(team["manager"])).get_json()["total"] == 1
    assert client.get(url, headers=auth_headers(team["peer"])).get_json()["total"] == 0
    too_long = client.get("/api/v1/calendar?date_from=2026-01-01&date_to=2026-12-31", headers=h)
    assert too_long.status_code == 422


def test_work_plan_review_by_a_chosen_reviewer_and_plan_vs_actual(team, client, auth_headers):
    h = auth_headers(team["rep1"])
    plan = client.post("/api/v1/work-plans", headers=h, json={
        "period": "weekly", "start_date": "2026-12-07", "end_date": "2026-12-13", "title": "第50周计划",
        "reviewer_id": team["rep3"].employee_id,  # not the manager
        "activities": [{"subject": "拜访甲", "kind": "visit", "planned_end": "2026-12-08T18:00:00+08:00"},
                       {"subject": "电话乙", "kind": "call"}, {"subject": "拜访丙", "kind": "visit"}]}).get_json()
    acts = client.get("/api/v1/activities", headers=h).get_json()["items"]
    assert {a["plan_id"] for a in acts} == {plan["id"]}
    visit = next(a for a in acts if a["subject"] == "拜访甲")
    client.post(f"/api/v1/activities/{visit['id']}/status", json={"status": "done"}, headers=h)
    progress = client.get(f"/api/v1/work-plans/{plan['id']}/progress", headers=h).get_json()
    assert (progress["planned"], progress["done"], progress["open"]) == (3, 1, 2)
    assert progress["by_kind"] == {"visit": {"planned": 2, "done": 1}, "call": {"planned": 1, "done": 0}}
    assert client.post(f"/api/v1/work-plans/{plan['id']}/review", json={"comment": "好"}, headers=h).status_code in (403, 409)
    client.post(f"/api/v1/work-plans/{plan['id']}/submit", json={"summary": "完成一项"}, headers=h)
    rev = auth_headers(team["rep3"])
    assert client.get("/api/v1/work-plans", headers=rev).get_json()["total"] == 1  # the reviewer sees it
    assert client.post(f"/api/v1/work-plans/{plan['id']}/review", json={"comment": "继续努力"},
                       headers=auth_headers(team["manager"])).status_code == 403
    reviewed = client.post(f"/api/v1/work-plans/{plan['id']}/review", json={"comment": "继续努力"}, headers=rev).get_json()
    assert reviewed["review_status"] == "reviewed" and reviewed["review_comment"] == "继续努力"


def test_a_submitted_plan_handed_to_another_reviewer_leaves_the_first_and_reaches_the_second(team):
    from datetime import date

    from crm_core.activities import activities as svc
    from crm_core.errors import Conflict, PermissionDenied, ValidationFailed
    from crm_core.org.permissions import load_actor

    rep, manager, peer = (load_actor(team[k]) for k in ("rep1", "manager", "peer"))
    plan = svc.create_plan(rep, {"period": "weekly", "title": "本周计划", "start_date": date(2026, 12, 7),
                                 "end_date": date(2026, 12, 11), "reviewer_id": manager.employee_id})
    svc.submit_plan(rep, plan.id)
    with pytest.raises(PermissionDenied):
        svc.change_reviewer(manager, plan.id, peer.employee_id)  # only the owner hands it over
    with pytest.raises(Conflict):
        svc.update_plan(rep, plan.id, {"title": "改了"})  # submitted: sent back first
    with pytest.raises(ValidationFailed):
        svc.change_reviewer(rep, plan.id, rep.employee_id)  # not one's own reviewer
    svc.change_reviewer(rep, plan.id, peer.employee_id)
    db.session.commit()
    assert [p.id for p in svc.plans_to_review(peer)] == [plan.id] and svc.plans_to_review(manager) == []
    notices = db.session.query(OutboxMessage).filter(OutboxMessage.channel == "staff",
                                                     OutboxMessage.recipient == str(peer.employee_id)).all()
    assert any("待您批阅" in (m.payload or {}).get("text", "") for m in notices)
    with pytest.raises(PermissionDenied):
        svc.review_plan(manager, plan.id, "已阅")  # the first reviewer no longer decides
    svc.review_plan(peer, plan.id, "已阅")
    with pytest.raises(Conflict):
        svc.change_reviewer(rep, plan.id, manager.employee_id)
