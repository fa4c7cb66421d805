"""The official account run from the console: auto-reply rules and the menu editor's history;
marketers may edit the account (wechat_account: view, edit)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 17:00:00

No rule rows are created: until someone edits them, the built-in answers and the repository's
menu.json stay in force.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('auto_reply_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('match', sa.String(length=12), nullable=True),
    sa.Column('pattern', sa.String(length=200), nullable=True),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['employee.id'], name=op.f('fk_auto_reply_rule_updated_by_id_employee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auto_reply_rule'))
    )
    op.create_index('ix_auto_reply_rule_appid', 'auto_reply_rule', ['appid', 'kind'], unique=False)
    op.create_table('menu_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appid', sa.String(length=32), nullable=False),
    sa.Column('menu', sa.JSON(), nullable=False),
    sa.Column('errcode', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('pushed_at', sa.DateTime(), nullable=False),
    sa.Column('pushed_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['pushed_by_id'], ['employee.id'], name=op.f('fk_menu_version_pushed_by_id_employee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_menu_version'))
    )
    op.create_index('ix_menu_version_appid', 'menu_version', ['appid', 'id'], unique=False)
    from crm_core.org.builtin_roles import sync_builtin_roles

    sync_builtin_roles(op.get_bind())


def downgrade():
    op.drop_index('ix_menu_version_appid', table_name='menu_version')
    op.drop_table('menu_version')
    op.drop_index('ix_auto_reply_rule_appid', table_name='auto_reply_rule')
    op.drop_table('auto_reply_rule')
