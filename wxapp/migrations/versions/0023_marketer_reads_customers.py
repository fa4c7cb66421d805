"""The built-in marketer reads customers and contacts (organisation-wide) to build the segments it pushes to

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 06:10:00
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    from crm_core.org.builtin_roles import sync_builtin_roles

    sync_builtin_roles(op.get_bind())


def downgrade():
    pass  # grants added to built-in roles are kept (sync_builtin_roles never removes one)
