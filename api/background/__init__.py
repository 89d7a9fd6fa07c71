"""Work the API process does beside the requests: sending run messages, and the reaper."""
