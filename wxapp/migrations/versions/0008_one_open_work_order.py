"""One open work order per engineer and ticket (unique partial index)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:40:00

An upgrade of a database that already holds two open work orders of one engineer on one ticket
fails here: cancel the duplicate first (docs/operations.md).
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('assigned', 'in_progress')")


def upgrade():
    op.create_index('uq_work_order_open_engineer', 'work_order', ['ticket_id', 'engineer_id'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)


def downgrade():
    op.drop_index('uq_work_order_open_engineer', table_name='work_order')
