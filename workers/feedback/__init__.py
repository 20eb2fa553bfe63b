"""Feedback that comes back by mail: the actor that parses stored inbound reports."""
