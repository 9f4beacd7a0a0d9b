"""The database: SQLModel tables (models), engines and connections (db), what it can hold (guard),
and the reads and writes the pipeline needs (queries). No module-level engine: callers pass one in."""
