"""Repeated reader requests: the grouping core, settling, the service around it, its views."""
