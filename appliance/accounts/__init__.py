"""Businesses, users, sessions and API tokens (store); the business settings API."""
