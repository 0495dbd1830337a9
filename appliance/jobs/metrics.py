"""Job runner metrics in Prometheus text, read from Redis so every worker process counts (workers listen on no port)."""

from __future__ import annotations

from typing import Any

from appliance.jobs.queue import DURATION_BUCKETS


def render(stats: dict[str, Any], durations: dict[str, float]) -> str:
    lines = ["# HELP appliance_jobs_total Jobs by outcome, all workers.", "# TYPE appliance_jobs_total counter"]
    for outcome, value in stats["totals"].items():
        lines.append(f'appliance_jobs_total{{outcome="{outcome}"}} {value}')
    lines += ["# HELP appliance_job_queue_depth Jobs per queue and state.", "# TYPE appliance_job_queue_depth gauge"]
    for queue, counts in stats["queues"].items():
        for state in ("queued", "running", "scheduled", "failed", "dead"):
            lines.append(f'appliance_job_queue_depth{{queue="{queue}",state="{state}"}} {counts[state]}')
    lines += ["# HELP appliance_job_oldest_waiting_seconds Age of the oldest queued job.",
              "# TYPE appliance_job_oldest_waiting_seconds gauge"]
    for queue, counts in stats["queues"].items():
        lines.append(f'appliance_job_oldest_waiting_seconds{{queue="{queue}"}} {counts["oldest_waiting_seconds"]}')
    lines += ["# HELP appliance_workers_alive Workers that beat within the last minute.",
              "# TYPE appliance_workers_alive gauge", f"appliance_workers_alive {len(stats['workers'])}"]
    lines += ["# HELP appliance_job_duration_seconds Job run time.", "# TYPE appliance_job_duration_seconds histogram"]
    cumulative = 0.0
    for bound in DURATION_BUCKETS:
        cumulative += durations.get(f"le_{bound:g}", 0.0)
        lines.append(f'appliance_job_duration_seconds_bucket{{le="{bound:g}"}} {cumulative:g}')
    cumulative += durations.get("le_inf", 0.0)
    lines.append(f'appliance_job_duration_seconds_bucket{{le="+Inf"}} {cumulative:g}')
    lines.append(f"appliance_job_duration_seconds_count {cumulative:g}")
    lines.append(f"appliance_job_duration_seconds_sum {durations.get('sum', 0.0):g}")
    return "\n".join(lines) + "\n"
