"""Leads: the business's contacts (store) and their API."""
