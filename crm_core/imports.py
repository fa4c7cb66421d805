"""Excel imports (导入): customers, contacts, leads, employees and product archives from .xlsx.

One flow for every kind, as the CRMs people compare with (纷享销客, 销售易) do it:

1. **Template** (:func:`template`): row 1 holds the Chinese column headers, required ones marked
   ``*``; a second sheet 填写说明 says what each column takes (formats, allowed values).
2. **Dry run** (:func:`dry_run`): every row is parsed, its references resolved (负责人, 客户, 岗位,
   产品) and put through the same checks the save would run — the collision check (撞单) against
   saved records *and* against the rows above it in the same file — and answered as ``new``,
   ``collision`` or ``error`` with the reason. Nothing is written.
3. **Import** (:func:`start` then the :func:`run_import` job): the file is kept, and a job saves the
   rows through the ordinary services (so permissions, data scope, collision rules, claims and the
   audit trail apply exactly as for a record typed by hand), one savepoint a row, committing every
   :data:`BATCH` rows with its progress. A row a blocking rule refuses is skipped as ``collision``;
   a row a warning rule flags is saved and says so. A job that is retried after a crash resumes after
   the last committed row. The result file is the uploaded sheet with two columns added (导入结果,
   说明).

This module sits above the business areas (like ``all_models`` and ``demo``): it calls into
customers, sales and org, and no area imports it.
"""
from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import jobs, media
from crm_core.clock import utcnow
from crm_core.context import acting_as
from crm_core.customers import collision
from crm_core.customers import customers as customer_service
from crm_core.customers import products as product_service
from crm_core.customers.models import CUSTOMER_SOURCES, Contact, Customer, Product, ProductArchive
from crm_core.customers.value import score_customers
from crm_core.db import begin_savepoint, db
from crm_core.errors import Conflict, DomainError, NotFound, ValidationFailed
from crm_core.labels import LABELS
from crm_core.mixins import TimestampMixin
from crm_core.org import setup as org_setup
from crm_core.org.models import Employee, Position, User
from crm_core.org.permissions import Actor, load_actor, visible_clause
from crm_core.sales import leads as lead_service
from crm_core.sales.models import LEAD_SOURCES

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 20_000
BATCH = 200  # rows per commit (and per progress step)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STATUSES = ("new", "collision", "error")
RESULT_LABELS = {"new": "已导入", "collision": "撞单未导入", "error": "有误未导入"}
DRY_LABELS = {"new": "新建", "collision": "撞单", "error": "有误"}


class ImportJob(TimestampMixin, db.Model):
    """One uploaded file and its import: ``draft`` (checked in the console, not confirmed), ``queued``,
    ``running``, ``done`` or ``failed``. ``processed`` rows have their :class:`ImportRow` committed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    file_name: Mapped[str] = mapped_column(String(200))
    file_key: Mapped[str] = mapped_column(String(200))
    result_key: Mapped[str | None] = mapped_column(String(200))
    total: Mapped[int] = mapped_column(default=0)
    processed: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    collision_count: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportRow(db.Model):
    """What became of one row of an import (the result file is made from these)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("import_job.id"), index=True)
    row_no: Mapped[int]
    status: Mapped[str] = mapped_column(String(12))
    message: Mapped[str | None] = mapped_column(String(500))
    record_id: Mapped[int | None]


class RowError(Exception):
    """A row that cannot be saved as it is; the message names the column."""


# --- columns ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Col:
    header: str
    key: str
    required: bool = False
    type: str = "text"  # text / date / int / choice / list
    max_len: int = 200
    choices: dict[str, str] | None = None  # what a person writes -> the stored value
    low: int | None = None
    high: int | None = None
    hint: str = ""

    @property
    def title(self) -> str:
        return self.header + ("*" if self.required else "")


GENDERS = {"男": "male", "女": "female"}
KINDS_OF_CUSTOMER = {"企业": "company", "公司": "company", "个人": "person"}
_SOURCE_WORDS = LABELS["source"]


def _sources(allowed: tuple[str, ...]) -> dict[str, str]:
    return {_SOURCE_WORDS.get(s, s): s for s in allowed if s not in ("demo", "self_service", "wechat_intent")}


OWNER = Col("负责人", "owner", hint="职员姓名或工号；不填为导入人")
_LIST_SPLIT = re.compile(r"[,，、;；\n]+")  # not on spaces: a tag may hold one
_DATE_TEXT = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _parse(col: Col, value: Any):
    if value is None or (isinstance(value, str) and not value.strip()):
        if col.required:
            raise RowError(f"「{col.header}」必填。")
        return None
    if col.type == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = str(value).strip()
        m = _DATE_TEXT.match(text) or (re.match(r"^(\d{4})(\d{2})(\d{2})$", text) if text.isdigit() else None)
        try:
            if m:
                return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            pass
        raise RowError(f"「{col.header}」不是日期（如 2026-03-15）：{text[:20]}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone or a count Excel stored as a number
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    text = str(value).strip()
    if col.type == "int":
        if not re.fullmatch(r"-?\d+", text):
            raise RowError(f"「{col.header}」应为整数：{text[:20]}")
        n = int(text)
        if (col.low is not None and n < col.low) or (col.high is not None and n > col.high):
            raise RowError(f"「{col.header}」应在 {col.low}–{col.high} 之间：{n}")
        return n
    if col.type == "choice":
        if text in col.choices:
            return col.choices[text]
        if text in col.choices.values():
            return text
        raise RowError(f"「{col.header}」只能填 {'、'.join(col.choices)}：{text[:20]}")
    if col.type == "list":
        return [part.strip()[:col.max_len] for part in _LIST_SPLIT.split(text) if part.strip()][:30]
    if len(text) > col.max_len:
        raise RowError(f"「{col.header}」最多 {col.max_len} 个字。")
    return text


# --- the kinds -------------------------------------------------------------------------------
@dataclass
class Context:
    """What one import looks up once: employees, customers, positions, products by name; and the
    keys the rows above have taken (a file that lists the same customer twice collides with itself)."""

    actor: Actor
    cache: dict[str, dict] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # key -> the row that holds it

    def lookup(self, name: str, build: Callable[[], dict]) -> dict:
        if name not in self.cache:
            self.cache[name] = build()
        return self.cache[name]

    def take(self, keys: list[str], row_no: int) -> str | None:
        """The first of ``keys`` an earlier row holds (as 'row N'), else take them all for this row."""
        for k in keys:
            if k in self.seen:
                return f"与文件第 {self.seen[k]} 行重复"
        for k in keys:
            self.seen[k] = row_no
        return None


def _employees(ctx: Context) -> dict:
    def build():
        by: dict[str, list[int]] = {}
        for eid, code, name in db.session.execute(select(Employee.id, Employee.code, Employee.name).where(
                Employee.org_id == ctx.actor.org_id, Employee.active.is_(True))):
            by.setdefault(code, []).append(eid)
            if name != code:
                by.setdefault(name, []).append(eid)
        return by
    return ctx.lookup("employees", build)


def _owner_id(ctx: Context, value: str | None) -> int | None:
    if not value:
        _hold(ctx, ctx.actor.employee_id)
        return None
    ids = _employees(ctx).get(value, [])
    if not ids:
        raise RowError(f"「负责人」没有在职职员叫「{value}」。")
    if len(ids) > 1:
        raise RowError(f"「负责人」有 {len(ids)} 位职员同名「{value}」，请填写工号。")
    _hold(ctx, ids[0])
    return ids[0]


def _hold(ctx: Context, employee_id: int | None) -> None:
    """Keep the owner loaded: the session's identity map holds objects weakly, so without this every
    row's save would read its owner again."""
    held = ctx.cache.setdefault("held", {})
    if employee_id and employee_id not in held:
        held[employee_id] = db.session.get(Employee, employee_id)


def _customer_id(ctx: Context, name: str) -> int:
    """A customer the importer may edit, by its exact name (one, not merged)."""
    def build():
        ctx.actor.require("customer", "view")
        q = select(Customer.id, Customer.name).where(Customer.status == "active", visible_clause(ctx.actor, Customer))
        by: dict[str, list[int]] = {}
        for cid, cname in db.session.execute(q):
            by.setdefault(cname.strip(), []).append(cid)
        return by
    ids = ctx.lookup("customers", build).get(name, [])
    if not ids:
        raise RowError(f"「客户名称」找不到您可编辑的客户「{name}」。")
    if len(ids) > 1:
        raise RowError(f"「客户名称」有 {len(ids)} 个客户同名「{name}」。")
    return ids[0]


def _hit_message(hits: list, blocked: bool) -> str:
    first = (collision.blocking(hits) or hits)[0]
    d = first.display
    what = collision.LABELS.get(first.object_type, "记录")
    who = d.get("owner") or "其他同事"
    shown = d.get("name") or ""
    if blocked:
        return f"与已有{what}「{shown}」重复（负责人：{who}，规则：{first.rule_name}）"
    return f"疑似与{what}「{shown}」重复（负责人：{who}），仍会导入"


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    permission: tuple[str, str]
    columns: tuple[Col, ...]
    prepare: Callable[[Context, dict], dict]  # cells -> what the service takes; raises RowError
    check: Callable[[Context, dict, int], tuple[str, str | None]]  # -> (status, message), writes nothing
    save: Callable[[Context, dict], tuple[int, str | None]]  # -> (record id, note)
    own_savepoint: bool = False  # the save undoes itself when refused (collision.guarded_save)


# customers
def _customer_prepare(ctx: Context, v: dict) -> dict:
    data = {k: v.get(k) for k in ("name", "kind", "phone", "email", "address", "industry", "note", "tags")}
    data["kind"] = data["kind"] or "company"
    data["tags"] = data["tags"] or []
    data["source"] = v.get("source") or "import"
    data["owner_id"] = _owner_id(ctx, v.get("owner"))
    contact = None
    if v.get("contact_name"):
        contact = {"name": v["contact_name"], "phone": v.get("contact_phone"), "title": v.get("contact_title"),
                   "is_primary": True}
    elif v.get("contact_phone") or v.get("contact_title"):
        raise RowError("填写了联系人电话或职务时「联系人姓名」必填。")
    data["contacts"] = [contact] if contact else []
    return data


def _customer_check_data(data: dict) -> dict:
    c = Customer(name=data["name"], kind=data["kind"], phone=data.get("phone"), email=data.get("email"),
                 address=data.get("address"))
    return customer_service._check_data(c, [x["phone"] for x in data["contacts"] if x.get("phone")])


def _collision_check(ctx: Context, object_type: str, check_data: dict, row_no: int) -> tuple[str, str | None]:
    hits = collision.check(ctx.actor, object_type, check_data)
    if collision.blocking(hits):
        return "collision", _hit_message(hits, True)
    dup = ctx.take(collision.claims_for(object_type, check_data, ctx.actor.org_id), row_no)
    if dup:
        return "collision", dup
    return "new", (_hit_message(hits, False) if hits else None)


def _customer_check(ctx: Context, data: dict, row_no: int):
    ctx.actor.require("customer", "create")
    if data["owner_id"] and data["owner_id"] != ctx.actor.employee_id:
        ctx.actor.require("customer", "assign")
    return _collision_check(ctx, "customer", _customer_check_data(data), row_no)


def _customer_save(ctx: Context, data: dict):
    contacts = data.pop("contacts")
    c, hits = customer_service.create_customer(ctx.actor, data, contacts=contacts, score=False)
    ctx.cache.setdefault("scored", {})[c.id] = True
    return c.id, (_hit_message(hits, False).replace("，仍会导入", "") if hits else None)


# contacts
def _contact_prepare(ctx: Context, v: dict) -> dict:
    data = {k: v.get(k) for k in ("name", "phone", "email", "title", "gender", "birthday", "note")}
    data["customer_id"] = _customer_id(ctx, v["customer"])
    return data


def _same_contact(data: dict) -> str | None:
    """A contact of that customer with the same name (and phone, or none), already saved."""
    q = select(Contact.id).where(Contact.customer_id == data["customer_id"], Contact.name == data["name"])
    if data.get("phone"):
        q = q.where(Contact.phone == data["phone"])
    if db.session.scalar(q.limit(1)):
        return f"该客户已有联系人「{data['name']}」"
    return None


def _contact_check(ctx: Context, data: dict, row_no: int):
    ctx.actor.require("contact", "create")
    same = _same_contact(data)
    if same:
        return "collision", same
    dup = ctx.take([f"contact|{data['customer_id']}|{data['name']}|{data.get('phone') or ''}"], row_no)
    if dup:
        return "collision", dup
    if not data.get("phone"):
        return "new", None
    hits = collision.check(ctx.actor, "customer", {"phone": data["phone"]}, exclude_id=data["customer_id"])
    if collision.blocking(hits):
        return "collision", _hit_message(hits, True)
    return "new", (_hit_message(hits, False) if hits else None)


def _contact_save(ctx: Context, data: dict):
    same = _same_contact(data)
    if same:
        raise Conflict(same, code="collision")
    customer_id = data.pop("customer_id")
    contact, hits = customer_service.add_contact(ctx.actor, customer_id, data)
    return contact.id, (_hit_message(hits, False).replace("，仍会导入", "") if hits else None)


# leads
def _lead_prepare(ctx: Context, v: dict) -> dict:
    data = {k: v.get(k) for k in ("name", "company", "phone", "email", "address", "note")}
    data["source"] = v.get("source") or "import"
    data["owner_id"] = _owner_id(ctx, v.get("owner"))
    return data


def _lead_check(ctx: Context, data: dict, row_no: int):
    ctx.actor.require("lead", "create")
    if data["owner_id"] and data["owner_id"] != ctx.actor.employee_id:
        ctx.actor.require("lead", "assign")
    return _collision_check(ctx, "lead", lead_service._check_data(data), row_no)


def _lead_save(ctx: Context, data: dict):
    lead, hits = lead_service.create_lead(ctx.actor, data)
    return lead.id, (_hit_message(hits, False).replace("，仍会导入", "") if hits else None)


# employees
def _positions(ctx: Context) -> dict:
    def build():
        by: dict[str, list[int]] = {}
        for pid, code, name in db.session.execute(select(Position.id, Position.code, Position.name).where(
                Position.org_id == ctx.actor.org_id)):
            by.setdefault(code, []).append(pid)
            if name != code:
                by.setdefault(name, []).append(pid)
        return by
    return ctx.lookup("positions", build)


def _employee_prepare(ctx: Context, v: dict) -> dict:
    ids = []
    for name in v["positions"] or []:
        found = _positions(ctx).get(name, [])
        if not found:
            raise RowError(f"「岗位」没有岗位叫「{name}」（先在组织架构里建好岗位）。")
        if len(found) > 1:
            raise RowError(f"「岗位」有 {len(found)} 个岗位同名「{name}」，请填写岗位编码。")
        ids.append(found[0])
    if not ids:
        raise RowError("「岗位」必填。")
    return {"name": v["name"], "phone": v.get("phone"), "email": v.get("email"), "position_ids": ids,
            "wecom_userid": v.get("wecom_userid")}


def _employee_phones(ctx: Context) -> dict:
    return ctx.lookup("employee_phones", lambda: {p: n for p, n in db.session.execute(
        select(Employee.phone, Employee.name).where(Employee.org_id == ctx.actor.org_id, Employee.active.is_(True),
                                                    Employee.phone.is_not(None)))})


def _employee_check(ctx: Context, data: dict, row_no: int):
    ctx.actor.require("organization", "edit")
    if data.get("wecom_userid") and not org_setup.WECOM_USERID.match(data["wecom_userid"]):
        return "error", "「企业微信账号」只能含字母、数字和 _ . @ -。"
    if data.get("phone") and data["phone"] in _employee_phones(ctx):
        return "collision", f"手机号已属于在职职员「{_employee_phones(ctx)[data['phone']]}」"
    if data.get("wecom_userid") and db.session.scalar(select(Employee.id).where(
            Employee.org_id == ctx.actor.org_id, Employee.wecom_userid == data["wecom_userid"])):
        return "collision", f"企业微信账号 {data['wecom_userid']} 已属于其他职员"
    keys = [f"phone|{data['phone']}"] if data.get("phone") else []
    keys += [f"wecom|{data['wecom_userid']}"] if data.get("wecom_userid") else []
    dup = ctx.take(keys, row_no)
    return ("collision", dup) if dup else ("new", None)


def _employee_save(ctx: Context, data: dict):
    if data.get("phone") and data["phone"] in _employee_phones(ctx):
        raise Conflict(f"手机号已属于在职职员「{_employee_phones(ctx)[data['phone']]}」", code="collision")
    e = org_setup.hire(ctx.actor, **data)
    if e.phone:
        _employee_phones(ctx)[e.phone] = e.name
    return e.id, f"工号 {e.code}"


# product archives
def _products(ctx: Context) -> dict:
    def build():
        by: dict[str, list[int]] = {}
        for pid, code, name in db.session.execute(select(Product.id, Product.code, Product.name).where(
                Product.org_id == ctx.actor.org_id)):
            if code:
                by.setdefault(code, []).append(pid)
            if name != code:
                by.setdefault(name, []).append(pid)
        return by
    return ctx.lookup("products", build)


def _archive_prepare(ctx: Context, v: dict) -> dict:
    found = _products(ctx).get(v["product"], [])
    if not found:
        raise RowError(f"「产品」没有产品编码或名称为「{v['product']}」。")
    if len(found) > 1:
        raise RowError(f"「产品」有 {len(found)} 个产品同名「{v['product']}」，请填写产品编码。")
    return {"serial_no": v["serial_no"], "product_id": found[0], "customer_id": _customer_id(ctx, v["customer"]),
            "sold_on": v["sold_on"], "warranty_months": v.get("warranty_months"),
            "install_address": v.get("install_address")}


def _archived(ctx: Context, data: dict) -> str | None:
    if db.session.scalar(select(ProductArchive.id).where(ProductArchive.org_id == ctx.actor.org_id,
                                                         ProductArchive.serial_no == data["serial_no"])):
        return f"序列号 {data['serial_no']} 已建档"
    return None


def _archive_check(ctx: Context, data: dict, row_no: int):
    ctx.actor.require("product_archive", "create")
    dup = _archived(ctx, data) or ctx.take([f"serial|{data['serial_no']}"], row_no)
    return ("collision", dup) if dup else ("new", None)


def _archive_save(ctx: Context, data: dict):
    if _archived(ctx, data):
        raise Conflict(_archived(ctx, data), code="collision")
    return product_service.create_archives(ctx.actor, [data])[0].id, None


PHONE = Col("电话", "phone", max_len=32)
EMAIL = Col("邮箱", "email", max_len=200)
NOTE = Col("备注", "note", max_len=2000)
KINDS: dict[str, Kind] = {k.code: k for k in (
    Kind("customers", "客户", ("customer", "create"), (
        Col("客户名称", "name", required=True), Col("类型", "kind", type="choice", choices=KINDS_OF_CUSTOMER,
                                               hint="企业或个人；不填为企业"),
        PHONE, EMAIL, Col("地址", "address", max_len=300), Col("行业", "industry", max_len=64),
        Col("来源", "source", type="choice", choices=_sources(CUSTOMER_SOURCES), hint="不填为「导入」"),
        Col("标签", "tags", type="list", max_len=32, hint="多个用逗号或顿号分隔"), OWNER, NOTE,
        Col("联系人姓名", "contact_name", max_len=100), Col("联系人电话", "contact_phone", max_len=32),
        Col("联系人职务", "contact_title", max_len=100)),
        _customer_prepare, _customer_check, _customer_save, own_savepoint=True),
    Kind("contacts", "联系人", ("contact", "create"), (
        Col("客户名称", "customer", required=True, hint="已有客户的全称"), Col("姓名", "name", required=True, max_len=100),
        PHONE, EMAIL, Col("职务", "title", max_len=100), Col("性别", "gender", type="choice", choices=GENDERS),
        Col("生日", "birthday", type="date", hint="如 1988-05-20"), Col("备注", "note", max_len=1000)),
        _contact_prepare, _contact_check, _contact_save),
    Kind("leads", "线索", ("lead", "create"), (
        Col("姓名", "name", required=True, max_len=100), Col("公司", "company"), PHONE, EMAIL,
        Col("地址", "address", max_len=300),
        Col("来源", "source", type="choice", choices=_sources(LEAD_SOURCES), hint="不填为「导入」"), OWNER, NOTE),
        _lead_prepare, _lead_check, _lead_save, own_savepoint=True),
    Kind("employees", "职员", ("organization", "edit"), (
        Col("姓名", "name", required=True, max_len=100), Col("手机", "phone", max_len=32), EMAIL,
        Col("岗位", "positions", required=True, type="list", max_len=100, hint="岗位名称或编码，多个用逗号分隔，第一个为主岗"),
        Col("企业微信账号", "wecom_userid", max_len=64, hint="企业微信通讯录里的账号（UserID）")),
        _employee_prepare, _employee_check, _employee_save),
    Kind("product-archives", "产品档案", ("product_archive", "create"), (
        Col("序列号", "serial_no", required=True, max_len=64), Col("产品", "product", required=True, hint="产品编码或名称"),
        Col("客户名称", "customer", required=True, hint="已有客户的全称"), Col("购买日期", "sold_on", required=True, type="date"),
        Col("保修月数", "warranty_months", type="int", low=0, high=240, hint="不填按产品的保修期"),
        Col("安装地址", "install_address", max_len=300)),
        _archive_prepare, _archive_check, _archive_save),
)}


def kind_of(code: str) -> Kind:
    if code not in KINDS:
        raise NotFound(f"不支持导入「{code}」，可导入：{'、'.join(k.label for k in KINDS.values())}。")
    return KINDS[code]


# --- the sheet -------------------------------------------------------------------------------
def template(code: str) -> bytes:
    """The .xlsx to fill in: headers in row 1 (required ones end with *), 填写说明 on a second sheet."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill

    kind = kind_of(code)
    wb = Workbook()
    ws = wb.active
    ws.title = f"{kind.label}导入"
    ws.append([c.title for c in kind.columns])
    for i, c in enumerate(kind.columns, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True, color="C00000" if c.required else "000000")
        cell.fill = PatternFill("solid", fgColor="F2F2F2")
        if c.hint or c.choices:
            cell.comment = Comment(explain(c), "wxcrm")
        ws.column_dimensions[cell.column_letter].width = max(12, len(c.title) * 2 + 4)
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("填写说明")
    notes.append(["列", "必填", "说明"])
    for c in kind.columns:
        notes.append([c.header, "是" if c.required else "", explain(c)])
    notes.append([])
    notes.append(["", "", f"第一行是列名，请勿修改；每个文件最多 {MAX_ROWS} 行。导入前先「预检」，每行会标出新建、撞单或有误。"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def explain(c: Col) -> str:
    parts = [c.hint] if c.hint else []
    if c.type == "choice":
        parts.append("可填：" + "、".join(c.choices))
    elif c.type == "date":
        parts.append("日期，如 2026-03-15")
    elif c.type == "int":
        parts.append(f"整数 {c.low}–{c.high}")
    elif c.type == "text":
        parts.append(f"最多 {c.max_len} 字")
    return "；".join(p for p in parts if p)


@dataclass
class Sheet:
    headers: list[str]  # as in the file
    columns: dict[int, Col]  # position -> column it was recognised as
    ignored: list[str]
    rows: list[tuple[int, list]]  # (row number in Excel, cells)


def read_sheet(code: str, data: bytes) -> Sheet:
    """The first sheet's rows, columns recognised by their header (in any order; a trailing * and
    spaces ignored). A file that is not .xlsx, lacks a required column or has too many rows is refused
    as a whole (422), before any row is looked at."""
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    kind = kind_of(code)
    if not data:
        raise ValidationFailed("请选择要导入的 Excel 文件（.xlsx）。", fields={"file": "required"})
    if len(data) > MAX_BYTES:
        raise ValidationFailed(f"文件超过 {MAX_BYTES // 1024 // 1024} MB，请分成几个文件导入。", fields={"file": "too_large"})
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, KeyError, OSError, ValueError, TypeError):
        raise ValidationFailed("文件不是有效的 Excel（.xlsx）文件，请用下载的模板填写后保存为 .xlsx。",
                               fields={"file": "not_xlsx"}) from None
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        header = next(it, None) or ()
        by_header = {c.header: c for c in kind.columns}
        headers = [("" if h is None else str(h)).strip() for h in header]
        columns: dict[int, Col] = {}
        ignored: list[str] = []
        for i, h in enumerate(headers):
            col = by_header.get(h.rstrip("*＊").strip())
            if col and col not in columns.values():
                columns[i] = col
            elif h:
                ignored.append(h)
        missing = [c.header for c in kind.columns if c.required and c not in columns.values()]
        if missing:
            raise ValidationFailed(f"第一行缺少必填列：{'、'.join(missing)}。请使用下载的模板。",
                                   fields={"file": "missing_columns", "columns": "、".join(missing)})
        rows = []
        for n, cells in enumerate(it, start=2):
            if cells is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in cells):
                continue
            rows.append((n, list(cells)))
            if len(rows) > MAX_ROWS:
                raise ValidationFailed(f"一个文件最多 {MAX_ROWS} 行，请分成几个文件导入。", fields={"file": "too_many_rows"})
    finally:
        wb.close()
    if not rows:
        raise ValidationFailed("文件里除了列名没有数据。", fields={"file": "empty"})
    return Sheet(headers=headers, columns=columns, ignored=ignored, rows=rows)


def _values(sheet: Sheet, cells: list) -> dict:
    out = {}
    for i, col in sheet.columns.items():
        out[col.key] = _parse(col, cells[i] if i < len(cells) else None)
    return out


def _message(exc: Exception) -> str:
    if isinstance(exc, RowError):
        return str(exc)
    if isinstance(exc, DomainError):
        return exc.message
    return "无法保存这一行。"


def _ensure_allowed(actor: Actor, kind: Kind) -> None:
    actor.require(*kind.permission)


def dry_run(actor: Actor, code: str, data: bytes) -> dict:
    """Every row as ``new`` / ``collision`` / ``error`` with the reason; writes nothing."""
    kind = kind_of(code)
    _ensure_allowed(actor, kind)
    sheet = read_sheet(code, data)
    ctx = Context(actor)
    rows, counts = [], dict.fromkeys(STATUSES, 0)
    with acting_as(actor), collision.rules_held():
        for row_no, cells in sheet.rows:
            try:
                status, message = kind.check(ctx, kind.prepare(ctx, _values(sheet, cells)), row_no)
            except (RowError, DomainError) as exc:
                status, message = "error", _message(exc)
            counts[status] += 1
            rows.append({"row": row_no, "status": status, "message": message})
    db.session.rollback()  # nothing of a dry run stays
    return {"kind": code, "total": len(rows), "summary": counts, "rows": rows, "ignored_columns": sheet.ignored}


# --- the job ---------------------------------------------------------------------------------
def start(actor: Actor, code: str, data: bytes, file_name: str | None, *, draft: bool = False) -> ImportJob:
    """Keep the file and queue its import (``draft``: kept for the console's 预检 page until confirmed)."""
    kind = kind_of(code)
    _ensure_allowed(actor, kind)
    if actor.user_id is None:
        raise ValidationFailed("导入需要以用户身份登录。")
    sheet = read_sheet(code, data)
    key = f"imports/{actor.org_id}/{utcnow():%Y/%m}/{uuid.uuid4().hex}.xlsx"
    media.storage().put(key, data, XLSX)
    job = ImportJob(org_id=actor.org_id, user_id=actor.user_id, kind=code, status="draft" if draft else "queued",
                    file_name=(file_name or f"{kind.label}导入.xlsx")[:200], file_key=key, total=len(sheet.rows))
    db.session.add(job)
    db.session.flush()
    if not draft:
        jobs.enqueue(run_import, job.id)
    return job


def confirm(actor: Actor, import_id: int) -> ImportJob:
    job = get_import(actor, import_id)
    if job.status != "draft":
        raise Conflict("这个导入已经开始了。", code="already_started")
    _ensure_allowed(actor, kind_of(job.kind))
    job.status = "queued"
    jobs.enqueue(run_import, job.id)
    return job


def get_import(actor: Actor, import_id: int) -> ImportJob:
    """An import its starter (or an administrator of the organisation) may follow."""
    job = db.session.get(ImportJob, import_id)
    if job is None or job.org_id != actor.org_id or (job.user_id != actor.user_id and not actor.grants_all):
        raise NotFound("导入任务不存在。")
    return job


def recent_imports(actor: Actor, limit: int = 20) -> list[ImportJob]:
    q = select(ImportJob).where(ImportJob.org_id == actor.org_id, ImportJob.status != "draft")
    if not actor.grants_all:
        q = q.where(ImportJob.user_id == actor.user_id)
    return list(db.session.scalars(q.order_by(ImportJob.id.desc()).limit(limit)))


@jobs.job
def run_import(import_id: int) -> None:
    job = db.session.get(ImportJob, import_id)
    if job is None or job.status in ("done", "failed", "draft"):
        return
    user = db.session.get(User, job.user_id)
    kind = KINDS[job.kind]
    if user is None or not user.active:
        _fail(job, "发起导入的用户已停用。")
        return
    actor = load_actor(user)
    try:
        sheet = read_sheet(job.kind, media.storage().get(job.file_key))
        _ensure_allowed(actor, kind)
    except DomainError as exc:
        _fail(job, exc.message)
        return
    if job.status == "queued":
        job.status, job.started_at = "running", utcnow()
    db.session.commit()
    ctx = Context(actor)
    remaining = sheet.rows[job.processed:]  # a retried job resumes after its last committed batch
    with acting_as(actor), collision.rules_held():
        for start_at in range(0, len(remaining), BATCH):
            batch = remaining[start_at:start_at + BATCH]
            results = [_import_row(ctx, kind, sheet, row_no, cells) for row_no, cells in batch]
            db.session.add_all(ImportRow(import_id=job.id, row_no=n, status=s, message=(m or "")[:500] or None,
                                         record_id=rid) for n, s, m, rid in results)
            job.processed += len(batch)
            job.created_count += sum(1 for r in results if r[1] == "new")
            job.collision_count += sum(1 for r in results if r[1] == "collision")
            job.error_count += sum(1 for r in results if r[1] == "error")
            scored = list(ctx.cache.pop("scored", {}))
            if scored:
                score_customers(actor.org_id, scored)  # one pass a batch instead of a job a customer
            db.session.commit()
    _finish(job, sheet)


def _import_row(ctx: Context, kind: Kind, sheet: Sheet, row_no: int, cells: list) -> tuple[int, str, str | None, int | None]:
    try:
        data = kind.prepare(ctx, _values(sheet, cells))
    except (RowError, DomainError) as exc:
        return row_no, "error", _message(exc), None
    savepoint = None if kind.own_savepoint else begin_savepoint()
    try:
        record_id, note = kind.save(ctx, data)
        if savepoint is not None:
            savepoint.commit()
        return row_no, "new", note, record_id
    except Conflict as exc:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        message = exc.message
        if exc.code == "collision" and exc.extra.get("hits"):
            message = _hit_message([_HitView(h) for h in exc.extra["hits"]], True)
        return row_no, ("collision" if exc.code in ("collision", "duplicate_serial") else "error"), message, None
    except DomainError as exc:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        return row_no, "error", exc.message, None


@dataclass
class _HitView:
    """A hit as a 409 carries it (a dict), read like :class:`collision.Hit`."""

    raw: dict

    @property
    def action(self):
        return (self.raw.get("rule") or {}).get("action")

    @property
    def object_type(self):
        return self.raw.get("object_type")

    @property
    def rule_name(self):
        return (self.raw.get("rule") or {}).get("name", "")

    @property
    def display(self):
        return self.raw.get("record") or {}


def _fail(job: ImportJob, message: str) -> None:
    job.status, job.error, job.finished_at = "failed", message[:2000], utcnow()
    db.session.commit()


def _finish(job: ImportJob, sheet: Sheet) -> None:
    from openpyxl import Workbook

    results = {r.row_no: r for r in db.session.scalars(select(ImportRow).where(ImportRow.import_id == job.id))}
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("导入结果")
    ws.append(["导入结果", "说明"] + [_inert(h) for h in sheet.headers])
    for row_no, cells in sheet.rows:
        r = results.get(row_no)
        ws.append([RESULT_LABELS.get(r.status, r.status) if r else "", (r.message or "") if r else ""] + [_inert(c) for c in cells])
    out = io.BytesIO()
    wb.save(out)
    job.result_key = job.file_key.replace(".xlsx", "-result.xlsx")
    media.storage().put(job.result_key, out.getvalue(), XLSX)
    job.status, job.finished_at = "done", utcnow()
    db.session.commit()


def _inert(value):
    """A cell written back as text, never as a formula (what someone typed as =HYPERLINK(...) stays words)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def result_file(actor: Actor, import_id: int) -> tuple[bytes, str]:
    job = get_import(actor, import_id)
    if job.status != "done" or not job.result_key:
        raise Conflict("导入还没有完成。", code="not_done")
    return media.storage().get(job.result_key), f"{job.file_name.rsplit('.', 1)[0]}-导入结果.xlsx"


def problem_rows(import_id: int, limit: int) -> list[ImportRow]:
    """An import's rows that were not imported (or were, with a note), in sheet order."""
    return list(db.session.scalars(select(ImportRow).where(
        ImportRow.import_id == import_id, (ImportRow.status != "new") | ImportRow.message.is_not(None))
        .order_by(ImportRow.row_no).limit(limit)))


def job_dict(job: ImportJob) -> dict:
    progress = 100 if job.status == "done" else (int(job.processed * 100 / job.total) if job.total else 0)
    result = None
    if job.status in ("done", "running") or job.processed:
        result = {"created": job.created_count, "collisions": job.collision_count, "errors": job.error_count,
                  "processed": job.processed, "total": job.total,
                  "result_file": f"/api/v1/jobs/{job.id}/result" if job.status == "done" else None}
    return {"id": job.id, "kind": job.kind, "kind_label": KINDS[job.kind].label, "status": job.status,
            "progress": progress, "file_name": job.file_name, "total": job.total, "processed": job.processed,
            "result": result, "error": job.error,
            "created_at": job.created_at.isoformat() + "Z",
            "finished_at": job.finished_at.isoformat() + "Z" if job.finished_at else None}


__all__ = ["KINDS", "ImportJob", "ImportRow", "dry_run", "start", "confirm", "run_import", "template", "job_dict",
           "get_import", "recent_imports", "result_file"]
