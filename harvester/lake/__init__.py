"""Writing the lake: sinks (S3, a local directory), chunk encoding, object keys, the saved state, the
writer lease and the commit that ties them together exactly once."""
