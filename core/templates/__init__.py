"""Email templates: versioned subject/html/text parts rendered with a sandboxed Jinja2,
optionally split into weighted A/B variants (docs/templates.md)."""
