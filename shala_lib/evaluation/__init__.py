"""Comparing methods: reference predictions, significance, Tables 1-2, figures' data, reasoning."""
