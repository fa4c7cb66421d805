"""群发 (mass sends) of the official account and what WeChat reported of each

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 14:20:00
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('mass_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=True),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=False),
    sa.Column('tag_id', sa.Integer(), nullable=True),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('target_label', sa.String(length=100), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('openids', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('msg_id', sa.String(length=32), nullable=True),
    sa.Column('wechat_status', sa.String(length=100), nullable=True),
    sa.Column('total_count', sa.Integer(), nullable=True),
    sa.Column('filter_count', sa.Integer(), nullable=True),
    sa.Column('sent_count', sa.Integer(), nullable=True),
    sa.Column('error_count', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['employee.id'], name=op.f('fk_mass_send_created_by_id_employee')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_mass_send_org_id_organization')),
    sa.ForeignKeyConstraint(['tag_id'], ['follower_tag.id'], name=op.f('fk_mass_send_tag_id_follower_tag')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_send'))
    )
    with op.batch_alter_table('mass_send', schema=None) as batch_op:
        batch_op.create_index('ix_mass_send_appid', ['appid', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mass_send_msg_id'), ['msg_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mass_send_org_id'), ['org_id'], unique=False)


def downgrade():
    with op.batch_alter_table('mass_send', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mass_send_org_id'))
        batch_op.drop_index(batch_op.f('ix_mass_send_msg_id'))
        batch_op.drop_index('ix_mass_send_appid')
    op.drop_table('mass_send')
