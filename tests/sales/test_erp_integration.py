"""ERP integration points (#19 item 10): documents leave as signed webhook events through the outbox — to a real HTTP
receiver here, with retries on 5xx and none on a refusal — and receipts, shipments and stock come back in under the
ERP's own ids, a repeated batch changing nothing."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crm_core import jobs
from crm_core.clock import local_today, travel
from crm_core.customers.models import ProductArchive
from crm_core.db import db
from crm_core.outbox import OutboxMessage, backoff
from tests.factories import make_customer, make_team
from tests.sales.test_money_chain import _products

SECRET = "k3-cloud-shared-secret-0001"


class Receiver:
    """An ERP's webhook endpoint on a free port: records each request; answers the queued statuses, then 200."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                status = outer.answers.pop(0) if outer.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/k3/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [r["headers"]["X-WXCRM-Event"] for r in self.requests]


@pytest.fixture
def erp():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def team(app):
    users = make_team()
    db.session.commit()
    return users


def _approved_contract(client, team, auth_headers, quantity=4):
    admin, rep1, mgr = auth_headers(team["admin"]), auth_headers(team["rep1"]), auth_headers(team["manager"])
    wp, _ = _products(client, admin)
    customer = make_customer(team["rep1"], "ERP对接测试有限公司")
    db.session.commit()
    total = f"{quantity * 1280 * 113 / 100:.2f}"
    c = client.post("/api/v1/contracts", headers=rep1, json={
        "customer_id": customer.id, "lines": [{"product_id": wp["id"], "quantity": quantity}],
        "payment_plan": [{"due_date": (local_today() + timedelta(days=30)).isoformat(), "amount": total}]})
    assert c.status_code == 201, c.get_json()
    c = c.get_json()
    assert client.post(f"/api/v1/contracts/{c['id']}/approve", headers=mgr, json={}).status_code == 200
    return c, customer, wp


def test_documents_leave_as_signed_events_and_a_failing_erp_is_retried(team, client, auth_headers, erp):
    admin, rep1 = auth_headers(team["admin"]), auth_headers(team["rep1"])
    # no URL: nothing is queued for an ERP
    _approved_contract(client, team, auth_headers, quantity=1)
    assert db.session.query(OutboxMessage).filter_by(channel="erp_webhook").count() == 0

    no_secret = client.put("/api/v1/settings/erp-webhook", headers=admin, json={"url": erp.url})
    assert no_secret.status_code == 422 and "secret" in no_secret.get_json()["error"]["fields"]
    assert client.put("/api/v1/settings/erp-webhook", headers=rep1, json={"url": erp.url, "secret": SECRET}).status_code == 403
    assert client.put("/api/v1/settings/erp-webhook", headers=admin, json={"url": "ftp://erp.example/x", "secret": SECRET}).status_code == 422
    cfg = client.put("/api/v1/settings/erp-webhook", headers=admin, json={"url": erp.url, "secret": SECRET}).get_json()
    assert cfg["secret_set"] is True and "secret" not in cfg and "receipt.created" in cfg["available_events"]
    from crm_core.audit import AuditEntry

    logged = [json.dumps(e.changes, ensure_ascii=False) for e in db.session.query(AuditEntry).filter_by(object_type="org_setting")]
    assert logged and not any(SECRET in x for x in logged) and any("***" in x for x in logged)  # the audit log never holds it

    erp.answers = [503]  # the ERP is down for the first delivery
    second = make_customer(team["rep1"], "第二家对接客户")
    db.session.commit()
    c = client.post("/api/v1/contracts", headers=rep1, json={
        "customer_id": second.id, "amount": "800.00", "payment_plan": [{"due_date": "2027-06-30", "amount": "800.00"}]}).get_json()
    client.post(f"/api/v1/contracts/{c['id']}/approve", headers=auth_headers(team["manager"]), json={})
    msg = db.session.query(OutboxMessage).filter_by(channel="erp_webhook").one()
    assert (msg.status, msg.attempts) == ("pending", 1) and "HTTP 503" in msg.last_error
    msg_id = msg.id
    with travel(timedelta(seconds=backoff(1) + 1)):
        jobs.run_due()
    db.session.expire_all()
    assert db.session.get(OutboxMessage, msg_id).status == "sent"
    assert erp.events() == ["contract.approved", "contract.approved"]  # the retry carries the same event id
    first, retry = erp.requests
    assert first["headers"]["X-WXCRM-Delivery"] == retry["headers"]["X-WXCRM-Delivery"] == f"contract.approved:contract:{c['id']}"
    ts, body = retry["headers"]["X-WXCRM-Timestamp"], retry["body"]
    expected = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert retry["headers"]["X-WXCRM-Signature"] == expected
    event = json.loads(body)
    assert event["type"] == "contract.approved" and event["data"]["number"] == c["number"] and event["data"]["amount"] == "800.00"

    # a receipt is an event too; an ERP refusing it (4xx) is not retried, the outbox shows why
    erp.answers = [400]
    client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "300.00"})
    refused = db.session.query(OutboxMessage).filter_by(channel="erp_webhook").order_by(OutboxMessage.id.desc()).first()
    assert refused.status == "failed" and "HTTP 400" in refused.last_error and refused.payload["type"] == "receipt.created"

    # only the events asked for
    client.put("/api/v1/settings/erp-webhook", headers=admin, json={"url": erp.url, "events": ["order.created"]})
    before = len(erp.requests)
    client.post("/api/v1/receipts", headers=rep1, json={"contract_id": c["id"], "amount": "100.00"})
    assert len(erp.requests) == before


def test_receipts_shipments_and_stock_come_back_from_the_erp_once(team, client, auth_headers):
    rep1, admin = auth_headers(team["rep1"]), auth_headers(team["admin"])
    c, customer, wp = _approved_contract(client, team, auth_headers, quantity=4)
    batch = {"items": [{"external_id": "SK-0001", "contract_number": c["number"], "amount": "1000.00", "received_at": local_today().isoformat()},
                       {"external_id": "SK-0002", "contract_number": "HT-NOPE", "amount": "1.00"},
                       {"external_id": "SK-0003", "contract_number": c["number"], "amount": "99999.00"}]}
    r = client.post("/api/v1/erp/receipts", headers=rep1, json=batch).get_json()
    assert [x["status"] for x in r["items"]] == ["created", "error", "error"] and (r["created"], r["error"]) == (1, 2)
    assert "合同号不存在" in r["items"][1]["message"] and "超过未收金额" in r["items"][2]["message"]
    again = client.post("/api/v1/erp/receipts", headers=rep1, json=batch).get_json()
    assert again["items"][0]["status"] == "duplicate" and again["items"][0]["id"] == r["items"][0]["id"]
    assert client.get(f"/api/v1/contracts/{c['id']}", headers=rep1).get_json()["received"] == "1000.00"  # once, not twice

    o = client.post(f"/api/v1/contracts/{c['id']}/orders", headers=rep1,
                    json={"lines": [{"contract_line_id": c["lines"][0]["id"], "quantity": 4}]}).get_json()
    ship = {"items": [{"external_id": "CK-K3-77", "order_number": o["number"], "carrier": "德邦 DB001",
                       "lines": [{"product_code": wp["code"], "quantity": 2, "serial_nos": ["K3-SN-1", "K3-SN-2"]}]},
                      {"external_id": "CK-K3-78", "order_number": o["number"], "lines": [{"product_code": "NOT-ON-IT", "quantity": 1}]}]}
    s = client.post("/api/v1/erp/shipments", headers=rep1, json=ship).get_json()
    assert [x["status"] for x in s["items"]] == ["created", "error"] and "不在这张订单上" in s["items"][1]["message"]
    assert client.post("/api/v1/erp/shipments", headers=rep1, json=ship).get_json()["items"][0]["status"] == "duplicate"
    order = client.get(f"/api/v1/orders/{o['id']}", headers=rep1).get_json()
    assert order["status"] == "partial" and order["lines"][0]["delivered"] == "2"
    assert {a.serial_no for a in db.session.query(ProductArchive).filter_by(customer_id=customer.id)} == {"K3-SN-1", "K3-SN-2"}
    assert client.post("/api/v1/erp/shipments", headers=rep1, json={"items": []}).status_code == 422
    # one product over two lines of the 出库单 (two batches): summed and shipped against the order's one line
    split = client.post("/api/v1/erp/shipments", headers=rep1, json={"items": [
        {"external_id": "CK-K3-79", "order_number": o["number"], "lines": [{"product_code": wp["code"], "quantity": 3}]},
        {"external_id": "CK-K3-80", "order_number": o["number"], "lines": [
            {"product_code": wp["code"], "quantity": 1, "serial_nos": ["B1-001"]}, {"product_code": wp["code"], "quantity": 1,
                                                                                  "serial_nos": ["B2-001"]}]}]}).get_json()
    assert [x["status"] for x in split["items"]] == ["error", "created"] and "超出订单未发数量 1" in split["items"][0]["message"]
    order = client.get(f"/api/v1/orders/{o['id']}", headers=rep1).get_json()
    assert order["status"] == "delivered" and order["deliveries"][-1]["lines"][0]["serial_nos"] == ["B1-001", "B2-001"]

    new_part = client.put("/api/v1/erp/stock", headers=admin, json={"items": [{"code": "FLT-NEW", "on_hand": 5}]})
    assert new_part.status_code == 422 and "需要名称" in new_part.get_json()["error"]["message"]
    ok = client.put("/api/v1/erp/stock", headers=admin, json={"items": [{"code": "FLT-NEW", "on_hand": 5, "name": "新滤芯"},
                                                                         {"code": "FLT-NEW2", "on_hand": 0, "name": "备用滤芯"}]})
    assert ok.status_code == 200 and ok.get_json() == {"added": 2, "updated": 0}
    assert client.put("/api/v1/erp/stock", headers=admin, json={"items": [{"code": "FLT-NEW", "on_hand": 9}]}).get_json() == \
        {"added": 0, "updated": 1}
    assert client.put("/api/v1/erp/stock", headers=admin, json={"items": [{"code": "FLT-NEW", "on_hand": -1}]}).status_code == 422
    assert client.put("/api/v1/erp/stock", headers=rep1, json={"items": [{"code": "FLT-NEW", "on_hand": 1}]}).status_code == 403
