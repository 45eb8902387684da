"""What operators see: logs, progress lines, counters and the run summary."""
