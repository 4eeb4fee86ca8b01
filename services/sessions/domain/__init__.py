"""Sessions' domain: typed aggregates (a treatment course, a dosing session and its record) whose methods check
the clinical rules and return the events to publish, and the rules themselves, one module per topic (dosing,
vitals, recovery, discharge, scheduling, REMS, eligibility), each with its source. No I/O."""
