"""Error review: run a model over a cohort, store per-case results, review and tag the errors."""
