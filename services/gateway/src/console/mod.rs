//! The web console, served under `/console` on the HTTP listener: sign-in with an API key,
//! then pages for alerts (search), attack paths, the explorer, images and rules. Pages are
//! rendered on the server from the gRPC API's answers ([`api`]); the browser gets HTML, one
//! stylesheet and one script, all compiled into the binary, under a strict
//! Content-Security-Policy.

mod api;
mod html;
mod pages;
pub mod session;
mod svg;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use palisade_proto::v1::GetStatusRequest;

use api::Api;
use session::{
    SESSION_COOKIE, SIGNIN_COOKIE, Session, Sessions, cookie, random_token, set_cookie,
    tokens_equal,
};

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Whether the listener is TLS: cookies are then `Secure` and HSTS is sent.
    pub secure: bool,
    /// A session unused this long ends.
    pub idle_timeout: Duration,
    /// Most sessions at once.
    pub max_sessions: usize,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            secure: true,
            idle_timeout: Duration::from_secs(30 * 60),
            max_sessions: 10_000,
        }
    }
}

/// Shared state of the console's handlers.
#[derive(Clone)]
pub(crate) struct Console {
    routes: tonic::service::Routes,
    sessions: Arc<Sessions>,
    settings: Arc<ConsoleSettings>,
}

/// The console's routes, calling the gRPC services of `routes` in process.
pub fn router(routes: tonic::service::Routes, settings: ConsoleSettings) -> Router {
    let secure = settings.secure;
    let console = Console {
        routes,
        sessions: Arc::new(Sessions::new(settings.idle_timeout, settings.max_sessions)),
        settings: Arc::new(settings),
    };
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(pages::overview))
        .route("/console/signin", get(signin_page).post(signin))
        .route("/console/signout", post(signout))
        .route("/console/alerts", get(pages::alerts))
        .route("/console/alerts/{id}", get(pages::alert))
        .route("/console/paths", get(pages::paths))
        .route("/console/paths/{id}", get(pages::path))
        .route("/console/explorer", get(pages::explorer))
        .route("/console/images", get(pages::images))
        .route("/console/rules", get(pages::rules))
        .route("/console/assets/{name}", get(asset))
        .layer(middleware::from_fn(move |request, next| {
            security_headers(secure, request, next)
        }))
        .with_state(console)
}

/// The security headers of every console response.
async fn security_headers(secure: bool, request: axum::extract::Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// A request from a signed-in browser: its session and the API as its key.
pub(crate) struct SignedIn {
    session_id: String,
    session: Session,
    api: Api,
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        console: &Console,
    ) -> Result<SignedIn, Response> {
        let signed_in = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| {
            let session = console.sessions.touch(id)?;
            let api = Api::new(console.routes.clone(), &session.api_key)?;
            Some(SignedIn {
                session_id: id.to_string(),
                session,
                api,
            })
        });
        signed_in.ok_or_else(|| Redirect::to("/console/signin").into_response())
    }
}

#[derive(serde::Deserialize)]
struct SigninForm {
    api_key: String,
    csrf: String,
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The sign-in page, with a fresh CSRF token in a cookie and in the form.
async fn signin_page(State(console): State<Console>) -> Response {
    signin_form(&console, None, StatusCode::OK)
}

fn signin_form(console: &Console, error: Option<&str>, status: StatusCode) -> Response {
    let token = random_token();
    let page = html::bare(
        "Sign in",
        html! {
            main.signin {
                h1 { "Palisade" }
                form #signin method="post" action="/console/signin" {
                    label for="api-key" { "API key" }
                    input #api-key type="password" name="api_key" autocomplete="off" required autofocus;
                    input type="hidden" name="csrf" value=(token);
                    button #signin-submit type="submit" { "Sign in" }
                }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                p.hint { "Create a key with " code { "palisade admin key create" } "." }
            }
        },
    );
    let cookie = set_cookie(SIGNIN_COOKIE, &token, console.settings.secure, Some(600));
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

/// Checks the key against the gRPC API and starts a session.
async fn signin(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SigninForm>,
) -> Response {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !tokens_equal(expected, &form.csrf) {
        return forbidden(
            "the sign-in form expired or did not come from this console; load it again",
        );
    }
    let api_key = form.api_key.trim().to_string();
    let Some(api) = Api::new(console.routes.clone(), &api_key) else {
        return signin_form(
            &console,
            Some("That is not an API key."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let status = match api.admin().get_status(GetStatusRequest {}).await {
        Ok(status) => status.into_inner(),
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            return signin_form(
                &console,
                Some("Unknown, revoked or expired API key."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(status) => return pages::status_page(&status),
    };
    let id = console.sessions.start(api_key, status.tenant_id);
    let secure = console.settings.secure;
    (
        StatusCode::SEE_OTHER,
        AppendHeaders([
            (header::LOCATION, "/console/".to_string()),
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, &id, secure, None),
            ),
            (
                header::SET_COOKIE,
                set_cookie(SIGNIN_COOKIE, "", secure, Some(0)),
            ),
        ]),
    )
        .into_response()
}

/// Ends the session (the form must carry the session's CSRF token).
async fn signout(
    State(console): State<Console>,
    signed_in: SignedIn,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Response {
    if !tokens_equal(&signed_in.session.csrf, &form.csrf) {
        return forbidden("the form did not carry this session's token; reload the page");
    }
    console.sessions.end(&signed_in.session_id);
    let secure = console.settings.secure;
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/console/signin".to_string()),
            (
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", secure, Some(0)),
            ),
        ],
    )
        .into_response()
}

fn forbidden(reason: &str) -> Response {
    let page = html::bare(
        "Refused",
        html! { main.signin { h1 { "Refused" } p.error { (reason) } a href="/console/signin" { "Sign in" } } },
    );
    (StatusCode::FORBIDDEN, page).into_response()
}

const STYLESHEET: &str = include_str!("assets/console.css");
const SCRIPT: &str = include_str!("assets/console.js");

/// The stylesheet and the script.
async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return pages::not_found("no such asset"),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}
