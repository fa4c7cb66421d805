"""Migrations: one head, and `upgrade` on an empty database gives exactly the models' schema."""
from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from crm_core.db import db
from tests.conftest import _make_app

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "..", "wxapp", "migrations")


def test_single_head():
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; merge them"


def _upgrade_and_compare(url: str):
    app = _make_app(url)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        from crm_core.org.models import Role

        roles = {r.code: r for r in db.session.scalars(db.select(Role))}
        from crm_core.org.builtin_roles import BUILTIN_ROLES

        for spec in BUILTIN_ROLES:  # the migrations seed exactly what the code declares
            role = roles[spec["code"]]
            assert {(p.object_type, p.action) for p in role.permissions} == set(spec["permissions"]), spec["code"]
            assert {s.object_type: s.scope for s in role.data_scopes} == spec["scopes"], spec["code"]
        db.session.remove()
        db.engine.dispose()
    return diff, roles


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_on_empty_database_matches_the_models(backend, tmp_path, request):
    url = f"sqlite:///{tmp_path}/m.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    diff, roles = _upgrade_and_compare(url)
    assert diff == [], f"models and migrations differ; run `wxcrm db migrate`: {diff}"
    # built-in roles exist right after the upgrade, without the demo
    assert roles["admin"].grants_all and roles["admin"].org_id is None
    assert {"admin", "sales_manager", "salesperson", "dispatcher", "engineer", "marketer"} <= set(roles)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_what_waited_for_approval_before_the_engine_waits_in_it_after_the_upgrade(backend, tmp_path, request):
    """0030 carries pending contracts (an open step for anyone who may approve contracts) and pending stage approvals
    (a task of their named approver) into the engine, so nothing waiting is lost and each is still decided once."""
    from flask_migrate import downgrade
    from sqlalchemy import func, select, text

    from crm_core.demo import load_demo
    from crm_core.org.models import ApprovalRequest
    from crm_core.sales.models import Contract, Opportunity, OpportunityApproval, SalesStage

    url = f"sqlite:///{tmp_path}/carry.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    app = _make_app(url)
    with app.app_context():
        upgrade(directory=MIGRATIONS)
        load_demo(documents=True)
        db.session.commit()
        opp = db.session.scalars(select(Opportunity).where(Opportunity.name == "酒店新风系统")).one()
        talks = db.session.scalars(select(SalesStage).where(SalesStage.method_id == opp.method_id,
                                                            SalesStage.name == "商务谈判")).one()
        manager = db.session.scalar(text("SELECT e.id FROM employee e JOIN \"user\" u ON u.employee_id = e.id "
                                         "WHERE u.username = 'sales.manager'"))
        db.session.add(OpportunityApproval(org_id=opp.org_id, opportunity_id=opp.id, stage_id=talks.id,
                                           requested_by_id=opp.owner_id, approver_id=manager, status="pending"))
        from crm_core.clock import local_today
        from crm_core.org.models import User
        from crm_core.org.permissions import load_actor
        from crm_core.sales.documents import create_contract

        zhang = load_actor(db.session.scalars(select(User).where(User.username == "sales.zhang")).one())
        create_contract(zhang, {"customer_id": opp.customer_id, "amount": "1000.00", "payment_plan": [
            {"due_date": local_today().isoformat(), "amount": "1000.00"}]})
        db.session.commit()
        pending = set(db.session.scalars(select(Contract.id).where(Contract.status == "pending")))
        assert pending
        db.session.remove()
        downgrade(directory=MIGRATIONS, revision="0029")  # as a database made before the engine
        upgrade(directory=MIGRATIONS)
        carried = db.session.execute(select(ApprovalRequest.doc_type, ApprovalRequest.doc_id)).all()
        assert {d for t, d in carried if t == "contract"} == pending
        assert sum(1 for t, _ in carried if t == "stage") == 1
        client = app.test_client()
        from tests.conftest import token_for

        h = token_for(client, "sales.manager", "demo123456")
        refs = {i["id"] for i in client.get("/api/v1/approvals", headers=h).get_json()["items"]}
        stage = db.session.scalar(select(func.max(OpportunityApproval.id)))
        assert f"stage-{stage}" in refs and {f"contract-{c}" for c in pending} <= refs
        cid = min(pending)
        assert client.post(f"/api/v1/approvals/contract-{cid}/approve", headers=h, json={}).get_json()["status"] == "approved"
        assert client.post(f"/api/v1/approvals/contract-{cid}/approve", headers=h, json={}).status_code == 409
        db.session.remove()
        db.engine.dispose()
