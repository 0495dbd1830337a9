"""business settings: time zone and the AI agent's per-business configuration

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

def _columns() -> list[sa.Column]:
    return [
        sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
        sa.Column('agent_instructions', sa.Text(), nullable=True),
        sa.Column('agent_greeting', sa.Text(), nullable=True),
        sa.Column('agent_voice', sa.String(length=40), nullable=True),
        sa.Column('agent_tools', sa.JSON(), nullable=True),
        sa.Column('transfer_number', sa.String(length=40), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column('businesses', column)
    # 'hook' was a stub that never answered; the AI mode replaces it.
    op.execute("UPDATE businesses SET auto_reply_mode = 'off' WHERE auto_reply_mode NOT IN ('off', 'fixed', 'ai')")


def downgrade() -> None:
    for column in reversed(_columns()):
        op.drop_column('businesses', column.name)
