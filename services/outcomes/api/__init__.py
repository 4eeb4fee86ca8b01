"""Outcomes' HTTP routes: the site role's trajectories and cohorts, the network role's aggregates."""
