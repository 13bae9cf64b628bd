"""Subscriptions (REST Hooks): many destinations per user, with type patterns and filters.

Kept import-light (storage imports :mod:`.filters`); the API is in :mod:`.router`, the rules in
:mod:`.service`, the SSRF guard in :mod:`.guard`.
"""
