"""Stage 3: product and category figures in event-time windows, and the alerts they raise."""
