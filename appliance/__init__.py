"""appliance: a single-host Trio appliance for an AI phone line, a WhatsApp inbox and a receipts CRM."""

__version__ = "0.1.0"
