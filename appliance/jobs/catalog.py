"""Every job and periodic job, declared by name with its policy, apart from its code (as arq's
``Worker(functions=...)``). Producers read these declarations only; importing this module imports no job
code. The worker resolves a job's ``"module:function"`` the first time it runs one.
"""

from appliance.jobs.registry import Catalog, JobSpec, Periodic

JOBS = Catalog(
    [
        JobSpec("diagnostics.ping", "appliance.jobs.diagnostics:ping", queue="high", max_retries=0, timeout=10),
        JobSpec("diagnostics.sleep", "appliance.jobs.diagnostics:sleep", max_retries=0, timeout=3600),
        JobSpec("diagnostics.noop", "appliance.jobs.diagnostics:noop", max_retries=0, timeout=10),
        JobSpec("diagnostics.stamp", "appliance.jobs.diagnostics:stamp", max_retries=0, timeout=10),
        JobSpec("diagnostics.fail", "appliance.jobs.diagnostics:fail", max_retries=2, timeout=10),
        JobSpec("diagnostics.fail_once", "appliance.jobs.diagnostics:fail_once", max_retries=0, timeout=10),
        JobSpec("diagnostics.block", "appliance.jobs.diagnostics:block", max_retries=0, timeout=3600),
        JobSpec("diagnostics.hang", "appliance.jobs.diagnostics:hang", max_retries=0, timeout=3600),
        JobSpec("whatsapp.process_message", "appliance.whatsapp.jobs:process_message", queue="high", timeout=60),
        JobSpec("whatsapp.apply_status", "appliance.whatsapp.jobs:apply_status", timeout=30),
        JobSpec("whatsapp.send_reply", "appliance.whatsapp.jobs:send_reply", queue="high", timeout=90),
        JobSpec("agent.whatsapp_reply", "appliance.agent.jobs:whatsapp_reply", queue="high", timeout=120,
                max_retries=2),
        JobSpec("whatsapp.apply_update", "appliance.whatsapp.jobs:apply_update", queue="high", timeout=30),
        JobSpec("whatsapp.learn_identity", "appliance.whatsapp.jobs:learn_identity", queue="high", timeout=30),
        JobSpec("whatsapp.fetch_media", "appliance.whatsapp.jobs:fetch_media", queue="low", timeout=180, max_retries=5),
        JobSpec("receipts.sync", "appliance.receipts.jobs:sync_job", timeout=600, max_retries=8),
        JobSpec("receipts.reap_stale", "appliance.receipts.jobs:reap_stale_job", queue="low", max_retries=0,
                timeout=60),
        # Previews: the render (and its wait behind the one browser) and a cold Chromium start fit in the timeout.
        JobSpec("previews.render_email", "appliance.previews.jobs:render_email", queue="low", timeout=180),
        JobSpec("previews.pdf_thumbnail", "appliance.previews.jobs:pdf_thumbnail", queue="low", timeout=60),
        JobSpec("previews.screenshot", "appliance.previews.jobs:screenshot", queue="low", timeout=180,
                max_retries=1),
    ],
    periodic=[
        Periodic("receipts.reap_stale", 60),
    ],
)
