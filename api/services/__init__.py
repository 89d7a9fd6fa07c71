"""The API's domain logic, free of HTTP: routes parse a request, call these, shape the answer."""
