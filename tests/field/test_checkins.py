"""Field check-ins (移动签到): coordinates, checks, pairing, review, nearby, reports, photos."""
from __future__ import annotations

import io
import random
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from crm_core import geo
from crm_core.activities.models import Activity
from crm_core.clock import travel, utcnow
from crm_core.customers.models import Customer
from crm_core.db import db
from crm_core.field.models import CheckIn
from tests.wechat_helpers import message_xml, post, settle

WEST_LAKE = (30.2270, 120.1230)  # the demo's 杭州西湖茶业 site (WGS-84)


# --- coordinate systems -------------------------------------------------------------------
# published reference pairs (wandergis/coordtransform, the de-facto reference implementation)
@pytest.mark.parametrize("fn, given, expected", [
    (geo.wgs84_to_gcj02, (39.915, 116.404), (39.91640428150164, 116.41024449916938)),
    (geo.gcj02_to_bd09, (39.915, 116.404), (39.92133699351021, 116.41036949371029)),
    (geo.bd09_to_gcj02, (39.915, 116.404), (39.90865673957631, 116.39762729119315)),
    # the reference's one-step inverse is approximate (~5 cm off); ours iterates to 1e-9°
    (geo.gcj02_to_wgs84, (39.915, 116.404), (39.91359571849836, 116.39775550083061)),
])
def test_transforms_match_published_reference_pairs(fn, given, expected):
    lat, lng = fn(*given)
    tolerance = 1e-6 if fn is geo.gcj02_to_wgs84 else 1e-9
    assert lat == pytest.approx(expected[0], abs=tolerance) and lng == pytest.approx(expected[1], abs=tolerance)


def test_round_trips_are_exact_inside_china_and_identity_outside():
    rnd = random.Random(7)
    for _ in range(200):
        lat, lng = rnd.uniform(18, 53), rnd.uniform(74, 134)
        if geo.out_of_china(lat, lng):
            continue
        for system in ("gcj02", "bd09"):
            back = geo.to_wgs84(*geo.from_wgs84(lat, lng, system), system)
            assert geo.distance_m((lat, lng), back) < 0.01  # under a centimetre
    london = (51.5074, -0.1278)
    assert geo.wgs84_to_gcj02(*london) == london and geo.gcj02_to_wgs84(*london) == london
    assert geo.distance_m(geo.to_wgs84(*geo.from_wgs84(*london, "bd09"), "bd09"), london) < 0.01


@pytest.mark.parametrize("centre", [WEST_LAKE, (45.75, 126.65), (18.25, 109.5), (-33.87, 151.21)])
def test_cell_disk_never_misses_a_site_the_brute_force_scan_finds(centre):
    rnd = random.Random(3)
    sites = [(centre[0] + rnd.uniform(-0.05, 0.05), centre[1] + rnd.uniform(-0.05, 0.05)) for _ in range(2000)]
    cells = [geo.cell_of(*s) for s in sites]
    for radius in (50, 100, 500, 1500, 5000):
        for _ in range(30):
            q = (centre[0] + rnd.uniform(-0.03, 0.03), centre[1] + rnd.uniform(-0.03, 0.03))
            disk = set(geo.cells_within(*q, radius))
            # every site by its great-circle distance; one whose latitude alone is farther than the radius cannot be
            # within it (a meridian arc is never longer than the distance), so it skips the trigonometry
            near = radius / 111_194.9 * 1.001
            brute = {i for i, s in enumerate(sites) if abs(s[0] - q[0]) <= near and geo.distance_m(q, s) <= radius}
            indexed = {i for i in brute if cells[i] in disk}
            assert indexed == brute


# --- the API --------------------------------------------------------------------------------
@pytest.fixture
def demo(app):
    from crm_core.demo import load_demo

    with app.app_context():
        load_demo()
        db.session.commit()
    return app


@pytest.fixture
def demo_any(any_app):
    """The demo organisation on SQLite and on PostgreSQL."""
    from crm_core.demo import load_demo

    load_demo()
    db.session.commit()
    return any_app


def token(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": "demo123456"})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def customer_id(app, name_part):
    with app.app_context():
        return db.session.scalar(select(Customer.id).where(Customer.name.contains(name_part)))


def count_checkins(app):
    with app.app_context():
        return db.session.scalar(select(func.count(CheckIn.id)))


def north(point, metres):
    return point[0] + metres / 111_000, point[1]


def iso(ts):
    return ts.isoformat() + "Z"


@pytest.fixture
def away_from_midnight():
    """The test's check-ins span ten minutes of one China day; run near midnight, they would fall on two days and the
    day's report would hold only part of them (CI ran at 00:07). The clock moves an hour on when that is near."""
    local = utcnow() + timedelta(hours=8)
    minutes = local.hour * 60 + local.minute
    with travel(timedelta(hours=1) if minutes >= 23 * 60 + 30 or minutes < 30 else timedelta(0)):
        yield


def test_normal_out_of_range_duplicate_and_teleport_then_the_report_for_manager_not_peer(demo_any, client, away_from_midnight):
    """The issue's done-when, through the HTTP API."""
    demo = demo_any
    zhang, manager, li = token(client, "sales.zhang"), token(client, "sales.manager"), token(client, "sales.li")
    tea = customer_id(demo, "西湖茶业")
    far_site = north(WEST_LAKE, 3000)
    r = client.post("/api/v1/customers", headers=zhang, json={"name": "北山园艺工作室", "site": {
        "lat": far_site[0], "lng": far_site[1], "coord_system": "wgs84"}})
    assert r.status_code == 201, r.get_json()
    garden = r.get_json()["id"]
    now = utcnow()
    standing = north(WEST_LAKE, 40)

    r = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": standing[0], "lng": standing[1], "coord_system": "wgs84", "accuracy_m": 15,
        "customer_id": tea, "client_time": iso(now - timedelta(minutes=9))})
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first["status"] == "normal" and first["flags"] == [] and 30 < first["distance_m"] < 50

    r = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": standing[0] + 0.00001, "lng": standing[1], "accuracy_m": 12, "customer_id": garden,
        "client_time": iso(now - timedelta(minutes=8))})
    assert r.status_code == 201
    second = r.get_json()
    assert second["status"] == "out_of_range" and "out_of_range" in second["flags"]
    assert 2900 < second["distance_m"] < 3000

    before = count_checkins(demo)
    r = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": standing[0], "lng": standing[1], "accuracy_m": 14, "customer_id": tea,
        "client_time": iso(now - timedelta(minutes=9) + timedelta(seconds=40))})
    assert r.status_code == 409
    assert "1 分钟内" in r.get_json()["error"]["message"]
    assert count_checkins(demo) == before

    teleport = north(standing, 300_000)
    r = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": teleport[0], "lng": teleport[1], "accuracy_m": 20, "client_time": iso(now + timedelta(minutes=1))})
    assert r.status_code == 201
    assert "suspicious" in r.get_json()["flags"]

    day = (now + timedelta(hours=8)).date().isoformat()
    report = client.get(f"/api/v1/reports/checkins?date_from={day}&date_to={day}", headers=manager).get_json()
    rows = [row for row in report["rows"] if row["employee"] == "张伟"]
    assert len(rows) == 1
    assert rows[0]["checkins"] == 3 and rows[0]["out_of_range"] == 1 and rows[0]["flagged"] == 2
    assert rows[0]["distance_km"] > 299
    peer = client.get(f"/api/v1/reports/checkins?date_from={day}&date_to={day}", headers=li).get_json()
    assert all(row["employee"] != "张伟" for row in peer["rows"])
    # someone outside the manager's reporting subtree (the IT administrator) checks in too
    admin = token(client, "admin")
    assert client.post("/api/v1/checkins", headers=admin, json={"kind": "in", "lat": 30.25, "lng": 120.17,
                                                                "accuracy_m": 10}).status_code == 201
    names = {row["employee"] for row in client.get(f"/api/v1/reports/checkins?date_from={day}&date_to={day}",
                                                   headers=manager).get_json()["rows"]}
    assert "张伟" in names and "周敏" not in names
    zhang_id = first["employee_id"]
    assert client.get(f"/api/v1/reports/checkins/route?employee_id={zhang_id}&date={day}", headers=li).status_code == 404
    svg = client.get(f"/api/v1/reports/checkins/route?employee_id={zhang_id}&date={day}&format=svg", headers=manager)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.get_data(as_text=True).count('class="checkin"') == 3 and "西湖茶业" in svg.get_data(as_text=True)
    # the peer cannot list or open Zhang's check-ins either
    assert client.get(f"/api/v1/checkins/{first['id']}", headers=li).status_code == 404
    assert client.get(f"/api/v1/checkins/{first['id']}", headers=manager).status_code == 200
    # the customer's 360 view lists the visit
    view = client.get(f"/api/v1/customers/{tea}/360", headers=manager).get_json()
    assert view["visits"]["count"] == 1 and view["visits"]["latest"][0]["status"] == "normal"


@pytest.mark.parametrize("body, field", [
    ({"lat": 91, "lng": 120}, "lat"),
    ({"lat": "abc", "lng": 120}, "lat"),
    ({"lat": 30, "lng": 181}, "lng"),
    ({"lat": 30.2, "lng": 120.1, "coord_system": "mars"}, "coord_system"),
    ({"lat": 30.2, "lng": 120.1, "client_time": "2999-01-01T00:00:00Z"}, "client_time"),
    ({"lat": 30.2, "lng": 120.1, "client_time": "OLD"}, "client_time"),
    ({"lat": 30.2}, "lng"),
    ({}, "lat"),
])
def test_bad_check_ins_are_refused_clearly_and_nothing_is_stored(demo, client, body, field):
    zhang = token(client, "sales.zhang")
    if body.get("client_time") == "OLD":
        body = {**body, "client_time": iso(utcnow() - timedelta(hours=25))}
    r = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", **body})
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert field in err["fields"] and err["message"]
    assert count_checkins(demo) == 0


def test_no_location_is_refused_with_a_message_that_says_what_to_do(demo, client):
    r = client.post("/api/v1/checkins", headers=token(client, "sales.zhang"), json={"kind": "in"})
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "location_required" and "定位" in r.get_json()["error"]["message"]


def test_a_customer_outside_the_data_scope_is_refused(demo, client):
    li_customer = customer_id(demo, "钱塘物流")
    r = client.post("/api/v1/checkins", headers=token(client, "sales.zhang"),
                    json={"kind": "in", "lat": 30.295, "lng": 120.365, "customer_id": li_customer})
    assert r.status_code == 404
    assert count_checkins(demo) == 0


def test_gcj02_and_bd09_positions_are_stored_in_wgs84_and_answered_in_the_callers_system(demo, client):
    zhang = token(client, "sales.zhang")
    tea = customer_id(demo, "西湖茶业")
    glat, glng = geo.from_wgs84(*WEST_LAKE, "gcj02")
    r = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": glat, "lng": glng, "coord_system": "gcj02",
                                                             "accuracy_m": 10, "customer_id": tea})
    body = r.get_json()
    assert r.status_code == 201 and body["status"] == "normal" and body["distance_m"] < 1
    assert body["coord_system"] == "gcj02" and body["lat"] == pytest.approx(glat, abs=1e-6)
    listed = client.get("/api/v1/checkins?coord_system=wgs84", headers=zhang).get_json()["items"][0]
    assert listed["lat"] == pytest.approx(WEST_LAKE[0], abs=1e-6) and listed["received_coord_system"] == "gcj02"
    blat, blng = geo.from_wgs84(*WEST_LAKE, "bd09")
    r = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", "lat": blat, "lng": blng, "coord_system": "bd09",
                                                             "accuracy_m": 11, "customer_id": tea})
    assert r.get_json()["distance_m"] < 1


def test_check_out_pairs_with_the_check_in_and_completes_the_activity(demo, client):
    zhang = token(client, "sales.zhang")
    tea = customer_id(demo, "西湖茶业")
    act = client.post("/api/v1/activities", headers=zhang, json={"subject": "拜访西湖茶业", "kind": "visit", "customer_id": tea})
    assert act.status_code == 201
    act_id = act.get_json()["id"]
    now = utcnow()
    r_in = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": WEST_LAKE[0], "lng": WEST_LAKE[1], "accuracy_m": 8, "activity_id": act_id,
        "client_time": iso(now - timedelta(minutes=5))}).get_json()
    assert r_in["customer_id"] == tea  # taken from the activity
    with demo.app_context():
        assert db.session.get(Activity, act_id).status == "in_progress"
    r_out = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "out", "lat": WEST_LAKE[0] + 0.0001, "lng": WEST_LAKE[1], "accuracy_m": 9, "customer_id": tea}).get_json()
    assert r_out["pair_id"] == r_in["id"] and 290 <= r_out["duration_s"] <= 310
    with demo.app_context():
        activity = db.session.get(Activity, act_id)
        assert activity.status == "done" and activity.actual_end is not None
    assert client.get(f"/api/v1/checkins/{r_in['id']}", headers=zhang).get_json()["pair_id"] == r_out["id"]
    # a check-out without a check-in is kept and says so
    lone = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", "lat": 30.3, "lng": 120.2, "accuracy_m": 9}).get_json()
    assert "unpaired" in lone["flags"] and lone["pair_id"] is None


def test_spoofing_signs_low_accuracy_and_late_submissions_are_flagged_but_kept(demo, client):
    zhang = token(client, "sales.zhang")
    tea = customer_id(demo, "西湖茶业")
    base = {"lat": 30.22712345, "lng": 120.12301234, "customer_id": tea}
    mocked = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", **base, "accuracy_m": 5,
                                                                  "mock_location": True}).get_json()
    assert mocked["status"] == "rejected" and "spoof_mock" in mocked["flags"]
    # the same fix seconds later is the phone's cached position (WeChat getLocation, Android's fused provider): real
    soon = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", **base, "accuracy_m": 5}).get_json()
    assert "spoof_repeat" not in soon["flags"] and soon["badge"]["tone"] == "ok", soon
    # exactly the same fix hours apart is not something a receiver does: replayed
    repeat = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", **base, "accuracy_m": 5,
                                                                  "client_time": iso(utcnow() - timedelta(hours=3))}).get_json()
    assert "spoof_repeat" in repeat["flags"] and repeat["status"] == "rejected" and repeat["badge"]["tone"] == "bad"
    zero = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": 30.2, "lng": 120.1,
                                                                "accuracy_m": 0}).get_json()
    assert "spoof_accuracy" in zero["flags"]
    vague = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", "lat": 30.21, "lng": 120.11,
                                                                 "accuracy_m": 850}).get_json()
    assert "low_accuracy" in vague["flags"] and vague["status"] == "normal"
    late = client.post("/api/v1/checkins", headers=zhang, json={
        "kind": "in", "lat": 30.25, "lng": 120.15, "accuracy_m": 20, "client_time": iso(utcnow() - timedelta(hours=5))}).get_json()
    assert late["late"] is True and "late" in late["flags"]
    assert count_checkins(demo) == 6


def test_manager_confirms_or_dismisses_flags_nobody_reviews_their_own(demo, client):
    zhang, manager, li = token(client, "sales.zhang"), token(client, "sales.manager"), token(client, "sales.li")
    garden_site = north(WEST_LAKE, 2000)
    cid = client.post("/api/v1/customers", headers=zhang, json={"name": "远处客户", "site": {
        "lat": garden_site[0], "lng": garden_site[1]}}).get_json()["id"]
    ci = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": WEST_LAKE[0], "lng": WEST_LAKE[1],
                                                              "accuracy_m": 10, "customer_id": cid}).get_json()
    assert ci["status"] == "out_of_range" and ci["flagged"]
    url = f"/api/v1/checkins/{ci['id']}/flags/out_of_range"
    assert client.post(url, headers=zhang, json={"decision": "dismissed"}).status_code == 403
    assert client.post(url, headers=li, json={"decision": "dismissed"}).status_code in (403, 404)
    r = client.post(url, headers=manager, json={"decision": "dismissed", "note": "客户已搬迁"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "normal" and not body["flagged"] and body["flag_reviews"]["out_of_range"]["decision"] == "dismissed"
    assert body["flags"] == ["out_of_range"]  # the flag stays on record
    assert client.post(f"/api/v1/checkins/{ci['id']}/flags/low_accuracy", headers=manager,
                       json={"decision": "confirmed"}).status_code == 422


def test_nearby_suggests_only_visible_customers_within_the_radius_nearest_first(demo, client):
    zhang = token(client, "sales.zhang")
    near = north(WEST_LAKE, 200)
    client.post("/api/v1/customers", headers=zhang, json={"name": "隔壁茶舍", "site": {"lat": near[0], "lng": near[1]}})
    li = token(client, "sales.li")
    client.post("/api/v1/customers", headers=li, json={"name": "李娜的客户", "site": {"lat": WEST_LAKE[0], "lng": WEST_LAKE[1] + 0.001}})
    items = client.get(f"/api/v1/checkins/nearby?lat={WEST_LAKE[0]}&lng={WEST_LAKE[1]}", headers=zhang).get_json()["items"]
    assert [i["name"] for i in items] == ["杭州西湖茶业有限公司", "隔壁茶舍"]
    assert items[0]["distance_m"] < 1 and 190 < items[1]["distance_m"] < 210
    small = client.get(f"/api/v1/checkins/nearby?lat={WEST_LAKE[0]}&lng={WEST_LAKE[1]}&radius_m=100", headers=zhang).get_json()
    assert [i["name"] for i in small["items"]] == ["杭州西湖茶业有限公司"]
    glat, glng = geo.from_wgs84(*WEST_LAKE, "gcj02")
    g = client.get(f"/api/v1/checkins/nearby?lat={glat}&lng={glng}&coord_system=gcj02", headers=zhang).get_json()
    assert g["items"][0]["distance_m"] < 1


def test_a_recent_wechat_location_event_stands_in_for_the_device(demo, client):
    """Bind the salesperson's WeChat user, report a location through the callback, check in without coordinates."""
    openid = "oZhangPhone001"
    client.get(f"/h5/dev-login?openid={openid}")
    page = client.get("/h5/checkin")
    assert page.status_code == 200 and "公司 CRM 账号" in page.get_data(as_text=True)
    csrf = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    r = client.post("/h5/api/staff/bind", json={"username": "sales.zhang", "password": "demo123456"},
                    headers={"X-CSRFToken": csrf})
    assert r.status_code == 200, r.get_json()
    glat, glng = geo.from_wgs84(*WEST_LAKE, "gcj02")  # WeChat reports LOCATION events in GCJ-02
    assert post(client, message_xml("location_event", openid, lat=glat, lng=glng, precision=25)).status_code == 200
    settle()
    tea = customer_id(demo, "西湖茶业")
    near = client.get("/h5/api/checkins/nearby").get_json()
    assert near["items"][0]["customer_id"] == tea and near["location"]["source"] == "wechat_event"
    r = client.post("/h5/api/checkins", json={"kind": "in", "customer_id": tea}, headers={"X-CSRFToken": csrf})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["location_source"] == "wechat_event" and body["status"] == "normal" and body["distance_m"] < 1
    today = client.get("/h5/api/checkins/today").get_json()["items"]
    assert [t["customer_name"] for t in today] == ["杭州西湖茶业有限公司"]
    # too old a location does not count
    from crm_core.clock import travel

    with travel(timedelta(minutes=5)):
        r = client.post("/h5/api/checkins", json={"kind": "out", "customer_id": tea}, headers={"X-CSRFToken": csrf})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "location_required"


def test_the_checkin_menu_entry_answers_with_the_page_link(demo, client):
    from tests.wechat_helpers import reply_text

    r = post(client, message_xml("click", "oSomebody01", key="MENU_CHECKIN"))
    assert "/h5/checkin" in reply_text(r)


# --- reports --------------------------------------------------------------------------------
def test_activity_statistics_have_department_subtotals_and_a_total_and_export_as_csv(demo_any, client):
    zhang, manager = token(client, "sales.zhang"), token(client, "sales.manager")
    for subject in ("电话回访", "上门拜访", "方案演示"):
        client.post("/api/v1/activities", headers=zhang, json={"subject": subject})
    act = client.post("/api/v1/activities", headers=zhang, json={"subject": "已完成的"}).get_json()
    client.post(f"/api/v1/activities/{act['id']}/status", headers=zhang, json={"status": "done"})
    report = client.get("/api/v1/reports/activities", headers=manager).get_json()
    zhang_rows = [r for g in report["departments"] for r in g["rows"] if r["employee"] == "张伟"]
    assert zhang_rows and zhang_rows[0]["total"] >= 4 and zhang_rows[0]["done"] >= 1
    group = next(g for g in report["departments"] if any(r["employee"] == "张伟" for r in g["rows"]))
    assert group["subtotal"]["total"] == sum(r["total"] for r in group["rows"])
    assert report["total"]["total"] == sum(g["subtotal"]["total"] for g in report["departments"])
    csv = client.get("/api/v1/reports/activities?format=csv", headers=manager)
    text = csv.get_data(as_text=True)
    assert csv.mimetype == "text/csv" and text.startswith("\ufeff部门,职员,计划中")
    assert "小计" in text and "合计" in text
    # a salesperson's own report only has themselves
    own = client.get("/api/v1/reports/activities", headers=zhang).get_json()
    assert {r["employee"] for g in own["departments"] for r in g["rows"]} == {"张伟"}


def test_checkin_report_csv_and_calendar_show_visits(demo_any, client):
    demo = demo_any
    zhang, manager = token(client, "sales.zhang"), token(client, "sales.manager")
    tea = customer_id(demo, "西湖茶业")
    client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": WEST_LAKE[0], "lng": WEST_LAKE[1],
                                                         "accuracy_m": 10, "customer_id": tea})
    csv = client.get("/api/v1/reports/checkins?format=csv", headers=manager).get_data(as_text=True)
    assert "职员,日期,首次签到" in csv and "张伟" in csv and "合计" in csv
    cal = client.get("/api/v1/reports/calendar", headers=manager).get_json()
    visits = [i for d in cal["days"] for i in d["items"] if i["type"] == "visit"]
    assert visits and visits[0]["customer"] == "杭州西湖茶业有限公司" and visits[0]["employee"] == "张伟"
    assert client.get("/api/v1/reports/calendar?date_from=2026-01-01&date_to=2026-06-30", headers=manager).status_code == 422


# --- photos ----------------------------------------------------------------------------------
def _jpeg_with_gps_exif() -> bytes:
    img = Image.new("RGB", (800, 600), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 13.0, 37.0)}  # GPSInfo
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_photo_upload_strips_exif_checks_content_and_size(demo, client):
    zhang = token(client, "sales.zhang")
    raw = _jpeg_with_gps_exif()
    assert Image.open(io.BytesIO(raw)).getexif()
    r = client.post("/api/v1/media", headers=zhang, data={"purpose": "checkin", "file": (io.BytesIO(raw), "p.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    photo = r.get_json()
    stored = client.get(f"/api/v1/media/{photo['id']}", headers=zhang)
    assert stored.mimetype == "image/jpeg" and not Image.open(io.BytesIO(stored.get_data())).getexif()
    thumb = Image.open(io.BytesIO(client.get(f"/api/v1/media/{photo['id']}?thumb=true", headers=zhang).get_data()))
    assert max(thumb.size) <= 320
    fake = client.post("/api/v1/media", headers=zhang, data={"file": (io.BytesIO(b"%PDF-1.4 not an image"), "x.jpg")},
                       content_type="multipart/form-data")
    assert fake.status_code == 422 and fake.get_json()["error"]["fields"]["photo"] == "not_an_image"
    from crm_core import media

    big = client.post("/api/v1/media", headers=zhang, data={"file": (io.BytesIO(b"\xff" * (media.MAX_IMAGE_BYTES + 10)), "b.jpg")},
                      content_type="multipart/form-data")
    assert big.status_code == 413
    # the photo goes with a check-in; someone else's photo id is refused
    tea = customer_id(demo, "西湖茶业")
    ci = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": WEST_LAKE[0], "lng": WEST_LAKE[1],
                                                              "accuracy_m": 10, "customer_id": tea, "photo_id": photo["id"]})
    assert ci.status_code == 201 and ci.get_json()["photo_id"] == photo["id"]
    li = token(client, "sales.li")
    other = client.post("/api/v1/checkins", headers=li, json={"kind": "in", "lat": 30.3, "lng": 120.3, "photo_id": photo["id"]})
    assert other.status_code == 404


def test_the_check_in_address_comes_from_the_offline_geocoder_in_a_job(demo, client):
    zhang = token(client, "sales.zhang")
    ci = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", "lat": WEST_LAKE[0] + 0.0005,
                                                              "lng": WEST_LAKE[1], "accuracy_m": 10}).get_json()
    assert client.get(f"/api/v1/checkins/{ci['id']}", headers=zhang).get_json()["address"] == "杭州市西湖区龙井路 18 号附近"
    far = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", "lat": 31.5, "lng": 121.0, "accuracy_m": 10}).get_json()
    assert client.get(f"/api/v1/checkins/{far['id']}", headers=zhang).get_json()["address"] is None


def test_amap_answers_are_read_through_geopys_interface():
    from geopy.point import Point

    from crm_core.field.geocoding import AMap

    page = {"status": "1", "regeocode": {"formatted_address": "浙江省杭州市西湖区龙井路18号"}}
    loc = AMap._parse(page, Point(30.22, 120.12), True)
    assert loc.address == "浙江省杭州市西湖区龙井路18号" and round(loc.latitude, 2) == 30.22
    assert AMap._parse({"status": "0", "info": "INVALID_USER_KEY"}, Point(30.22, 120.12), True) is None


def test_a_cached_fix_at_another_customer_is_out_of_range_and_badges_agree_with_flags(demo, client):
    """Issue #14 item 11: one cached fix used at a second customer is out of range there, not spoofing;
    no customer is visible; a low-accuracy check-in is not shown with a green badge."""
    zhang = token(client, "sales.zhang")
    tea, far = customer_id(demo, "西湖茶业"), customer_id(demo, "滨江智造")
    fix = {"lat": 30.22712345, "lng": 120.12301234, "accuracy_m": 12}
    first = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", **fix, "customer_id": tea}).get_json()
    second = client.post("/api/v1/checkins", headers=zhang, json={"kind": "in", **fix, "customer_id": far}).get_json()
    assert first["status"] == "normal"
    assert second["status"] == "out_of_range" and "spoof_repeat" not in second["flags"], second
    assert second["badge"] == {"tone": "warn", "text": "超出范围"}
    nowhere = client.post("/api/v1/checkins", headers=zhang, json={"kind": "out", "lat": 30.3, "lng": 120.3,
                                                                   "accuracy_m": 3000}).get_json()
    assert "no_customer" in nowhere["flags"] and "未关联客户" in nowhere["flag_labels"]
    assert "low_accuracy" in nowhere["flags"] and nowhere["badge"]["tone"] == "warn"
