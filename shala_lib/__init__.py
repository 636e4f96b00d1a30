"""shala-workbench: train and evaluate LLMs on human label distributions (SHALA-LLM)."""

__version__ = "0.1.0"
