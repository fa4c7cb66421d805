"""Customers and contacts (seed 3: 客户管理): registration behind the collision check,
trading status, tags, contact relations, merging, and the customer 360 view."""
from __future__ import annotations

from sqlalchemy import func, inspect, or_, select, update

from crm_core import geo, jobs
from crm_core.clock import utcnow
from crm_core.context import service
from crm_core.customers import collision
from crm_core.customers.models import Contact, ContactRelation, Customer, ProductArchive
from crm_core.customers.segments import get_segment, segment_clause
from crm_core.customers.value import score_customers
from crm_core.db import Base, apply_changes, db, paginate
from crm_core.errors import Conflict, ValidationFailed
from crm_core.org.models import Employee, RecordShare
from crm_core.org.permissions import Actor, get_visible, scoped_select

COORD_SYSTEMS = geo.COORD_SYSTEMS
CUSTOMER_FIELDS = ("name", "kind", "phone", "email", "address", "source", "source_detail", "industry", "tags", "note")

# Other areas add sections to the 360 view (activities, opportunities, leads, followers, tickets, check-ins...)
# and figures to its "figures" block; customers imports none of them (docs/architecture.md).
_360_sections: dict[str, callable] = {}
_360_figures: list = []


def register_360_section(name: str, provider) -> None:
    """``provider(actor, customer) -> JSON-able`` adds ``name`` to the customer 360 view."""
    _360_sections[name] = provider


def register_360_figures(provider) -> None:
    """``provider(actor, customer) -> dict`` adds its keys to the 360 view's ``figures``."""
    _360_figures.append(provider)


def _owner(actor: Actor, owner_id: int | None, object_type: str) -> Employee:
    owner_id = owner_id or actor.employee_id
    if owner_id is None:
        raise ValidationFailed("当前用户没有关联职员，请指定负责人（owner_id）。", fields={"owner_id": "required"})
    owner = db.session.get(Employee, owner_id)
    if owner is None or owner.org_id != actor.org_id:
        raise ValidationFailed("负责人不存在。", fields={"owner_id": "unknown employee"})
    if owner.id != actor.employee_id:
        actor.require(object_type, "assign")
    return owner


def _apply_site(customer: Customer, site: dict | None) -> None:
    """Keep the site in the system it was entered in, plus its WGS-84 copy and H3 cell."""
    if site:
        system = site.get("coord_system") or "wgs84"
        try:
            lat, lng = geo.check(site.get("lat"), site.get("lng"), system)
        except geo.CoordinateError as exc:
            if str(exc) == "coord_system":
                raise ValidationFailed("坐标系只能是 wgs84、gcj02 或 bd09。", fields={"site.coord_system": "invalid"}) from None
            raise ValidationFailed("客户位置的经纬度不正确。", fields={"site": str(exc)}) from None
        customer.site_lat, customer.site_lng, customer.site_coord_system = lat, lng, system
        customer.site_wgs_lat, customer.site_wgs_lng = geo.to_wgs84(lat, lng, system)
        customer.site_cell = geo.cell_of(customer.site_wgs_lat, customer.site_wgs_lng)
    if site is not None and "radius_m" in site and site["radius_m"] is not None:
        customer.checkin_radius_m = int(site["radius_m"])


def _check_data(c: Customer, contact_phones: list[str] | None = None) -> dict:
    data = {"name": c.name, "kind": c.kind, "phone": c.phone, "email": c.email, "address": c.address}
    if contact_phones:
        data["contact_phones"] = contact_phones
    return data


@service
def create_customer(actor: Actor, data: dict, *, contacts: list[dict] | None = None,
                    score: bool = True) -> tuple[Customer, list]:
    """Register a customer (客户备案), optionally with contacts, behind the collision check.

    Returns ``(customer, hits)``: warn-rule hits come back with the new customer; a
    block-rule hit raises 409 with the hits. ``score=False``: the caller scores the value level
    itself (an import scores each batch in one pass instead of a job a customer).
    """
    actor.require("customer", "create")
    owner = _owner(actor, data.get("owner_id"), "customer")
    name = (data.get("name") or "").strip()
    if not name:
        raise ValidationFailed("客户名称不能为空。", fields={"name": "required"})
    customer = Customer(org_id=actor.org_id, owner_id=owner.id, department_id=owner.department_id, name=name,
                        kind=data.get("kind") or "company", trading=False, source=data.get("source") or "manual",
                        tags=list(data.get("tags") or []))
    for key in ("phone", "email", "address", "source_detail", "industry", "note"):
        setattr(customer, key, data.get(key))
    _apply_site(customer, data.get("site"))
    contacts = contacts or []
    check_data = _check_data(customer, [c.get("phone") for c in contacts if c.get("phone")])

    def save():
        db.session.add(customer)
        db.session.flush()
        for cdata in contacts:
            _new_contact(actor, customer, cdata, owner, flush=False)
        return customer  # guarded_save flushes the contacts with their index

    customer, hits = collision.guarded_save(actor, "customer", check_data, save)
    if score:
        jobs.enqueue(recompute_customer_value, customer.id)
    return customer, hits


def _new_contact(actor: Actor, customer: Customer, data: dict, owner: Employee | None = None,
                 flush: bool = True) -> Contact:
    owner = owner or db.session.get(Employee, customer.owner_id)
    name = (data.get("name") or "").strip()
    if not name:
        raise ValidationFailed("联系人姓名不能为空。", fields={"contacts.name": "required"})
    contact = Contact(org_id=customer.org_id, customer_id=customer.id, owner_id=customer.owner_id,
                      department_id=customer.department_id, name=name, interests=list(data.get("interests") or []))
    for key in ("phone", "email", "title", "gender", "birthday", "note", "is_primary"):
        if data.get(key) is not None:
            setattr(contact, key, data[key])
    db.session.add(contact)
    if flush:
        db.session.flush()
    return contact


@service
def update_customer(actor: Actor, customer_id: int, data: dict) -> tuple[Customer, list]:
    """Change a customer; a changed name or phone runs the collision check again."""
    customer = get_visible(actor, Customer, customer_id, action="edit")
    if customer.status != "active":
        raise Conflict("该客户已被合并，不能修改。")
    apply_changes(customer, data, CUSTOMER_FIELDS)
    _apply_site(customer, data.get("site"))
    if data.get("owner_id") and data["owner_id"] != customer.owner_id:
        owner = _owner(actor, data["owner_id"], "customer")
        actor.require("customer", "assign")
        customer.owner_id, customer.department_id = owner.id, owner.department_id
    phones = list(db.session.scalars(select(Contact.phone).where(Contact.customer_id == customer.id)))
    customer, hits = collision.guarded_save(actor, "customer", _check_data(customer, phones), lambda: customer,
                                            exclude_id=customer.id)
    return customer, hits


@service
def mark_trading(actor: Actor, customer_id: int, trading: bool = True) -> Customer:
    """Non-trading (潜在) → trading (交易) customer, an explicit step (e.g. on the first order)."""
    customer = get_visible(actor, Customer, customer_id, action="edit")
    customer.trading = trading
    db.session.flush()
    jobs.enqueue(recompute_customer_value, customer.id)
    return customer


def list_customers(actor: Actor, *, q: str | None = None, page: int = 1, per_page: int = 20, kind: str | None = None,
                   trading: bool | None = None, source: str | None = None, tag: str | None = None,
                   owner_id: int | None = None, value_level: str | None = None, needs_review: bool | None = None,
                   segment_id: int | None = None) -> tuple[list[Customer], int]:
    """The customers the actor may see, newest first, with filters."""
    stmt = scoped_select(actor, Customer).where(Customer.status == "active")
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Customer.name.like(like), Customer.phone.like(like)))
    if kind:
        stmt = stmt.where(Customer.kind == kind)
    if trading is not None:
        stmt = stmt.where(Customer.trading.is_(trading))
    if source:
        stmt = stmt.where(Customer.source == source)
    if owner_id:
        stmt = stmt.where(Customer.owner_id == owner_id)
    if value_level:
        stmt = stmt.where(Customer.value_level == value_level)
    if needs_review is not None:
        stmt = stmt.where(Customer.needs_review.is_(needs_review))
    if tag:
        stmt = stmt.where(func.cast(Customer.tags, db.String).like(f'%"{tag}"%'))
    if segment_id:
        stmt = stmt.where(segment_clause(actor, segment_id, "customer"))
    return paginate(stmt, Customer.id.desc(), page=page, per_page=per_page)


def get_customer(actor: Actor, customer_id: int) -> Customer:
    return get_visible(actor, Customer, customer_id)


# --- contacts ------------------------------------------------------------------------------
@service
def add_contact(actor: Actor, customer_id: int, data: dict) -> tuple[Contact, list]:
    """Add a contact to a customer; its phone takes part in the customer's collision check."""
    actor.require("contact", "create")
    customer = get_visible(actor, Customer, customer_id, action="edit")
    phones = list(db.session.scalars(select(Contact.phone).where(Contact.customer_id == customer.id)))
    if data.get("phone"):
        hits = collision.check(actor, "customer", {"phone": data["phone"]}, exclude_id=customer.id)
        collision.raise_if_blocked("customer", hits)
    else:
        hits = []
    contact = _new_contact(actor, customer, data)
    collision.index_record("customer", customer)
    try:
        collision.claim("customer", customer, _check_data(customer, phones + [contact.phone]))
    except collision.ClaimTaken:
        raise Conflict("撞单：另一位同事刚刚登记了相同的电话。", code="collision")
    return contact, hits


@service
def update_contact(actor: Actor, contact_id: int, data: dict) -> Contact:
    contact = get_visible(actor, Contact, contact_id, action="edit")
    apply_changes(contact, data, ("name", "phone", "email", "title", "gender", "birthday", "note", "is_primary", "interests"))
    db.session.flush()
    collision.index_record("customer", db.session.get(Customer, contact.customer_id))
    return contact


def list_contacts(actor: Actor, *, q: str | None = None, customer_id: int | None = None, page: int = 1,
                  per_page: int = 20, birthday_month: int | None = None, interest: str | None = None,
                  segment_id: int | None = None) -> tuple[list[Contact], int]:
    stmt = scoped_select(actor, Contact)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Contact.name.like(like), Contact.phone.like(like)))
    if customer_id:
        stmt = stmt.where(Contact.customer_id == customer_id)
    if birthday_month:
        stmt = stmt.where(func.extract("month", Contact.birthday) == birthday_month) if db.engine.dialect.name != "sqlite" \
            else stmt.where(func.strftime("%m", Contact.birthday) == f"{birthday_month:02d}")
    if interest:
        stmt = stmt.where(func.cast(Contact.interests, db.String).like(f'%"{interest}"%'))
    if segment_id:
        stmt = stmt.where(segment_clause(actor, segment_id, "contact"))
    return paginate(stmt, Contact.id.desc(), page=page, per_page=per_page)


@service
def relate_contacts(actor: Actor, from_id: int, to_id: int, relation: str, note: str | None = None) -> ContactRelation:
    """关系人: record how two contacts relate (both must be visible to the actor)."""
    if from_id == to_id:
        raise ValidationFailed("不能与自己建立关系。", fields={"to_contact_id": "same contact"})
    a = get_visible(actor, Contact, from_id, action="edit")
    get_visible(actor, Contact, to_id)
    relation = relation.strip()
    if db.session.scalar(select(ContactRelation.id).where(
            ContactRelation.from_contact_id == from_id, ContactRelation.to_contact_id == to_id,
            ContactRelation.relation == relation)) is not None:
        raise Conflict(f"这两位联系人已是「{relation}」关系。", code="duplicate_relation")
    rel = ContactRelation(org_id=a.org_id, from_contact_id=from_id, to_contact_id=to_id, relation=relation.strip(), note=note)
    db.session.add(rel)
    db.session.flush()
    return rel


def contact_relations(actor: Actor, contact_id: int) -> list[dict]:
    get_visible(actor, Contact, contact_id)
    rows = db.session.execute(
        select(ContactRelation, Contact).join(Contact, Contact.id == ContactRelation.to_contact_id)
        .where(ContactRelation.from_contact_id == contact_id)).all()
    back = db.session.execute(
        select(ContactRelation, Contact).join(Contact, Contact.id == ContactRelation.from_contact_id)
        .where(ContactRelation.to_contact_id == contact_id)).all()
    return ([{"id": r.id, "relation": r.relation, "direction": "to", "contact": {"id": c.id, "name": c.name}} for r, c in rows]
            + [{"id": r.id, "relation": r.relation, "direction": "from", "contact": {"id": c.id, "name": c.name}}
               for r, c in back])


# --- merge ---------------------------------------------------------------------------------
def _customer_references():
    """Every (model, column) that points at customer.id — found from the metadata, so tables
    added by later features (tickets, followers, check-ins) move too."""
    refs = []
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if cls is Customer:
            continue
        for col in inspect(cls).columns:
            for fk in col.foreign_keys:
                if fk.column.table.name == "customer" and fk.column.name == "id":
                    refs.append((cls, col))
    return refs


def _merge_pair(actor: Actor, keep_id: int, merge_id: int) -> tuple[Customer, Customer]:
    actor.require("customer", "edit")
    actor.require("customer", "delete")
    if keep_id == merge_id:
        raise ValidationFailed("不能把客户合并到自己。", fields={"merge_id": "same customer"})
    keep = get_visible(actor, Customer, keep_id, action="edit")
    gone = get_visible(actor, Customer, merge_id, action="edit")
    if keep.status != "active" or gone.status != "active":
        raise Conflict("已合并的客户不能再次合并。")
    return keep, gone


def merge_preview(actor: Actor, keep_id: int, merge_id: int) -> dict:
    """What :func:`merge_customers` would do, without doing it: the rows that would move per table, the
    fields the survivor would take over, the tags after. The same checks as the merge."""
    keep, gone = _merge_pair(actor, keep_id, merge_id)
    moves: dict[str, int] = {}
    for model, col in _customer_references():
        n = db.session.scalar(select(func.count()).select_from(model).where(col == gone.id)) or 0
        if n:
            moves[model.__tablename__] = moves.get(model.__tablename__, 0) + n
    fills = {k: getattr(gone, k) for k in ("phone", "email", "address", "industry")
             if not getattr(keep, k) and getattr(gone, k)}
    return {"kept": customer_dict(keep), "merged": customer_dict(gone), "moves": moves, "fills": fills,
            "tags": sorted(set(keep.tags or []) | set(gone.tags or []))}


@service
def merge_customers(actor: Actor, keep_id: int, merge_id: int) -> dict:
    """客户合并: move everything linked to ``merge_id`` onto ``keep_id`` and retire it.

    Contacts, activities, opportunities, leads, product archives and anything else with a
    customer reference (tickets, followers, check-ins...) move; the merged customer keeps
    its row with status ``merged`` and ``merged_into_id``; each moved row is audited.
    """
    keep, gone = _merge_pair(actor, keep_id, merge_id)
    moved: dict[str, int] = {}
    for model, col in _customer_references():
        rows = db.session.scalars(select(model).where(col == gone.id)).all()
        for row in rows:  # ORM updates, so each moved row is audited
            setattr(row, col.key, keep.id)
        if rows:
            moved[model.__tablename__] = moved.get(model.__tablename__, 0) + len(rows)
    db.session.execute(update(RecordShare).where(RecordShare.object_type == "customer", RecordShare.object_id == gone.id)
                       .values(object_id=keep.id))
    for key in ("phone", "email", "address", "industry"):
        if not getattr(keep, key) and getattr(gone, key):
            setattr(keep, key, getattr(gone, key))
    keep.tags = sorted(set(keep.tags or []) | set(gone.tags or []))
    keep.trading = keep.trading or gone.trading
    gone.status, gone.merged_into_id = "merged", keep.id
    db.session.flush()
    collision.unindex_record("customer", gone.id)
    collision.index_record("customer", keep)
    jobs.enqueue(recompute_customer_value, keep.id)
    return {"kept": keep.id, "merged": gone.id, "moved": moved}


# --- the 360 view --------------------------------------------------------------------------
def customer_360(actor: Actor, customer_id: int) -> dict:
    """客户360视图: profile, contacts, product archives with warranty, plus the sections and figures
    other areas register (recent activities, opportunities, leads, followers, tickets...)."""
    customer = get_visible(actor, Customer, customer_id)
    today = utcnow().date()
    contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id)).all()
    archives = db.session.scalars(select(ProductArchive).where(ProductArchive.customer_id == customer.id)
                                  .order_by(ProductArchive.warranty_until.desc()).limit(100)).all()
    owner = db.session.get(Employee, customer.owner_id) if customer.owner_id else None
    figures = {"contacts": len(contacts), "archives_in_warranty": sum(1 for a in archives if a.warranty_until >= today)}
    for provider in _360_figures:
        figures.update(provider(actor, customer))
    out = {
        "profile": {**customer_dict(customer), "owner": {"id": owner.id, "name": owner.name, "phone": owner.phone} if owner else None},
        "contacts": [contact_dict(c) for c in contacts],
        "product_archives": [{"id": a.id, "serial_no": a.serial_no, "product": a.product.name, "sold_on": a.sold_on.isoformat(),
                              "warranty_until": a.warranty_until.isoformat(), "in_warranty": a.warranty_until >= today}
                             for a in archives],
        "figures": figures,
    }
    for name, provider in _360_sections.items():
        out[name] = provider(actor, customer)
    return out


def segment_members(actor: Actor, segment_id: int, page: int = 1, per_page: int = 20):
    """Members of a segment within the actor's data scope (campaigns use a system actor: the whole org)."""
    seg = get_segment(actor, segment_id)
    if seg.target == "customer":
        return list_customers(actor, segment_id=seg.id, page=page, per_page=per_page)
    return list_contacts(actor, segment_id=seg.id, page=page, per_page=per_page)


# --- value (scheduled) ---------------------------------------------------------------------
@jobs.job
def recompute_customer_value(customer_id: int) -> None:
    """Recompute one customer's value score and level (on change)."""
    customer = db.session.get(Customer, customer_id)
    if customer is not None:
        score_customers(customer.org_id, [customer_id])


def customer_names(ids) -> dict[int, str]:
    """Customer id -> name, in one query (for lists that show whose record a row is)."""
    ids = {i for i in ids if i}
    return dict(db.session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all()) if ids else {}


def customer_dict(c: Customer) -> dict:
    return {
        "id": c.id, "name": c.name, "kind": c.kind, "trading": c.trading, "status": c.status, "phone": c.phone,
        "email": c.email, "address": c.address,
        "site": ({"lat": c.site_lat, "lng": c.site_lng, "coord_system": c.site_coord_system}
                 if c.site_lat is not None else None),
        "source": c.source, "source_detail": c.source_detail, "industry": c.industry, "tags": c.tags or [],
        "owner_id": c.owner_id, "department_id": c.department_id, "needs_review": c.needs_review,
        "value_score": c.value_score, "value_level": c.value_level, "note": c.note,
        "created_at": c.created_at.isoformat() + "Z" if c.created_at else None,
    }


def contact_dict(c: Contact) -> dict:
    return {"id": c.id, "customer_id": c.customer_id, "name": c.name, "phone": c.phone, "email": c.email, "title": c.title,
            "gender": c.gender, "birthday": c.birthday.isoformat() if c.birthday else None, "interests": c.interests or [],
            "is_primary": c.is_primary, "owner_id": c.owner_id, "note": c.note}


__all__ = ["create_customer", "update_customer", "mark_trading", "list_customers", "get_customer", "add_contact",
           "update_contact", "list_contacts", "relate_contacts", "merge_customers", "customer_360", "customer_dict",
           "contact_dict", "register_360_section", "register_360_figures", "segment_members"]
