// Starts Swagger UI on the spec this server serves; a file rather than an inline script so the
// page works under a Content-Security-Policy without 'unsafe-inline'.
window.addEventListener('load', () => {
  window.ui = SwaggerUIBundle({
    url: '/docs/json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    persistAuthorization: false,
  })
})
