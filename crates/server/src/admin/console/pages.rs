//! The console's pages, rendered on the server with maud (every value
//! escaped). A page is a shell — navigation, heading, a status line, the
//! content area — that `console.js` fills from the admin API; the token
//! inspector's page is filled by `inspector.js`, in the browser only.

use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::PageSession;

/// A console page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Its name in the URL (`/console/<name>`) and in `data-page`.
    pub name: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// The scope its content needs, if any.
    pub needs: Option<&'static str>,
}

/// Every page, in the navigation's order.
pub const PAGES: [Page; 7] = [
    Page {
        name: "overview",
        title: "Overview",
        needs: None,
    },
    Page {
        name: "keys",
        title: "Signing keys",
        needs: Some("keys:read"),
    },
    Page {
        name: "clients",
        title: "Clients",
        needs: Some("clients:read"),
    },
    Page {
        name: "sessions",
        title: "Sessions",
        needs: Some("sessions:read"),
    },
    Page {
        name: "audit",
        title: "Audit trail",
        needs: Some("audit:read"),
    },
    Page {
        name: "resources",
        title: "Resources",
        needs: Some("clients:read"),
    },
    Page {
        name: "inspector",
        title: "Token inspector",
        needs: None,
    },
];

impl Page {
    /// The page called `name`.
    pub fn named(name: &str) -> Option<Page> {
        PAGES.iter().copied().find(|p| p.name == name)
    }

    fn href(self) -> String {
        if self.name == "overview" {
            "/console/".to_owned()
        } else {
            format!("/console/{}", self.name)
        }
    }
}

fn head(title: &str, extra: Markup) -> Markup {
    let css = assets::reference("console.css");
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · tessera console" }
            @if let Some(css) = css {
                link rel="stylesheet" href=(css.url) integrity=(css.integrity);
            }
            (extra)
        }
    }
}

fn script(name: &str) -> Markup {
    match assets::reference(name) {
        Some(s) => html! { script src=(s.url) integrity=(s.integrity) defer {} },
        None => html! {},
    }
}

/// A console page for a signed-in operator.
pub fn shell(page: Page, session: &PageSession, issuer: &str) -> Markup {
    let scopes = session.scopes.join(" ");
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(page.title, html! {
                meta name="csrf-token" content=(session.csrf);
                (script("console.js"))
                @if page.name == "inspector" { (script("inspector.js")) }
            }))
            body data-page=(page.name) data-scopes=(scopes) {
                header.top {
                    a.brand href="/console/" { "tessera" }
                    span.issuer { (issuer) }
                    nav aria-label="Console" {
                        ul {
                            @for p in PAGES {
                                li {
                                    @if p == page {
                                        a href=(p.href()) aria-current="page" { (p.title) }
                                    } @else {
                                        a href=(p.href()) { (p.title) }
                                    }
                                }
                            }
                        }
                    }
                    form.logout method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(session.csrf);
                        span.who { (session.admin_name) }
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" {
                    h1 { (page.title) }
                    div id="status" role="status" aria-live="polite" {}
                    div id="content" {
                        noscript { "The console needs JavaScript (its own files only)." }
                    }
                }
            }
        }
    }
}

/// The sign-in page; `nonce` is the sign-in form's CSRF token (also in a
/// cookie).
pub fn login(nonce: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in", html! {}))
            body data-page="login" {
                main id="main" {
                    form.login method="post" action="/console/login" {
                        h1 { "tessera console" }
                        @if let Some(e) = error {
                            p.error role="alert" { (e) }
                        }
                        p {
                            "Paste an admin token (" code { "tessera admins create" } "). "
                            "It stays on the server, in this console session; your browser "
                            "keeps only a session cookie."
                        }
                        label for="token" { "Admin token" }
                        // Not a password field: a browser would offer to
                        // save the admin token in its password manager.
                        input id="token" name="token" type="text" autocomplete="off"
                            autocapitalize="off" spellcheck="false" required autofocus;
                        input type="hidden" name="csrf" value=(nonce);
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// A console URL that names no page.
pub fn not_found() -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Not found", html! {}))
            body data-page="not-found" {
                main id="main" {
                    h1 { "No such page" }
                    p { a href="/console/" { "Back to the console" } }
                }
            }
        }
    }
}
