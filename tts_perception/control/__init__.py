"""The latency- and quality-aware speed law (pure; the controller node wires it to topics)."""
