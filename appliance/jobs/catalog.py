"""Every module that registers jobs. Importing this module registers them all."""

from appliance.jobs import (
    diagnostics,  # noqa: F401
    whatsapp,  # noqa: F401
)

# Receipts (phase A registration; becomes declarative lines when the catalog is):
from appliance.jobs.registry import job  # noqa: E402
from appliance.jobs.scheduler import every  # noqa: E402
from appliance.receipts import jobs as receipts_jobs  # noqa: E402

job("receipts.sync", max_retries=receipts_jobs.SYNC_RETRIES, timeout=600)(receipts_jobs.sync_job)
job("receipts.reap_stale", queue="low", max_retries=0, timeout=60)(receipts_jobs.reap_stale_job)
every(60, "receipts.reap_stale")
