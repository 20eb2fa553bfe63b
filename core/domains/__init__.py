"""Sending domains: DKIM keys, DNS records and their verification, the resolver."""
