"""API keys: creation, hashing (only hashes are stored), scopes, limits per key,
revocation and the in-process lookup cache (manager, store)."""
