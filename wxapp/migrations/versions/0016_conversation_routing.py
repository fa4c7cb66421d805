"""在线客服 routing: agents' presence (round-robin assignment of 人工客服 requests), the current
session's response times on the conversation, and closed sessions for per-agent figures

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 17:20:00

Open conversations start their session now; earlier ones have no figures.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation') as batch:
        batch.add_column(sa.Column('session_started_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('requested_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('first_response_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('first_response_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_conversation_first_response_by_id_employee'), 'employee',
                                 ['first_response_by_id'], ['id'])
    op.create_table('conversation_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=True),
    sa.Column('first_response_at', sa.DateTime(), nullable=True),
    sa.Column('first_response_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['employee.id'], name=op.f('fk_conversation_session_assignee_id_employee')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], name=op.f('fk_conversation_session_conversation_id_conversation')),
    sa.ForeignKeyConstraint(['first_response_by_id'], ['employee.id'], name=op.f('fk_conversation_session_first_response_by_id_employee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_session'))
    )
    op.create_index('ix_conversation_session_closed', 'conversation_session', ['closed_at'], unique=False)
    op.create_index(op.f('ix_conversation_session_conversation_id'), 'conversation_session', ['conversation_id'], unique=False)
    op.create_table('agent_presence',
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('accepting', sa.Boolean(), nullable=False),
    sa.Column('last_assigned_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], name=op.f('fk_agent_presence_employee_id_employee')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_agent_presence_org_id_organization')),
    sa.PrimaryKeyConstraint('employee_id', name=op.f('pk_agent_presence'))
    )
    op.create_index(op.f('ix_agent_presence_org_id'), 'agent_presence', ['org_id'], unique=False)
    op.execute("UPDATE conversation SET session_started_at = last_message_at WHERE status <> 'closed'")


def downgrade():
    op.drop_index(op.f('ix_agent_presence_org_id'), table_name='agent_presence')
    op.drop_table('agent_presence')
    op.drop_index(op.f('ix_conversation_session_conversation_id'), table_name='conversation_session')
    op.drop_index('ix_conversation_session_closed', table_name='conversation_session')
    op.drop_table('conversation_session')
    with op.batch_alter_table('conversation') as batch:
        batch.drop_constraint(op.f('fk_conversation_first_response_by_id_employee'), type_='foreignkey')
        batch.drop_column('first_response_by_id')
        batch.drop_column('first_response_at')
        batch.drop_column('requested_at')
        batch.drop_column('session_started_at')
