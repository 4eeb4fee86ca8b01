"""Outcomes' FHIR R4 mapping: a patient's trajectory (site role, trajectory.py); the network's Measures
(measures.py) and the sites' cohort outcomes as MeasureReports (network role, measure_reports.py)."""
