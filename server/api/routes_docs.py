"""``/docs``: the API documentation (Swagger UI) served from the package — a vendored copy of
swagger-ui-dist (server/web/static/vendor/swagger-ui/, with its licence) — so that it works on a
site without internet. FastAPI's own page loads Swagger UI from a CDN and starts it with an
inline script, which the Content-Security-Policy (server/api/security_headers.py) refuses; this
page starts it from /static/api-docs.js instead. Its policy only adds ``data:`` images (Swagger
UI's CSS draws a few icons that way)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from server.api.security_headers import CONTENT_SECURITY_POLICY

router = APIRouter()
SWAGGER_UI_VERSION = "5.32.0"
VENDOR = "/static/vendor/swagger-ui"
DOCS_POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' data:")
PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Tandem API</title>
  <link rel="icon" type="image/png" href="{VENDOR}/favicon-32x32.png">
  <link rel="stylesheet" href="{VENDOR}/swagger-ui.css?v={SWAGGER_UI_VERSION}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{VENDOR}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False)
def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"})
