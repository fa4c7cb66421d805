"""Organisations count changes to their roles and role assignments (the actor cache's key)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 19:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('organization') as batch:
        batch.add_column(sa.Column('authz_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('organization') as batch:
        batch.drop_column('authz_version')
