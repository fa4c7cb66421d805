"""Collision check (撞单): configurable match rules on leads, customers and opportunities.

Every saved lead, customer (with its contacts' phones) and opportunity is indexed as
normalised keys (:class:`CollisionKey`) and, for names, character bigrams
(:class:`CollisionGram`), so a check is a few index lookups instead of a scan. A rule says
which fields of the object being saved are matched how (``exact``, ``phone``, ``company``,
``similar`` with a threshold), against which object types, whether any or all fields must
match, which fields a hit shows, and whether a hit warns or blocks the save.

Hits on records outside the user's data scope show only the owner and a masked name.
Blocking rules also *claim* their keys (:class:`CollisionClaim`, unique per organisation),
so two simultaneous saves of the same phone produce one record and one hit even when both
checks ran before either committed.
"""
from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from crm_core import normalize
from crm_core.customers.models import CollisionClaim, CollisionGram, CollisionKey, CollisionRule, Contact, Customer
from crm_core.db import begin_savepoint, db
from crm_core.errors import Conflict, ValidationFailed
from crm_core.org import organization
from crm_core.org.models import Employee

OBJECT_TYPES = ("lead", "customer", "opportunity")
METHODS = ("exact", "phone", "company", "similar")
# object type -> model; the sales area registers "lead" and "opportunity" (customers imports no sales code)
MODELS: dict[str, type] = {"customer": Customer}


def register_object(object_type: str, model: type) -> None:
    """Make ``object_type`` (one of OBJECT_TYPES) checkable and indexable: its rows are ``model``."""
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"unknown collision object type {object_type!r}")
    MODELS[object_type] = model
LABELS = {"lead": "线索", "customer": "客户", "opportunity": "商机"}
GRAM_DIMENSIONS = ("company", "opportunity")

# field of each object type -> the dimension it is compared in (so lead.company meets customer.name)
FIELDS: dict[str, dict[str, str]] = {
    "lead": {"name": "person", "company": "company", "phone": "phone", "email": "email", "address": "address"},
    "customer": {"name": "company", "phone": "phone", "email": "email", "address": "address"},
    "opportunity": {"name": "opportunity", "customer_id": "customer"},
}
RESULT_FIELDS = {
    "lead": ("name", "company", "phone", "status", "owner", "created_at"),
    "customer": ("name", "phone", "address", "owner", "trading", "created_at"),
    "opportunity": ("name", "customer_id", "amount", "status", "owner", "created_at"),
}
DEFAULT_TARGETS = {"lead": ["lead", "customer"], "customer": ["customer"], "opportunity": ["opportunity"]}

DEFAULT_RULES = [
    {"object_type": "lead", "name": "线索：电话或公司名称相近", "match": "any", "action": "warn", "targets": ["lead", "customer"],
     "fields": [{"field": "phone", "method": "phone"}, {"field": "company", "method": "similar", "threshold": 0.8}],
     "result_fields": ["name", "company", "phone", "owner", "status"]},
    {"object_type": "customer", "name": "客户：电话或名称相同", "match": "any", "action": "block", "targets": ["customer"],
     "fields": [{"field": "phone", "method": "phone"}, {"field": "name", "method": "company"}],
     "result_fields": ["name", "phone", "owner", "trading"]},
    {"object_type": "opportunity", "name": "商机：同一客户下名称相近", "match": "all", "action": "warn", "targets": ["opportunity"],
     "fields": [{"field": "customer_id", "method": "exact"}, {"field": "name", "method": "similar", "threshold": 0.8}],
     "result_fields": ["name", "amount", "status", "owner"]},
]


@dataclass
class Hit:
    object_type: str
    record_id: int
    rule_id: int
    rule_name: str
    action: str
    matched: list[str]
    score: float | None = None
    visible: bool = False
    display: dict = field(default_factory=dict)
    result_fields: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"object_type": self.object_type, "id": self.record_id if self.visible else None,
                "rule": {"id": self.rule_id, "name": self.rule_name, "action": self.action},
                "matched_fields": self.matched, "score": round(self.score, 3) if self.score is not None else None,
                "visible": self.visible, "record": self.display}


# --- rules ---------------------------------------------------------------------------------
def validate_rule(data: dict) -> dict:
    """Check a rule definition; 422 naming what is wrong."""
    errors = {}
    obj = data.get("object_type")
    if obj not in OBJECT_TYPES:
        errors["object_type"] = f"one of {', '.join(OBJECT_TYPES)}"
    fields = data.get("fields") or []
    if not fields:
        errors["fields"] = "at least one field"
    for i, spec in enumerate(fields):
        if obj in FIELDS and spec.get("field") not in FIELDS[obj]:
            errors[f"fields.{i}.field"] = f"one of {', '.join(FIELDS[obj])}"
        if spec.get("method") not in METHODS:
            errors[f"fields.{i}.method"] = f"one of {', '.join(METHODS)}"
        if spec.get("method") == "similar":
            t = spec.get("threshold", 0.8)
            if not isinstance(t, (int, float)) or not 0.3 <= t <= 1:
                errors[f"fields.{i}.threshold"] = "between 0.3 and 1"
    for t in data.get("targets") or []:
        if t not in OBJECT_TYPES:
            errors["targets"] = f"each one of {', '.join(OBJECT_TYPES)}"
    if data.get("action", "warn") not in ("warn", "block"):
        errors["action"] = "warn or block"
    if data.get("match", "any") not in ("any", "all"):
        errors["match"] = "any or all"
    if errors:
        raise ValidationFailed("撞单规则设置有误。", fields=errors)
    return data


def ensure_default_rules(org_id: int) -> list[CollisionRule]:
    """Give an organisation the default rules the first time it needs them."""
    existing = db.session.scalars(select(CollisionRule).where(CollisionRule.org_id == org_id)).all()
    if existing:
        return list(existing)
    rules = [CollisionRule(org_id=org_id, **spec) for spec in DEFAULT_RULES]
    db.session.add_all(rules)
    db.session.flush()
    return rules


_rules_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar("collision_rules_cache", default=None)


@contextmanager
def rules_held():
    """Read each organisation's rules once inside this block (an import checks thousands of rows
    against rules nobody changes meanwhile; everywhere else every check reads them afresh)."""
    token = _rules_cache.set({})
    try:
        yield
    finally:
        _rules_cache.reset(token)


def active_rules(org_id: int, object_type: str) -> list[CollisionRule]:
    """The organisation's active rules for ``object_type`` (one query; defaults on first use)."""
    cache = _rules_cache.get()
    if cache is not None and (org_id, object_type) in cache:
        return cache[(org_id, object_type)]
    rules = sorted((r for r in ensure_default_rules(org_id) if r.object_type == object_type and r.active),
                   key=lambda r: r.id)
    if cache is not None:
        cache[(org_id, object_type)] = rules
    return rules


# --- keys ----------------------------------------------------------------------------------
def _norm(method: str, value) -> str:
    if value is None or value == "":
        return ""
    value = str(value)
    if method == "phone":
        return normalize.phone(value)
    if method in ("company", "similar"):
        return normalize.company(value)
    return normalize.basic(value)


def record_values(object_type: str, obj) -> dict[str, list[str]]:
    """The raw values of a record per dimension (a customer's phones include its contacts')."""
    out: dict[str, list[str]] = {}
    if object_type == "lead":
        out = {"person": [obj.name], "company": [obj.company], "phone": [obj.phone], "email": [obj.email],
               "address": [obj.address]}
    elif object_type == "customer":
        phones = [obj.phone] + list(db.session.scalars(select(Contact.phone).where(Contact.customer_id == obj.id)))
        out = {"company" if obj.kind == "company" else "person": [obj.name], "phone": phones, "email": [obj.email],
               "address": [obj.address]}
    elif object_type == "opportunity":
        out = {"opportunity": [obj.name], "customer": [str(obj.customer_id)]}
    return {k: [v for v in vs if v] for k, vs in out.items()}


def _keys_for(values: dict[str, list[str]]) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    keys: set[tuple[str, str, str]] = set()
    grams: set[tuple[str, str]] = set()
    for dimension, raw_values in values.items():
        for raw in raw_values:
            keys.add((dimension, "exact", normalize.basic(raw)[:300]))
            if dimension == "phone":
                p = normalize.phone(raw)
                if p:
                    keys.add((dimension, "phone", p))
            if dimension in GRAM_DIMENSIONS or dimension == "person":
                c = normalize.company(raw) if dimension != "person" else normalize.basic(raw)
                if c:
                    keys.add((dimension, "company", c[:300]))
                    if dimension in GRAM_DIMENSIONS:
                        grams.update((dimension, g) for g in normalize.bigrams(c))
    return keys, grams


def index_record(object_type: str, obj, fresh: bool = False) -> None:
    """(Re)write the match keys of one record. Services call this after every save
    (``fresh``: the record was created in this transaction, so it has no keys to remove)."""
    db.session.flush()
    if not fresh:
        db.session.execute(delete(CollisionKey).where(CollisionKey.object_type == object_type, CollisionKey.record_id == obj.id))
        db.session.execute(delete(CollisionGram).where(CollisionGram.object_type == object_type,
                                                       CollisionGram.record_id == obj.id))
    if object_type == "customer" and getattr(obj, "status", "active") != "active":
        return  # merged customers no longer collide
    keys, grams = _keys_for(record_values(object_type, obj))
    if keys:
        db.session.connection().execute(insert(CollisionKey.__table__), [  # Core: the ORM bulk path costs more than the insert
            {"org_id": obj.org_id, "object_type": object_type, "record_id": obj.id, "dimension": d, "method": m, "value": v}
            for d, m, v in sorted(keys)])
    if grams:
        db.session.connection().execute(insert(CollisionGram.__table__), [
            {"org_id": obj.org_id, "object_type": object_type, "record_id": obj.id, "dimension": d, "gram": g}
            for d, g in sorted(grams)])


def unindex_record(object_type: str, record_id: int) -> None:
    for model in (CollisionKey, CollisionGram, CollisionClaim):
        db.session.execute(delete(model).where(model.object_type == object_type, model.record_id == record_id))


# --- checking ------------------------------------------------------------------------------
def _dimension(object_type: str, field_name: str, data: dict) -> str:
    dim = FIELDS[object_type][field_name]
    if object_type == "customer" and field_name == "name" and data.get("kind") == "person":
        return "person"
    return dim


def _values(data: dict, field_name: str, object_type: str) -> list[str]:
    value = data.get(field_name)
    values = [value] if value not in (None, "") else []
    if object_type == "customer" and field_name == "phone":
        values += [p for p in data.get("contact_phones", []) if p]
    return [str(v) for v in values]


def _lookup(org_id: int, target: str, dimension: str, method: str, values: list[str], threshold: float
            ) -> dict[int, float | None]:
    """Record ids of ``target`` matching any of ``values``, with a similarity score for ``similar``."""
    found: dict[int, float | None] = {}
    if method == "similar":
        for raw in values:
            norm = normalize.company(raw)
            grams = normalize.bigrams(norm)
            if not grams:
                continue
            need = max(1, math.ceil(threshold * len(grams) / 2))
            candidates = db.session.execute(
                select(CollisionGram.record_id).where(
                    CollisionGram.org_id == org_id, CollisionGram.gram.in_(sorted(grams)),
                    CollisionGram.object_type == target, CollisionGram.dimension == dimension)
                .group_by(CollisionGram.record_id).having(func.count() >= need)
                .order_by(func.count().desc()).limit(200)
            ).scalars().all()
            if not candidates:
                continue
            names = db.session.execute(select(CollisionKey.record_id, CollisionKey.value).where(
                CollisionKey.object_type == target, CollisionKey.record_id.in_(candidates),
                CollisionKey.dimension == dimension, CollisionKey.method == "company")).all()
            for rid, name in names:
                score = normalize.similarity(norm, name)
                if score >= threshold and score > (found.get(rid) or 0):
                    found[rid] = score
        return found
    keys = {_norm(method, v) for v in values} - {""}
    if not keys:
        return found
    lookup_method = "exact" if method == "exact" else method
    rows = db.session.scalars(select(CollisionKey.record_id).where(
        CollisionKey.org_id == org_id, CollisionKey.dimension == dimension, CollisionKey.method == lookup_method,
        CollisionKey.value.in_(sorted(keys)), CollisionKey.object_type == target)).all()
    return {rid: None for rid in rows}


def check(actor, object_type: str, data: dict, exclude_id: int | None = None) -> list[Hit]:
    """Run every active rule of ``object_type`` against ``data``; hits, blocking ones first."""
    hits: dict[tuple[str, int, int], Hit] = {}
    for rule in active_rules(actor.org_id, object_type):
        for target in rule.targets or DEFAULT_TARGETS[object_type]:
            per_field: list[tuple[str, dict[int, float | None]]] = []
            for spec in rule.fields:
                fname, method = spec["field"], spec["method"]
                values = _values(data, fname, object_type)
                if not values:
                    per_field.append((fname, {}))
                    continue
                dimension = _dimension(object_type, fname, data)
                per_field.append((fname, _lookup(actor.org_id, target, dimension, method, values,
                                                 float(spec.get("threshold", 0.8)))))
            if rule.match == "all":
                common = set.intersection(*(set(m) for _, m in per_field)) if per_field else set()
                matched_ids = {rid: [f for f, _ in per_field] for rid in common}
            else:
                matched_ids = {}
                for fname, m in per_field:
                    for rid in m:
                        matched_ids.setdefault(rid, []).append(fname)
            for rid, fields in matched_ids.items():
                if target == object_type and rid == exclude_id:
                    continue
                scores = [m[rid] for _, m in per_field if rid in m and m[rid] is not None]
                hits[(target, rid, rule.id)] = Hit(target, rid, rule.id, rule.name, rule.action, fields,
                                                   max(scores) if scores else None,
                                                   result_fields=rule.result_fields or list(RESULT_FIELDS[target]))
    result = list(hits.values())
    _describe(actor, result)
    result.sort(key=lambda h: (h.action != "block", -(h.score or 1.0), h.record_id))
    return result


def _describe(actor, hits: list[Hit]) -> None:
    """Fill what each hit may show: chosen fields when visible, else owner and a masked name."""
    from crm_core.errors import DomainError
    from crm_core.org.permissions import visible_clause

    by_type: dict[str, set[int]] = {}
    for h in hits:
        by_type.setdefault(h.object_type, set()).add(h.record_id)
    for target, ids in by_type.items():
        model = MODELS[target]
        try:
            if not actor.can(target, "view"):
                raise DomainError("no view permission")
            visible = set(db.session.scalars(select(model.id).where(model.id.in_(ids), visible_clause(actor, model))))
        except DomainError:
            visible = set()
        rows = {r.id: r for r in db.session.scalars(select(model).where(model.id.in_(ids)))}
        owners = dict(db.session.execute(select(Employee.id, Employee.name).where(
            Employee.id.in_({r.owner_id for r in rows.values() if r.owner_id}))).all())
        for h in hits:
            if h.object_type != target or h.record_id not in rows:
                continue
            rec = rows[h.record_id]
            owner = owners.get(rec.owner_id, "")
            if h.record_id in visible:
                h.visible = True
                out = {}
                for f in h.result_fields:
                    if f == "owner":
                        out["owner"] = owner
                    elif hasattr(rec, f):
                        v = getattr(rec, f)
                        out[f] = v.isoformat() if hasattr(v, "isoformat") else (float(v) if hasattr(v, "as_tuple") else v)
                out["id"] = rec.id
                h.display = out
            else:
                name = getattr(rec, "company", None) or rec.name
                h.display = {"owner": owner, "name": normalize.mask_name(name)}


def blocking(hits: list[Hit]) -> list[Hit]:
    return [h for h in hits if h.action == "block"]


def raise_if_blocked(object_type: str, hits: list[Hit]) -> None:
    blocked = blocking(hits)
    if blocked:
        first = blocked[0]
        who = first.display.get("owner") or "其他同事"
        raise Conflict(f"撞单：与已有{LABELS[first.object_type]}重复（负责人：{who}），按「{first.rule_name}」规则不允许保存。",
                       code="collision", extra={"hits": [h.to_dict() for h in hits]})


def claims_for(object_type: str, data: dict, org_id: int) -> list[str]:
    """Keys that blocking rules reserve for this record."""
    out = []
    # keyed by object type, field, method and value (not by rule id), so two rules that block
    # on the same thing share a claim
    for rule in active_rules(org_id, object_type):
        if rule.action != "block":
            continue
        parts_per_field = []
        for spec in rule.fields:
            method = "company" if spec["method"] == "similar" else spec["method"]
            values = sorted({_norm(method, v) for v in _values(data, spec["field"], object_type)} - {""})
            parts_per_field.append([(spec["field"], v) for v in values])
        if rule.match == "all":
            if all(parts_per_field):
                combo = "&".join(f"{s['field']}:{s['method']}={vs[0][1]}" for s, vs in zip(rule.fields, parts_per_field))
                out.append(f"{object_type}|{combo}"[:400])
        else:
            for spec, parts in zip(rule.fields, parts_per_field):
                out.extend(f"{object_type}|{f}:{spec['method']}={v}"[:400] for f, v in parts)
    return sorted(set(out))


def claim(object_type: str, obj, data: dict, fresh: bool = False, savepoint: bool = True) -> None:
    """Reserve the record's blocking keys; a concurrent save of the same key fails here.

    Raises :class:`ClaimTaken` so the caller can re-run the check and answer 409 (``savepoint=False``:
    the caller already holds one it rolls back).
    """
    if not fresh:
        db.session.execute(delete(CollisionClaim).where(CollisionClaim.object_type == object_type,
                                                        CollisionClaim.record_id == obj.id))
    keys = claims_for(object_type, data, obj.org_id)
    if not keys:
        return
    rows = [{"org_id": obj.org_id, "claim": k, "object_type": object_type, "record_id": obj.id} for k in keys]
    try:
        if savepoint:
            with begin_savepoint():
                db.session.connection().execute(insert(CollisionClaim.__table__), rows)
        else:
            db.session.connection().execute(insert(CollisionClaim.__table__), rows)
    except IntegrityError:
        raise ClaimTaken() from None


class ClaimTaken(Exception):
    """Another record holds one of this record's blocking keys (committed meanwhile)."""


def guarded_save(actor, object_type: str, data: dict, save, exclude_id: int | None = None):
    """Check, save, index and claim, race-free: ``save()`` creates or updates the record
    and returns it. Returns ``(record, hits)``; raises 409 when a blocking rule matches,
    including when a concurrent save won the race. Without ``exclude_id`` the save creates the
    record (it has no keys or claims yet to replace)."""
    hits = check(actor, object_type, data, exclude_id)
    raise_if_blocked(object_type, hits)
    # a savepoint, so a lost race undoes this record only (an import's earlier rows in the same
    # transaction stay)
    savepoint = begin_savepoint()
    try:
        obj = save()
        db.session.flush()
        index_record(object_type, obj, fresh=exclude_id is None)
        claim(object_type, obj, data, fresh=exclude_id is None, savepoint=False)
        savepoint.commit()
    except ClaimTaken:
        savepoint.rollback()
        hits = check(actor, object_type, data, exclude_id)
        raise_if_blocked(object_type, hits)
        raise Conflict("撞单：另一位同事刚刚保存了相同的记录，请刷新后重试。", code="collision",
                       extra={"hits": [h.to_dict() for h in hits]})
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()  # nothing of a refused save stays (a contact's bad name after its customer)
        raise
    return obj, hits


def reindex_org(org_id: int, object_types: tuple[str, ...] = OBJECT_TYPES, batch: int = 2000) -> dict[str, int]:
    """Rebuild the match keys of every record of an organisation in bulk (after an import
    or a change to the normalisation rules: ``wxcrm collision reindex``)."""
    counts: dict[str, int] = {}
    for object_type in object_types:
        model = MODELS[object_type]
        for table in (CollisionKey, CollisionGram):
            db.session.execute(delete(table).where(table.org_id == org_id, table.object_type == object_type))
        phones: dict[int, list[str]] = {}
        if object_type == "customer":
            for cid, phone_value in db.session.execute(select(Contact.customer_id, Contact.phone).where(
                    Contact.org_id == org_id, Contact.phone.is_not(None))):
                phones.setdefault(cid, []).append(phone_value)
        last_id, n = 0, 0
        while True:
            rows = db.session.scalars(select(model).where(model.org_id == org_id, model.id > last_id)
                                      .order_by(model.id).limit(batch)).all()
            if not rows:
                break
            key_rows, gram_rows = [], []
            for obj in rows:
                if object_type == "customer":
                    if obj.status != "active":
                        continue
                    values = {"company" if obj.kind == "company" else "person": [obj.name],
                              "phone": [obj.phone] + phones.get(obj.id, []), "email": [obj.email], "address": [obj.address]}
                    values = {k: [v for v in vs if v] for k, vs in values.items()}
                elif object_type == "lead" and obj.status in ("converted", "closed"):
                    continue
                else:
                    values = record_values(object_type, obj)
                keys, grams = _keys_for(values)
                key_rows += [{"org_id": org_id, "object_type": object_type, "record_id": obj.id, "dimension": d,
                              "method": m, "value": v} for d, m, v in keys]
                gram_rows += [{"org_id": org_id, "object_type": object_type, "record_id": obj.id, "dimension": d,
                               "gram": g} for d, g in grams]
            if key_rows:
                db.session.execute(insert(CollisionKey), key_rows)
            if gram_rows:
                db.session.execute(insert(CollisionGram), gram_rows)
            n += len(rows)
            last_id = rows[-1].id
            db.session.expunge_all()
        counts[object_type] = n
    return counts


organization.on_organization_created(ensure_default_rules)
