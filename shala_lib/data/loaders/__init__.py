"""Readers of the released dataset files (one module per dataset whose files need code)."""
