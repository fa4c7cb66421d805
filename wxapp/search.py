"""Global search (the console's top bar, ``GET /api/v1/search``): customers, contacts, leads and tickets by name, phone
or number, each through its own area's list call — so each kind is searched within the caller's data scope and only
for the roles that may see it. This module only puts the four answers side by side."""
from __future__ import annotations

from crm_core.customers import customers as customer_svc
from crm_core.org.permissions import Actor
from crm_core.sales.leads import list_leads
from crm_core.service.queries import list_tickets

MIN_LENGTH = 2
KINDS = (("customer", "客户"), ("contact", "联系人"), ("lead", "线索"), ("ticket", "服务工单"))


def everything(actor: Actor, q: str, per_kind: int = 5) -> dict:
    """Up to ``per_kind`` of each kind the actor may see, newest first, with how many match in all."""
    q = (q or "").strip()[:100]
    out: dict = {"q": q, "sections": []}
    if len(q) < MIN_LENGTH:
        return out
    for kind, label in KINDS:
        if not actor.can(kind, "view"):
            continue
        items, total = _search(actor, kind, q, per_kind)
        out["sections"].append({"kind": kind, "label": label, "total": total, "items": items})
    return out


def _search(actor: Actor, kind: str, q: str, n: int) -> tuple[list[dict], int]:
    if kind == "customer":
        rows, total = customer_svc.list_customers(actor, q=q, page=1, per_page=n)
        return [{"id": c.id, "title": c.name, "subtitle": " · ".join(x for x in (c.phone, c.address) if x)}
                for c in rows], total
    if kind == "contact":
        rows, total = customer_svc.list_contacts(actor, q=q, page=1, per_page=n)
        names = customer_svc.customer_names({c.customer_id for c in rows})
        return [{"id": c.id, "title": c.name, "customer_id": c.customer_id,
                 "subtitle": " · ".join(x for x in (names.get(c.customer_id), c.title, c.phone) if x)} for c in rows], total
    if kind == "lead":
        rows, total = list_leads(actor, q=q, page=1, per_page=n)
        return [{"id": ld.id, "title": ld.name,
                 "subtitle": " · ".join(x for x in (ld.company, ld.phone) if x)} for ld in rows], total
    rows, total = list_tickets(actor, q=q, page=1, per_page=n)
    customers = customer_svc.customer_names({t.customer_id for t in rows})
    return [{"id": t.id, "title": t.number, "subtitle": " · ".join(x for x in (customers.get(t.customer_id),
                                                                             (t.description or "")[:40]) if x)}
            for t in rows], total
