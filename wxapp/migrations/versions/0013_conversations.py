"""在线客服: one conversation per WeChat user (its messages are the inbound and outbox rows)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:45:00

Existing followers get a conversation when they next write; earlier messages show in it then.
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('conversation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('last_message_at', sa.DateTime(), nullable=False),
    sa.Column('last_read_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['employee.id'], name=op.f('fk_conversation_assignee_id_employee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation')),
    sa.UniqueConstraint('appid', 'openid', name=op.f('uq_conversation_appid_openid'))
    )
    op.create_index('ix_conversation_recent', 'conversation', ['status', 'last_message_at'], unique=False)


def downgrade():
    op.drop_index('ix_conversation_recent', table_name='conversation')
    op.drop_table('conversation')
