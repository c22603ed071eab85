"""Negative-sentiment spike alerts: per-brand buckets, a detector, incident lifecycle, notifiers."""
