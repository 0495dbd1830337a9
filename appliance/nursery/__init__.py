"""Supervision: sd_notify, the common role runner, and the supervising nursery of ``appliance up``."""
