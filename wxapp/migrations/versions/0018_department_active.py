"""Departments can be disabled (组织设置)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 17:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('department') as batch:
        batch.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('department') as batch:
        batch.drop_column('active')
