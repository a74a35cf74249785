"""Stage 1: consume reviews/clicks/orders, infer in micro-batches, emit insights, signals and dead letters."""
