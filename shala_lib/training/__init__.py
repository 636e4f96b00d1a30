"""GRPO training: experiment config, trainers, callbacks, run folders, warm-up, dispatch."""
