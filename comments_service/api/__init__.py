"""The public side of the service: the JSON API and plain-form endpoint readers' pages call
(cross-origin, CSRF-exempt), the OpenAPI document, Atom feeds and the health check."""
