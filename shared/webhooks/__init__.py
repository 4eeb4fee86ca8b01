"""Webhooks to other systems: deliveries signed as the Standard Webhooks specification says (signing.py)."""
