"""Effective hours: rules, calendar and the engine that turns punches into hours."""
