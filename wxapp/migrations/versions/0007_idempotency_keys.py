"""Idempotency keys: one effect per logical action, the first answer replayed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('idempotency_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_type', sa.String(length=100), nullable=True),
    sa.Column('response_location', sa.String(length=1000), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_key')),
    sa.UniqueConstraint('scope', 'key', name=op.f('uq_idempotency_key_scope_key'))
    )
    op.create_index('ix_idempotency_key_created', 'idempotency_key', ['created_at'], unique=False)


def downgrade():
    op.drop_index('ix_idempotency_key_created', table_name='idempotency_key')
    op.drop_table('idempotency_key')
