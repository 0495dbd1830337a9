"""receipts: status 'new', one active sync run per business, checkpoints, stored bodies and attachments

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column('receipts', 'status', server_default='new')
    op.execute("UPDATE receipts SET status = 'new' WHERE status = 'pending_review'")
    op.add_column('receipts', sa.Column('sender', sa.String(length=320), nullable=True))
    op.add_column('receipts', sa.Column('body_html', sa.Text(), nullable=True))
    op.add_column('receipts', sa.Column('body_text', sa.Text(), nullable=True))
    op.add_column('receipts', sa.Column('source', sa.String(length=20), nullable=True))
    op.add_column('receipts', sa.Column('thumbnail_path', sa.Text(), nullable=True))
    op.add_column('receipts', sa.Column('sync_run_id', sa.Integer(), nullable=True))
    op.add_column('receipts', sa.Column('updated_at', sa.DateTime(timezone=True),
                                        server_default=sa.text('now()'), nullable=False))
    op.create_foreign_key(op.f('fk_receipts_sync_run_id_receipt_sync_runs'), 'receipts', 'receipt_sync_runs',
                          ['sync_run_id'], ['id'], ondelete='SET NULL')
    op.add_column('receipt_attachments', sa.Column('sha256', sa.String(length=64), nullable=True))
    op.add_column('receipt_attachments', sa.Column('thumbnail_path', sa.Text(), nullable=True))
    op.add_column('receipt_sync_runs', sa.Column('checkpoint', sa.JSON(), nullable=True))
    op.add_column('receipt_sync_runs', sa.Column('last_progress_at', sa.DateTime(timezone=True),
                                                 nullable=True))
    # Runs left active by the old code would block the new index: fail them first.
    op.execute("UPDATE receipt_sync_runs SET status = 'failed', "
               "error_message = 'superseded by migration 0012' WHERE status IN ('queued', 'running') "
               "AND id NOT IN (SELECT max(id) FROM receipt_sync_runs "
               "WHERE status IN ('queued', 'running') GROUP BY business_id)")
    op.create_index('uq_receipt_sync_runs_active', 'receipt_sync_runs', ['business_id'], unique=True,
                    postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.add_column('gmail_connections', sa.Column('status', sa.String(length=20), server_default='ok',
                                                 nullable=False))
    op.add_column('gmail_connections', sa.Column('history_id', sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.drop_column('gmail_connections', 'history_id')
    op.drop_column('gmail_connections', 'status')
    op.drop_index('uq_receipt_sync_runs_active', table_name='receipt_sync_runs',
                  postgresql_where=sa.text("status IN ('queued', 'running')"))
    op.drop_column('receipt_sync_runs', 'last_progress_at')
    op.drop_column('receipt_sync_runs', 'checkpoint')
    op.drop_column('receipt_attachments', 'thumbnail_path')
    op.drop_column('receipt_attachments', 'sha256')
    op.drop_constraint(op.f('fk_receipts_sync_run_id_receipt_sync_runs'), 'receipts', type_='foreignkey')
    for column in ('updated_at', 'sync_run_id', 'thumbnail_path', 'source', 'body_text', 'body_html',
                   'sender'):
        op.drop_column('receipts', column)
    op.execute("UPDATE receipts SET status = 'pending_review' WHERE status = 'new'")
    op.alter_column('receipts', 'status', server_default='pending_review')
