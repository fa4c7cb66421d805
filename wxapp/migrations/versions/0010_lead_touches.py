"""Lead touches: a later intent that matches a lead by phone is recorded beside it, not merged over it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:30:00

Existing leads get no touches back-filled; their ``attribution.intents`` history stays readable.
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('lead_touch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('material_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('product_interest', sa.String(length=200), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('attribution', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['lead.id'], name=op.f('fk_lead_touch_lead_id_lead'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_lead_touch_org_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_touch'))
    )
    op.create_index('ix_lead_touch_lead', 'lead_touch', ['lead_id', 'id'], unique=False)
    op.create_index('ix_lead_touch_campaign', 'lead_touch', ['campaign_id'], unique=False)


def downgrade():
    op.drop_index('ix_lead_touch_campaign', table_name='lead_touch')
    op.drop_index('ix_lead_touch_lead', table_name='lead_touch')
    op.drop_table('lead_touch')
