"""A contract's approval comment (审批意见), kept for the record's approval history

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decision_comment', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('contract', schema=None) as batch_op:
        batch_op.drop_column('decision_comment')
