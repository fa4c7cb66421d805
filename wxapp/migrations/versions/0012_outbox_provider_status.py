"""Outbox: what the provider reported after sending (WeChat's TEMPLATESENDJOBFINISH)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_message') as batch:
        batch.add_column(sa.Column('provider_status', sa.String(length=64), nullable=True))
    op.create_index('ix_outbox_message_provider_id', 'outbox_message', ['provider_message_id'], unique=False)


def downgrade():
    op.drop_index('ix_outbox_message_provider_id', table_name='outbox_message')
    with op.batch_alter_table('outbox_message') as batch:
        batch.drop_column('provider_status')
