"""whatsapp: message kinds, media, edits, deletes, reactions, placeholders; LID <-> phone map; pending events

Revision ID: 0011
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0002'
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column]:
    return [
        sa.Column('kind', sa.String(length=30), nullable=True),
        sa.Column('placeholder', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('media', sa.JSON(), nullable=True),
        sa.Column('meta', sa.JSON(), nullable=True),
        sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column('whatsapp_message', column)
    op.create_table(
        'whatsapp_identity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('business_id', sa.Integer(), nullable=False),
        sa.Column('lid', sa.String(length=120), nullable=False),
        sa.Column('phone', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['business_id'], ['businesses.id'],
                                name=op.f('fk_whatsapp_identity_business_id_businesses'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_identity')),
        sa.UniqueConstraint('business_id', 'lid', name=op.f('uq_whatsapp_identity_business_id_lid')),
    )
    op.create_index('ix_whatsapp_identity_business_id_phone', 'whatsapp_identity', ['business_id', 'phone'])
    op.create_table(
        'whatsapp_pending_event',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('business_id', sa.Integer(), nullable=False),
        sa.Column('target_provider_id', sa.String(length=200), nullable=False),
        sa.Column('dedupe', sa.String(length=300), nullable=False),
        sa.Column('event', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['business_id'], ['businesses.id'],
                                name=op.f('fk_whatsapp_pending_event_business_id_businesses'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_pending_event')),
        sa.UniqueConstraint('business_id', 'target_provider_id', 'dedupe',
                            name=op.f('uq_whatsapp_pending_event_business_id_target_provider_id_dedupe')),
    )


def downgrade() -> None:
    op.drop_table('whatsapp_pending_event')
    op.drop_index('ix_whatsapp_identity_business_id_phone', table_name='whatsapp_identity')
    op.drop_table('whatsapp_identity')
    for column in reversed(_columns()):
        op.drop_column('whatsapp_message', column.name)
