"""Open and click tracking (docs/tracking.md): the tokens, the html rewriting done
before DKIM signing, machine-open recognition and the OPENED/CLICKED events."""
