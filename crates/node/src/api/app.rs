//! The web apps (`web/`: patient wallet, clinician portal, dashboards,
//! ledger explorer), embedded at build time from the committed `web/dist`
//! and served at `/app/`; `/` redirects there. Pages are static: what they
//! show comes from the API, signed in the browser with the person's key.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;

/// One embedded file of `web/dist`.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The pages load nothing but their own files and talk only to this node.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// `GET /` and `GET /app`.
pub async fn to_app() -> Redirect {
    Redirect::to("/app/")
}

/// `GET /app/`.
pub async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve("index.html", &headers)
}

/// `GET /app/{*path}`.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&path, &headers)
}

/// File names the build gives a content hash (`app-3FQ2K7ZP.js`) never
/// change, so browsers may keep them; the rest are revalidated.
fn is_hashed(path: &str) -> bool {
    let stem = path.rsplit_once('.').map(|(s, _)| s).unwrap_or(path);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 8
            && hash
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let asset = asset(path).ok_or_else(|| {
        ApiError::not_found(format!(
            "/app/{} is not a page or file of the web apps; open /app/ to start",
            path.chars().take(200).collect::<String>()
        ))
    })?;
    let gzip = accepts_gzip(headers);
    let cache = if is_hashed(path) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, if gzip { asset.gzip } else { asset.body }).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_pages_are_embedded() {
        let index = asset("index.html").expect("web/dist/index.html is committed");
        let html = std::str::from_utf8(index.body).unwrap();
        // Every script and stylesheet the page names is embedded too.
        for reference in html.split('"').filter(|s| s.starts_with("./")) {
            assert!(asset(&reference[2..]).is_some(), "{reference} is missing");
        }
        assert!(!index.gzip.is_empty());
    }

    #[test]
    fn hashed_names_and_gzip_negotiation() {
        assert!(is_hashed("app-3FQ2K7ZP.js"));
        assert!(is_hashed("chunks/qr-ABCDEFGH.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("app-3fq2k7zp.js"));
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&h)
        };
        assert!(with("gzip, deflate, br"));
        assert!(with("br;q=1.0, gzip;q=0.8"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn unknown_files_are_404_with_a_way_back() {
        let error = serve("../../etc/passwd", &HeaderMap::new()).unwrap_err();
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert!(error.message.contains("open /app/"));
    }
}
