"""Each platform's wire format and rules, sans-I/O: X, Bluesky, Mastodon, synthetic."""
