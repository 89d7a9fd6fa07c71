// Starts Swagger UI on /docs. A file of its own, not an inline script, so that the page runs
// under the same Content-Security-Policy as the dashboard (script-src 'self').
"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  // The default validator badge would fetch from the internet: off.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
