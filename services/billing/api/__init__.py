"""Billing's HTTP routes."""
