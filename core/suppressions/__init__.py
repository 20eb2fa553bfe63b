"""The account's suppression list: addresses Postwire will not send to, and why."""
