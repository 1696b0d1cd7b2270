"""Bounded storage: processed deliveries and call records older than the retention window are pruned."""
