"""The live stream: stage events published by test events and replays (and,
in production, by the data plane) and delivered to whoever listens."""
