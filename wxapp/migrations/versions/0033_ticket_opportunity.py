"""ticket opportunity

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 19:55:55.781724

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None


def _foreign_keys(on: bool) -> None:
    """SQLite alters a table by copying it: the tables that point at ticket (events, work orders) would refuse the
    copy's DROP TABLE while foreign keys are enforced."""
    if op.get_bind().dialect.name == "sqlite":
        with op.get_context().autocommit_block():
            op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _foreign_keys(False)
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opportunity_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_ticket_opportunity_id'), ['opportunity_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_ticket_opportunity_id_opportunity'), 'opportunity', ['opportunity_id'], ['id'])
    _foreign_keys(True)


def downgrade():
    _foreign_keys(False)
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_ticket_opportunity_id_opportunity'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_ticket_opportunity_id'))
        batch_op.drop_column('opportunity_id')
    _foreign_keys(True)
