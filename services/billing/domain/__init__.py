"""Billing's domain: money, code tables, prices, coverage and prior authorisation, Good Faith Estimates, the
ledger (charges, invoices, payments), claims, and access barriers. Pure rules and typed aggregates; no I/O."""
