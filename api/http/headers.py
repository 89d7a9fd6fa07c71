"""The headers every answer carries: a strict Content-Security-Policy and the other
browser protections (api/middleware.py adds them; the 500 answer, made past that middleware,
adds them itself in api/errors.py)."""

from __future__ import annotations

# Scripts, styles, images and connections from this server only; nothing inline, no frames,
# no plugins, no forms posting elsewhere. The dashboard and /docs (Swagger UI) live with it.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# ReDoc renders with styled-components, which writes <style> elements at run time, and runs its
# search in a worker made from a blob: only its page gets these two allowances.
REDOC_CSP = STRICT_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'") + (
    "; worker-src blob:"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", STRICT_CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
