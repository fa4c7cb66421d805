"""Page views in Redis mode: the material page writes nothing to the database on the request.

A view, its confirmation by the page's script, and a forward are appended to one Redis list
(``RPUSH``, one round trip); a batch writer job moves them into the database in order — so a
view is always written before its confirmation and a parent's node before its children's. The
viewer's share token is known at once without the database: an HMAC of material, campaign and
viewer. The writer is safe to re-run after a crash (visits are keyed, nodes unique per viewer,
confirmations idempotent). In embedded mode (no Redis) views are written on the request.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

from flask import current_app
from sqlalchemy import select

from crm_core import jobs
from crm_core.clock import utcnow
from crm_core.db import db, insert_for
from materials.models import Material, ShareNode, Visit

QUEUE_KEY = "wxcrm:materials:events"
LOCK_KEY = "wxcrm:materials:events:lock"
DRAIN_DELAY = 1.0
_materials: dict[str, tuple[float, dict]] = {}
MATERIAL_TTL = 10.0  # seconds a worker serves a material page from memory (edits show within this)


def redis():
    return current_app.extensions.get("wxcrm_redis")


def node_token(material_id: int, campaign_key: int, viewer_key: str) -> str:
    mac = hmac.new(current_app.config["SECRET_KEY"].encode(), f"{material_id}:{campaign_key}:{viewer_key}".encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac)[:16].decode()


def material_view(code: str) -> dict | None:
    """The published material for a page view, from a short in-process cache."""
    now = time.monotonic()
    hit = _materials.get(code)
    if hit and now - hit[0] < MATERIAL_TTL:
        return hit[1]
    m = db.session.scalars(select(Material).where(Material.code == code)).first()
    view = None if m is None else {"id": m.id, "org_id": m.org_id, "code": m.code, "title": m.title, "summary": m.summary,
                                   "body_html": m.body_html, "cover_media_id": m.cover_media_id, "version": m.version,
                                   "status": m.status}
    if len(_materials) > 5000:
        _materials.clear()
    _materials[code] = (now, view)
    return view


def push(event: dict) -> None:
    conn = redis()
    if conn.rpush(QUEUE_KEY, json.dumps(event, ensure_ascii=False)) == 1:
        try:
            jobs.submit_now(drain_events, delay=DRAIN_DELAY)
        except Exception:  # the periodic sweep writes them later
            pass


def queue_view(m: dict, campaign_id: int | None, viewer_key: str, openid: str | None, via_token: str | None, source: str,
               user_agent: str | None) -> tuple[str, dict]:
    from materials.services import _campaign_materials, is_bot

    if campaign_id is not None:
        org_id, mids = _campaign_materials(campaign_id)
        if org_id != m["org_id"] or m["id"] not in mids:
            campaign_id = None
    key = campaign_id or 0
    token = node_token(m["id"], key, viewer_key)
    vkey = uuid.uuid4().hex
    push({"t": "visit", "vkey": vkey, "material_id": m["id"], "campaign_id": campaign_id, "viewer_key": viewer_key,
          "openid": openid, "token": token, "via": (via_token or "")[:24] or None,
          "source": source if source in ("link", "qr", "direct") else "link", "bot": is_bot(user_agent),
          "ua": (user_agent or "")[:300], "at": utcnow().isoformat()})
    return vkey, {"token": token, "campaign_id": campaign_id}


@jobs.job
def drain_events() -> int:
    conn = current_app.extensions.get("wxcrm_redis")
    return drain(conn) if conn is not None else 0


@jobs.periodic(every=30)
def sweep_events() -> int:
    return drain_events()


def drain(conn, batch: int = 500, wait: float = 0.0) -> int:
    """Write queued events in order (one writer at a time; ``wait`` seconds for a busy one)."""

    from crm_core.redisqueue import drain_list
    from materials.services import confirm_visit, record_forward

    def handle(items):
        events = [json.loads(raw) for raw in items]
        _write_visits([e for e in events if e["t"] == "visit"])
        for ev in events:  # confirmations and forwards come after their views in the queue
            if ev["t"] == "seen":
                vid = db.session.scalar(select(Visit.id).where(Visit.key == ev["vkey"]))
                if vid is not None:
                    confirm_visit(vid)
            elif ev["t"] == "share":
                if db.session.scalar(select(ShareNode.id).where(ShareNode.token == ev["token"])) is not None:
                    record_forward(ev["token"], ev["channel"])
        db.session.commit()

    return drain_list(conn, QUEUE_KEY, LOCK_KEY, handle, batch=batch, wait=wait)


def _write_visits(events: list[dict]) -> None:
    """A batch of views: one query finds the nodes that exist (tokens are deterministic); new
    viewers' nodes go in with multi-row inserts, a wave at a time (a node whose parent is new in
    this batch waits for the wave that creates the parent); the visits go in with one insert."""
    from datetime import datetime

    if not events:
        return
    t = ShareNode.__table__
    cols = (t.c.id, t.c.token, t.c.material_id, t.c.campaign_key, t.c.depth, t.c.path)
    tokens = {e["token"] for e in events} | {e["via"] for e in events if e.get("via")}
    nodes = {r.token: r for r in db.session.execute(select(*cols).where(t.c.token.in_(tokens)))}
    pending = {}
    for ev in events:
        if ev["token"] not in nodes and ev["token"] not in pending:
            pending[ev["token"]] = ev
    while pending:
        wave = [ev for ev in pending.values() if not ev.get("via") or ev["via"] in nodes or ev["via"] not in pending]
        if not wave:  # cannot happen for tokens minted by the server; forged chains lose their parent
            wave = list(pending.values())
        rows = []
        for ev in wave:
            key = ev["campaign_id"] or 0
            via = nodes.get(ev.get("via")) if ev.get("via") else None
            if via is not None and (via.material_id != ev["material_id"] or via.campaign_key != key):
                via = None
            rows.append(dict(token=ev["token"], material_id=ev["material_id"], campaign_id=ev["campaign_id"], campaign_key=key,
                             viewer_key=ev["viewer_key"], openid=ev.get("openid"), parent_id=via.id if via else None,
                             depth=via.depth + 1 if via else 0, path=f"{via.path}{via.id}/" if via else "/", counted=False,
                             created_at=datetime.fromisoformat(ev["at"])))
        made = db.session.execute(insert_for(t).on_conflict_do_nothing().returning(*cols), rows).all()
        nodes.update({r.token: r for r in made})
        missing = [ev["token"] for ev in wave if ev["token"] not in nodes]
        if missing:  # another writer created them: read them
            nodes.update({r.token: r for r in db.session.execute(select(*cols).where(t.c.token.in_(missing)))})
        for ev in wave:
            pending.pop(ev["token"], None)
    visits = []
    for ev in events:
        key = ev["campaign_id"] or 0
        via = nodes.get(ev.get("via")) if ev.get("via") else None
        if via is not None and (via.material_id != ev["material_id"] or via.campaign_key != key):
            via = None
        node = nodes[ev["token"]]
        visits.append(dict(key=ev["vkey"], material_id=ev["material_id"], campaign_id=ev["campaign_id"], node_id=node.id,
                           via_node_id=via.id if via is not None and via.id != node.id else None, source=ev["source"],
                           is_bot=ev["bot"], js_confirmed=False, counted=False, user_agent=ev["ua"],
                           created_at=datetime.fromisoformat(ev["at"])))
    db.session.execute(insert_for(Visit.__table__).on_conflict_do_nothing(index_elements=["key"]), visits)
