"""One module per model family: its torch module(s) and its estimator class."""
