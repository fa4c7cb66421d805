"""Business numbers from a counter row per organisation and scope (tickets: FW + date)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 17:10:00

No rows: a counter starts above the numbers of its day already stored.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('number_counter',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('org_id', 'scope', name=op.f('pk_number_counter'))
    )


def downgrade():
    op.drop_table('number_counter')
