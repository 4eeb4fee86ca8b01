"""Measures during care (PHQ-9, GAD-7, PCL-5) and safety flags: one mechanism for every service."""
