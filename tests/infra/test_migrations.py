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
