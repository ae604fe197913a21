"""Measurements behind the course's studies that are not training runs themselves."""
