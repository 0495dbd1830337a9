"""The Redis-backed job runner and the jobs themselves.

Errors::

    JobError
    ├── UnknownJobError        enqueue of a name no job function is registered under
    ├── JobArgumentsError      arguments that are not JSON, or no longer match the function
    └── JobStateError          an operation the job's state does not allow (retry of a running job)
        └── JobNotFoundError   no such job (or its record expired)
"""

from appliance.jobs.registry import JobArgumentsError, JobContext, JobError, JobStateError, UnknownJobError, job

__all__ = ["JobArgumentsError", "JobContext", "JobError", "JobStateError", "UnknownJobError", "job"]
