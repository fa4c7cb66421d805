"""WeChat as it behaves: customer-service quotas per follower, invalid openids, dedup keys that expire

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 14:00:00

Existing followers start with no open grant: the next notice to them goes as a template message
until they message or tap the menu again (WeChat would refuse a customer-service message anyway
unless their last action was recent). The dedup key becomes nullable; the purge job clears the
keys of rows older than the retry horizon.
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('follower') as batch:
        batch.add_column(sa.Column('window_message_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('window_message_used', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('window_event_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('window_event_used', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('invalid_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('inbound_message') as batch:
        batch.alter_column('dedup_key', existing_type=sa.String(length=160), nullable=True)
    op.create_index('ix_inbound_message_live_key', 'inbound_message', ['received_at'], unique=False,
                    postgresql_where=sa.text('dedup_key IS NOT NULL'), sqlite_where=sa.text('dedup_key IS NOT NULL'))


def downgrade():
    op.drop_index('ix_inbound_message_live_key', table_name='inbound_message')
    op.execute("UPDATE inbound_message SET dedup_key = 'expired:' || id WHERE dedup_key IS NULL")
    with op.batch_alter_table('inbound_message') as batch:
        batch.alter_column('dedup_key', existing_type=sa.String(length=160), nullable=False)
    with op.batch_alter_table('follower') as batch:
        for col in ('invalid_at', 'window_event_used', 'window_event_at', 'window_message_used', 'window_message_at'):
            batch.drop_column(col)
