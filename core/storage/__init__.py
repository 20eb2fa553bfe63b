"""Storage: the SQLAlchemy engine and schema (db), Alembic migrations (migrate,
migrations/), group commit of many callers' writes in one transaction, and settling a
COMMIT whose connection broke (commit_outcome). No business rules."""
