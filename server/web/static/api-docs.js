// /docs: Swagger UI over this server's OpenAPI document, from the vendored copy (no CDN). Kept in
// a file of its own because the Content-Security-Policy allows no inline script.
/* global SwaggerUIBundle */
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Requests from "Try it out" go to this origin with the session cookie, like the web UI.
  withCredentials: true,
});
