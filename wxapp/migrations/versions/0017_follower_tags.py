"""Follower tags (粉丝标签) kept in step with WeChat's tag API

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 17:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('follower_tag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=30), nullable=False),
    sa.Column('wechat_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follower_tag')),
    sa.UniqueConstraint('appid', 'name', name=op.f('uq_follower_tag_appid_name'))
    )
    op.create_table('follower_tag_link',
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['follower_id'], ['follower.id'], name=op.f('fk_follower_tag_link_follower_id_follower')),
    sa.ForeignKeyConstraint(['tag_id'], ['follower_tag.id'], name=op.f('fk_follower_tag_link_tag_id_follower_tag'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tag_id', 'follower_id', name=op.f('pk_follower_tag_link'))
    )
    op.create_index(op.f('ix_follower_tag_link_follower_id'), 'follower_tag_link', ['follower_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_follower_tag_link_follower_id'), table_name='follower_tag_link')
    op.drop_table('follower_tag_link')
    op.drop_table('follower_tag')
