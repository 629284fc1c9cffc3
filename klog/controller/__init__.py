"""Metadata quorum, metadata log records and the metadata image every node applies."""
