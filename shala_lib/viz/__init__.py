"""Figures and ipywidgets inspectors."""
