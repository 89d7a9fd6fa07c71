"""HTTP helpers the routes share: entity tags and conditional GETs (etags), JSON answers as
bytes (json_bytes), CSV downloads (csv_response), the freshness window of polled answers
(freshness), Server-Sent Events (sse), the headers every answer carries (headers) and moving
blocking work off the event loop (threads). The services below the routes return plain data
and know none of this (.ci/check_layering.py holds them to it)."""
