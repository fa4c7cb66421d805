"""Timeline audience (entries internal by default, public ones carry the shared note); dispatchers may unbind followers

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:45:00

Existing entries keep their ``public`` flag but get no ``public_note``: customers see their labels,
and no earlier internal note.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket_event') as batch:
        batch.add_column(sa.Column('public_note', sa.String(length=1000), nullable=True))
    # the dispatcher may undo a follower's binding (follower: edit)
    from crm_core.org.builtin_roles import sync_builtin_roles

    sync_builtin_roles(op.get_bind())


def downgrade():
    with op.batch_alter_table('ticket_event') as batch:
        batch.drop_column('public_note')
