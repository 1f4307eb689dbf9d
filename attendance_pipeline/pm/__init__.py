"""Delivery to project-management systems: one adapter per system behind one interface."""
