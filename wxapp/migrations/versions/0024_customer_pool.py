"""公海 (the customer pool): who held a customer, from when to when, and why it ended

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 06:20:00
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('customer_holding',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('employee_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('how', sa.String(length=12), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=12), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_holding_customer_id_customer')),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], name=op.f('fk_customer_holding_employee_id_employee')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_customer_holding_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_holding'))
    )
    with op.batch_alter_table('customer_holding', schema=None) as batch_op:
        batch_op.create_index('ix_customer_holding_customer', ['customer_id', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_holding_employee_id'), ['employee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_customer_holding_org_id'), ['org_id'], unique=False)


def downgrade():
    with op.batch_alter_table('customer_holding', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_holding_org_id'))
        batch_op.drop_index(batch_op.f('ix_customer_holding_employee_id'))
        batch_op.drop_index('ix_customer_holding_customer')

    op.drop_table('customer_holding')
