"""角色权限 (console, #16 item 1): the roles, each as the function-permission matrix (object × action) with a
data scope per object; built-in roles read-only and copied to be changed; and 这个用户能看到什么, the preview of
what one user may do and how many records of each kind their scope covers now."""
from __future__ import annotations

from flask import g, render_template, request, url_for
from sqlalchemy import select

from crm_core.db import db
from crm_core.errors import DomainError, ValidationFailed
from crm_core.org import organization as org_service
from crm_core.org.models import Role, User
from crm_core.org.permissions import ACTIONS, FUNCTION_LABELS, OBJECTS, SCOPE_LABELS
from wxapp.auth import console_login_required
from wxapp.console import bp
from wxapp.pages import act, denied

EDITABLE_SCOPES = ("self", "subordinates", "department", "organization")  # 指定部门/职员 stays in the API


def _roles() -> list[Role]:
    return list(db.session.scalars(select(Role).where((Role.org_id == g.actor.org_id) | Role.org_id.is_(None))
                                   .order_by(Role.org_id.is_not(None), Role.id)))


def _users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.org_id == g.actor.org_id).order_by(User.username)))


@bp.get("/org/roles")
@console_login_required
def roles():
    try:
        g.actor.require("role", "view")
        preview = None
        if request.args.get("user_id"):
            try:
                preview = org_service.visibility_preview(g.actor, int(request.args["user_id"]))
            except ValueError:
                raise ValidationFailed("请选择用户。") from None
    except DomainError as exc:
        return denied(exc)
    return render_template("console/roles.html", roles=_roles(), users=_users(), preview=preview,
                           chosen_user=request.args.get("user_id", ""))


@bp.get("/org/roles/<int:role_id>")
@console_login_required
def role_page(role_id: int):
    try:
        g.actor.require("role", "view")
        role = db.session.get(Role, role_id)
        if role is None or role.org_id not in (None, g.actor.org_id):
            raise ValidationFailed("角色不存在。")
    except DomainError as exc:
        return denied(exc)
    granted = {(p.object_type, p.action) for p in role.permissions}
    scopes = {s.object_type: s.scope for s in role.data_scopes}
    groups: dict[str, list] = {}
    for obj, (label, function) in OBJECTS.items():
        groups.setdefault(FUNCTION_LABELS.get(function, "系统与公共"), []).append((obj, label))
    return render_template("console/role.html", role=role, granted=granted, scopes=scopes, groups=groups, actions=ACTIONS,
                           scope_labels={k: SCOPE_LABELS[k] for k in EDITABLE_SCOPES}, scoped=set(org_service._scoped_models()),
                           editable=role.org_id is not None and not role.grants_all and g.actor.can("role", "edit"))


@bp.post("/org/roles/<int:role_id>")
@console_login_required
def role_save(role_id: int):
    def save():
        perms = []
        for item in request.form.getlist("perm"):
            obj, _, action = item.partition(":")
            perms.append((obj, action))
        role = db.session.get(Role, role_id)
        kept = {s.object_type: s for s in role.data_scopes} if role is not None else {}
        scopes = {}
        for obj in org_service._scoped_models():
            value = request.form.get(f"scope_{obj}")
            if value == "listed" and obj in kept and kept[obj].scope == "listed":  # set in the API: kept as it is
                scopes[obj] = {"scope": "listed", "department_ids": list(kept[obj].department_ids or []),
                               "employee_ids": list(kept[obj].employee_ids or [])}
            elif value:
                if value not in EDITABLE_SCOPES:
                    raise ValidationFailed("数据权限只能选本人、本人及下属、本部门及下级部门或本组织。", fields={f"scope_{obj}": "invalid"})
                scopes[obj] = {"scope": value}
        return org_service.set_role_grants(g.actor, role_id, perms, scopes)

    return act(save, "角色权限已保存，已登录的用户下一次操作即按新权限。", url_for("console.role_page", role_id=role_id))


@bp.post("/org/roles/copy")
@console_login_required
def role_copy():
    def copy():
        try:
            source = int(request.form.get("from_role_id", ""))
        except ValueError:
            raise ValidationFailed("请选择要复制的角色。", fields={"from_role_id": "required"}) from None
        return org_service.copy_role(g.actor, source, request.form.get("name", ""))

    return act(copy, "已复制为新角色，可以修改它的权限了。", url_for("console.roles"),
               then=lambda role: url_for("console.role_page", role_id=role.id))
