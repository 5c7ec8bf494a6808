"""Artificial face-mask dataset generator: find faces, fit mask styles, write paired crops."""
