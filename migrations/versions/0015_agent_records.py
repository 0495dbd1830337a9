"""AI agent records: a call's transcript, tool calls, usage and lead; an AI reply's usage; per-business call
limits

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('businesses', sa.Column('agent_silence_seconds', sa.Integer(), nullable=True))
    op.add_column('businesses', sa.Column('agent_max_call_seconds', sa.Integer(), nullable=True))
    op.add_column('calls', sa.Column('lead_id', sa.Integer(), nullable=True))
    op.add_column('calls', sa.Column('transcript', sa.JSON(), nullable=True))
    op.add_column('calls', sa.Column('tool_calls', sa.JSON(), nullable=True))
    op.add_column('calls', sa.Column('usage', sa.JSON(), nullable=True))
    op.create_index(op.f('ix_calls_lead_id'), 'calls', ['lead_id'])
    op.create_foreign_key(op.f('fk_calls_lead_id_leads'), 'calls', 'leads', ['lead_id'], ['id'], ondelete='SET NULL')
    op.add_column('whatsapp_message', sa.Column('usage', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('whatsapp_message', 'usage')
    op.drop_constraint(op.f('fk_calls_lead_id_leads'), 'calls', type_='foreignkey')
    op.drop_index(op.f('ix_calls_lead_id'), table_name='calls')
    for column in ('usage', 'tool_calls', 'transcript', 'lead_id'):
        op.drop_column('calls', column)
    op.drop_column('businesses', 'agent_max_call_seconds')
    op.drop_column('businesses', 'agent_silence_seconds')
