"""The Redis-backed job runner: queue, worker, scheduler; jobs are declared in :mod:`appliance.jobs.catalog`.

Errors::

    JobError
    ├── UnknownJobError        enqueue of a name no job is declared under
    ├── JobArgumentsError      arguments that are not JSON, or no longer match the function
    └── JobStateError          an operation the job's state does not allow (retry of a running job)
        └── JobNotFoundError   no such job (or its record expired)
"""

from appliance.jobs.registry import JobArgumentsError, JobContext, JobError, JobStateError, UnknownJobError

__all__ = ["JobArgumentsError", "JobContext", "JobError", "JobStateError", "UnknownJobError"]
