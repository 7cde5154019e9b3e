//! The status page, `GET /ui/` (DESIGN.md, "Admin API"): plain HTML, CSS and JavaScript
//! compiled into the binary, so it works offline and needs no build step.
//!
//! The files hold no data and are served without a token; the page asks for one, keeps it in
//! the tab's session storage, and reads everything it shows from the admin API with it, under
//! the same authentication and scopes as any other client. A strict Content-Security-Policy
//! lets the page load only its own files and talk only to this server.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/style.css");

/// Only this server's own files and API; no inline code, no frames.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /ui/`: the page.
#[utoipa::path(
    get,
    path = "/ui/",
    tag = "server",
    security(()),
    responses((status = 200, description = "The status page (HTML; it asks for a token)", content_type = "text/html"))
)]
pub async fn index() -> Response {
    file(INDEX, "text/html; charset=utf-8")
}

/// `GET /ui`: to `/ui/`, where the page's relative links work.
pub async fn bare() -> Redirect {
    Redirect::permanent("/ui/")
}

/// `GET /ui/app.js`.
#[utoipa::path(
    get,
    path = "/ui/app.js",
    tag = "server",
    security(()),
    responses((status = 200, description = "The status page's script", content_type = "text/javascript"))
)]
pub async fn script() -> Response {
    file(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /ui/style.css`.
#[utoipa::path(
    get,
    path = "/ui/style.css",
    tag = "server",
    security(()),
    responses((status = 200, description = "The status page's style sheet", content_type = "text/css"))
)]
pub async fn style() -> Response {
    file(STYLE, "text/css; charset=utf-8")
}
