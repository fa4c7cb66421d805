"""The staff phone workbench: accepting a work order, the arrival check-in, the customer's signatures, and the
employee's WeCom (企业微信) UserID

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 23:08:18
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('work_order_signature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=12), nullable=False),
    sa.Column('media_id', sa.Integer(), nullable=False),
    sa.Column('signer_name', sa.String(length=64), nullable=True),
    sa.Column('employee_id', sa.Integer(), nullable=True),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['employee_id'], ['employee.id'], name=op.f('fk_work_order_signature_employee_id_employee')),
    sa.ForeignKeyConstraint(['media_id'], ['media_file.id'], name=op.f('fk_work_order_signature_media_id_media_file')),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_order.id'], name=op.f('fk_work_order_signature_work_order_id_work_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_order_signature')),
    sa.UniqueConstraint('work_order_id', 'purpose', name=op.f('uq_work_order_signature_work_order_id_purpose'))
    )
    with op.batch_alter_table('work_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('arrived_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('arrival_checkin_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('arrival_distance_m', sa.Double(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_work_order_arrival_checkin_id_check_in'), 'check_in', ['arrival_checkin_id'], ['id'])
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wecom_userid', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_employee_org_id_wecom_userid'), ['org_id', 'wecom_userid'])

    from crm_core.org.builtin_roles import sync_builtin_roles

    sync_builtin_roles(op.get_bind())  # engineers check in on arrival


def downgrade():
    with op.batch_alter_table('employee', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_employee_org_id_wecom_userid'), type_='unique')
        batch_op.drop_column('wecom_userid')
    with op.batch_alter_table('work_order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_work_order_arrival_checkin_id_check_in'), type_='foreignkey')
        batch_op.drop_column('arrival_distance_m')
        batch_op.drop_column('arrival_checkin_id')
        batch_op.drop_column('arrived_at')
        batch_op.drop_column('accepted_at')

    op.drop_table('work_order_signature')
