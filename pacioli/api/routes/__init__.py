"""The API's routes, one module per resource; every ledger route lives under API_PREFIX."""

# Each router carries the full prefix itself (rather than being included under it), so a
# route's own template is the full path the metrics label requests with.
API_PREFIX = "/v1"
