"""The bottom layer: types and helpers every other package may use.

Samples and the generation-failure sentinel, rates and intervals, run-record types, HTTP
retry timing and vLLM engine defaults. It imports nothing else of mis-eval (enforced by the
import-linter contracts in `.importlinter`), so judges, benchmarks and model adapters can
depend on it without depending on the app.
"""
