"""Calls on record: rows written by the media role (store) and their API."""
