"""One small module per model family, each defining its `FAMILY` record (model_adapters.families)."""
