"""previews: the Content-ID of an inline part, and why a preview or thumbnail failed

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('receipt_attachments', sa.Column('content_id', sa.String(length=300), nullable=True))
    op.add_column('receipt_attachments', sa.Column('preview_error', sa.Text(), nullable=True))
    op.add_column('receipts', sa.Column('preview_error', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('receipts', 'preview_error')
    op.drop_column('receipt_attachments', 'preview_error')
    op.drop_column('receipt_attachments', 'content_id')
