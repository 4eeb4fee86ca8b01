"""Outcomes' pure rules: what response and remission mean, a patient's trajectory, follow-ups, a course's
summary, and the cohort aggregates that cross to the network. No I/O."""
