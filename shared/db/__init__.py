"""Database access: engines, migrations, units of work."""
