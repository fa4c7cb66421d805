"""工作计划 (console, #16 item 3): my daily, weekly and monthly plans — written, changed while a draft, the reviewer
chosen from anyone in the company and changed later, submitted with a summary — and, for the reviewer, 批阅 or 退回
with a comment; each plan shows planned against done. The same calls as the phone's 今日计划 and 待我审批."""
from __future__ import annotations

from datetime import date

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.activities import activities as svc
from crm_core.activities.models import WorkPlan
from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.org.models import Employee
from crm_core.org.organization import employee_names, manager_of
from crm_core.org.permissions import get_visible
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act, denied


def _employees() -> list[Employee]:
    return list(db.session.scalars(select(Employee).where(Employee.org_id == g.actor.org_id, Employee.active.is_(True))
                                   .order_by(Employee.name)))


def _day(key: str, label: str) -> date:
    raw = (request.form.get(key) or "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"请填写{label}（如 2026-12-07）。", fields={key: "日期格式不正确"}) from None


def _reviewer() -> int | None:
    raw = request.form.get("reviewer_id") or ""
    return int(raw) if raw.isdigit() else None


@bp.get("/plans")
@console_login_required
def plans():
    try:
        g.actor.require("activity", "view")
    except DomainError as exc:
        return denied(exc)
    mine = svc.my_plans(g.actor)
    waiting = svc.plans_to_review(g.actor)
    names = employee_names({p.reviewer_id for p in mine} | {p.owner_id for p in waiting})
    return render_template("console/plans.html", mine=mine, waiting=waiting, names=names, employees=_employees(),
                           default_reviewer=manager_of(g.actor.employee_id) if g.actor.employee_id else None)


@bp.post("/plans")
@console_login_required
def plan_create():
    def create():
        title = (request.form.get("title") or "").strip()
        if not title:
            raise ValidationFailed("请填写计划标题。", fields={"title": "required"})
        return svc.create_plan(g.actor, {"period": request.form.get("period", "weekly"), "title": title[:200],
                                         "start_date": _day("start_date", "开始日期"), "end_date": _day("end_date", "结束日期"),
                                         "content": (request.form.get("content") or "").strip()[:4000] or None,
                                         "reviewer_id": _reviewer()})

    return act(create, "计划已保存（草稿），写好后提交给批阅人。", url_for("console.plans"),
               then=lambda p: url_for("console.plan", plan_id=p.id))


@bp.get("/plans/<int:plan_id>")
@console_login_required
def plan(plan_id: int):
    try:
        p = get_visible(g.actor, WorkPlan, plan_id, object_type="activity")
        figures = svc.plan_vs_actual(g.actor, plan_id)
    except DomainError as exc:
        return denied(exc)
    return render_template("console/plan.html", p=p, figures=figures, names=employee_names([p.owner_id, p.reviewer_id]),
                           employees=_employees(), mine=p.owner_id == g.actor.employee_id,
                           reviewing=p.reviewer_id == g.actor.employee_id and p.review_status == "submitted")


def _back(plan_id: int) -> str:
    return url_for("console.plan", plan_id=plan_id)


@bp.post("/plans/<int:plan_id>")
@console_login_required
def plan_save(plan_id: int):
    return act(lambda: svc.update_plan(g.actor, plan_id, {
        "title": request.form.get("title", ""), "content": request.form.get("content", ""),
        "summary": request.form.get("summary", ""), "start_date": _day("start_date", "开始日期"),
        "end_date": _day("end_date", "结束日期")}), "计划已保存。", _back(plan_id))


@bp.post("/plans/<int:plan_id>/reviewer")
@console_login_required
def plan_reviewer(plan_id: int):
    def change():
        reviewer = _reviewer()
        if reviewer is None:
            raise ValidationFailed("请选择批阅人。", fields={"reviewer_id": "required"})
        return svc.change_reviewer(g.actor, plan_id, reviewer)

    return act(change, lambda: "批阅人已更换。", _back(plan_id))


@bp.post("/plans/<int:plan_id>/submit")
@console_login_required
def plan_submit(plan_id: int):
    summary = (request.form.get("summary") or "").strip()[:4000] or None
    return act(lambda: svc.submit_plan(g.actor, plan_id, summary), "已提交，等待批阅。", _back(plan_id))


@bp.post("/plans/<int:plan_id>/decide")
@console_login_required
def plan_decide(plan_id: int):
    def decide():
        comment = (request.form.get("comment") or "").strip()
        if request.form.get("decision") == "return":
            if not comment:
                raise ValidationFailed("退回时请写明原因。", fields={"comment": "required"})
            return svc.return_plan(g.actor, plan_id, comment)
        return svc.review_plan(g.actor, plan_id, comment[:2000] or "已阅")

    return act(decide, lambda: "已退回给制定人。" if request.form.get("decision") == "return" else "已批阅。", _back(plan_id))
