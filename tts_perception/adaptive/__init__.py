"""Test-time scaling: operating points, complexity monitor, latency model, scheduler and the
per-frame pipeline that ties them together."""
