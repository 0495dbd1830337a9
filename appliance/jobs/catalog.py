"""Every module that registers jobs. Importing this module registers them all."""

from appliance.jobs import diagnostics  # noqa: F401
from appliance.jobs import whatsapp  # noqa: F401
