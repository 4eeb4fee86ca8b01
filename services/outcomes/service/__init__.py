"""Outcomes' use cases: load the site's projections, call the domain, publish, audit, commit."""
