"""Metrics, rewards and the method and metric registries: pure functions of predictions and targets."""
