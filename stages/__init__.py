"""Each stage's orchestration in plain Python (no Dagster): assets, the runner and the CLI call these."""
