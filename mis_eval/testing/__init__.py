"""Test doubles, usable in your own offline CI as in ours.

- `fake_openai`: a real OpenAI-compatible HTTP server on 127.0.0.1 (chat completions,
  /models, scripted replies, injected faults and latency) standing in for a judge or API model.
- `tiny`: random-weight checkpoints of each VLM family with a small local tokenizer, for
  running the real transformers / vLLM code paths without a hub download.
- `synthetic_runs` / `synthetic_viewer`: run records and per-sample files written through
  the real record writer, for leaderboard and viewer tests and benchmarks.

Nothing in the product imports this package.
"""
