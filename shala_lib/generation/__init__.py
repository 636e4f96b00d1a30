"""Models, chat-template rendering, constrained decoding, inference and the predictions table."""
