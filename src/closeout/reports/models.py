"""Reports, consistency diagnostics and archive packs (S15, S16, S21, S22, S23)."""
