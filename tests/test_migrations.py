from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from appliance import migrate
from appliance.models import Base
from tests.conftest import create_database, drop_database


def test_upgrade_downgrade_upgrade_and_models_agree():
    name = f"appliance_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(url)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert {"businesses", "users", "leads", "whatsapp_message", "receipts", "receipt_sync_runs"} <= tables
            indexes = {ix["name"]: ix for ix in inspect(conn).get_indexes("whatsapp_message")}
            partial = indexes["uq_whatsapp_message_provider_message_id"]
            assert partial["unique"]
            assert "provider_message_id IS NOT NULL" in partial["dialect_options"]["postgresql_where"]
            receipt_ix = {ix["name"] for ix in inspect(conn).get_indexes("receipts")}
            assert {"ix_receipts_business_id_received_at", "ix_receipts_business_id_status"} <= receipt_ix
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
            assert diff == []
    finally:
        engine.dispose()
        drop_database(name)
