//! The RFC 9421 signature base of a request, built with `httpsig`.

use http::{HeaderMap, HeaderName, Method};
use httpsig::prelude::message_component::{
    DerivedComponentName, HttpMessageComponent, HttpMessageComponentId, HttpMessageComponentName,
};
use httpsig::prelude::{HttpSignatureBase, HttpSignatureParams};

use crate::error::AuthError;

pub(crate) const METHOD: &str = "@method";
pub(crate) const PATH: &str = "@path";
pub(crate) const QUERY: &str = "@query";
pub(crate) const CONTENT_DIGEST: &str = "content-digest";

/// What the signature base is built from: the request line and headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The absolute path, as sent (not percent-decoded).
    pub path: &'a str,
    /// The query without its `?`; `None` when the target has none.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// Whether the request has a body (a `Content-Length` above zero or a
    /// `Transfer-Encoding`): then `Content-Digest` must be signed.
    pub has_body: bool,
}

/// The id of a component with no parameters, e.g. `"@method"`.
pub(crate) fn component_id(name: &str) -> Result<HttpMessageComponentId, AuthError> {
    HttpMessageComponentId::try_from(name)
        .map_err(|e| AuthError::malformed(format!("component {name}: {e}")))
}

/// The components this scheme requires, in the order [`crate::sign_request`]
/// puts them.
pub(crate) fn required_components(
    has_body: bool,
) -> Result<Vec<HttpMessageComponentId>, AuthError> {
    let mut names = vec![METHOD, PATH, QUERY];
    if has_body {
        names.push(CONTENT_DIGEST);
    }
    names.into_iter().map(component_id).collect()
}

/// Bytes that can sit in a signature base line without ambiguity: visible
/// ASCII, no spaces or control characters (a newline would forge a line).
fn is_visible_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The value of `@query` (RFC 9421 section 2.2.7): `?` and the query, or
/// just `?` when there is none.
fn query_value(query: Option<&str>) -> String {
    format!("?{}", query.unwrap_or(""))
}

/// The component value of one covered component of this request.
fn component(
    id: &HttpMessageComponentId,
    req: &RequestHead<'_>,
) -> Result<HttpMessageComponent, AuthError> {
    let derived = |value: String| -> Result<HttpMessageComponent, AuthError> {
        if !id.params.0.is_empty() {
            return Err(AuthError::components(format!(
                "{id} has parameters; cover \"@method\", \"@path\" and \"@query\" without parameters"
            )));
        }
        Ok(HttpMessageComponent {
            id: id.clone(),
            value: value.as_str().into(),
        })
    };
    match &id.name {
        // The method is case-sensitive (RFC 9421 section 2.2.1): taken as
        // sent, never upper-cased.
        HttpMessageComponentName::Derived(DerivedComponentName::Method) => {
            derived(req.method.as_str().to_string())
        }
        HttpMessageComponentName::Derived(DerivedComponentName::Path) => {
            if !req.path.starts_with('/') || !is_visible_ascii(req.path) {
                return Err(AuthError::malformed(
                    "the path must be absolute and percent-encoded (visible ASCII only)",
                ));
            }
            derived(req.path.to_string())
        }
        HttpMessageComponentName::Derived(DerivedComponentName::Query) => {
            if !req.query.is_none_or(is_visible_ascii) {
                return Err(AuthError::malformed(
                    "the query must be percent-encoded (visible ASCII only)",
                ));
            }
            derived(query_value(req.query))
        }
        HttpMessageComponentName::Derived(other) => Err(AuthError::components(format!(
            "the derived component \"{other}\" is not supported; cover only \"@method\", \
             \"@path\", \"@query\" and header fields"
        ))),
        HttpMessageComponentName::HttpField(name) => {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(AuthError::malformed(format!(
                    "covered header names must be lower case (RFC 9421 section 2.1): \"{name}\""
                )));
            }
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AuthError::malformed(format!("\"{name}\" is not a header field name"))
            })?;
            let values = req
                .headers
                .get_all(&header)
                .iter()
                .map(|value| {
                    value.to_str().map(|v| v.trim().to_string()).map_err(|_| {
                        AuthError::malformed(format!(
                            "the covered header {name} is not visible ASCII"
                        ))
                    })
                })
                .collect::<Result<Vec<String>, AuthError>>()?;
            if values.is_empty() {
                return Err(AuthError::components(format!(
                    "the signature covers the header {name}, which the request does not carry"
                )));
            }
            HttpMessageComponent::try_from((id, values.as_slice()))
                .map_err(|e| AuthError::components(format!("covered header {name}: {e}")))
        }
    }
}

/// The signature base (RFC 9421 section 2.5) of `req` for `params`.
pub(crate) fn signature_base(
    req: &RequestHead<'_>,
    params: &HttpSignatureParams,
) -> Result<String, AuthError> {
    let components = params
        .covered_components
        .iter()
        .map(|id| component(id, req))
        .collect::<Result<Vec<_>, _>>()?;
    let base = HttpSignatureBase::try_new(&components, params)
        .map_err(|e| AuthError::malformed(format!("signature base: {e}")))?;
    Ok(base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_component_follows_rfc9421_2_2_7() {
        assert_eq!(query_value(None), "?");
        assert_eq!(query_value(Some("")), "?");
        assert_eq!(query_value(Some("a=1&b=2")), "?a=1&b=2");
    }

    fn head<'a>(
        method: &'a Method,
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestHead<'a> {
        RequestHead {
            method,
            path,
            query,
            headers,
            has_body: false,
        }
    }

    #[test]
    fn builds_lines_in_covered_order() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", "one".parse().unwrap());
        headers.append("x-a", " two ".parse().unwrap());
        let method = Method::GET;
        let req = head(&method, "/v1/x%20y", Some("q=1"), &headers);
        let params = HttpSignatureParams::try_from(
            r#"("x-a" "@query" "@path" "@method");created=1;keyid="k""#,
        )
        .unwrap();
        assert_eq!(
            signature_base(&req, &params).unwrap(),
            "\"x-a\": one, two\n\"@query\": ?q=1\n\"@path\": /v1/x%20y\n\"@method\": GET\n\
             \"@signature-params\": (\"x-a\" \"@query\" \"@path\" \"@method\");created=1;keyid=\"k\""
        );
    }

    #[test]
    fn extension_methods_keep_their_case() {
        let headers = HeaderMap::new();
        let method = Method::from_bytes(b"get").unwrap();
        let req = head(&method, "/", None, &headers);
        let params = HttpSignatureParams::try_from(r#"("@method")"#).unwrap();
        assert_eq!(
            signature_base(&req, &params).unwrap(),
            "\"@method\": get\n\"@signature-params\": (\"@method\")"
        );
    }

    #[test]
    fn refuses_what_could_forge_a_line_or_is_unsupported() {
        let headers = HeaderMap::new();
        let method = Method::GET;
        let cases = [
            (
                head(&method, "/a\n\"@query\": ?", None, &headers),
                r#"("@path")"#,
                "auth_malformed",
            ),
            (
                head(&method, "relative", None, &headers),
                r#"("@path")"#,
                "auth_malformed",
            ),
            (
                head(&method, "/", Some("a b"), &headers),
                r#"("@query")"#,
                "auth_malformed",
            ),
            (
                head(&method, "/", None, &headers),
                r#"("@authority")"#,
                "auth_components",
            ),
            (
                head(&method, "/", None, &headers),
                r#"("@method";req)"#,
                "auth_components",
            ),
            (
                head(&method, "/", None, &headers),
                r#"("x-absent")"#,
                "auth_components",
            ),
            (
                head(&method, "/", None, &headers),
                r#"("X-Upper")"#,
                "auth_malformed",
            ),
        ];
        for (req, input, code) in cases {
            let params = HttpSignatureParams::try_from(input).unwrap();
            let error = signature_base(&req, &params).unwrap_err();
            assert_eq!(error.code(), code, "{input}: {error}");
        }
    }
}
