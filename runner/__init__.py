"""runner: the article's ns-proc container (not built yet; see issue 3)."""
