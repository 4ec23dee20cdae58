//! One registry token for one scope, blocking and bounded: the challenge flow a registry client
//! runs (`GET /v2/`, read the `WWW-Authenticate` challenge, ask the realm), for callers that
//! hand the result to a client that cannot run the flow itself (Bazel's credential-helper
//! protocol asks for literal headers per URI).
//!
//! ```no_run
//! use std::time::Duration;
//! use latchkey_resolver::scoped_token::{ScopedAuth, ScopedTokenRequest, scoped_token};
//! use latchkey_resolver::{ClientOptions, Credential};
//! use latchkey_protocol::server_url::RegistryKey;
//!
//! let registry = RegistryKey::parse_host("ghcr.io").unwrap();
//! let credential = Credential::UsernamePassword { username: "me".into(), password: "pat".to_owned().into() };
//! let request = ScopedTokenRequest {
//!     registry: &registry,
//!     scope: "repository:org/app:pull",
//!     credential: &credential,
//!     plain_http: ClientOptions::default().plain_http,
//!     timeout: Duration::from_secs(10),
//! };
//! match scoped_token(&request).unwrap() {
//!     ScopedAuth::Bearer { token, lifetime } => println!("a token for {}s", lifetime.as_secs()),
//!     ScopedAuth::Basic => println!("send Basic"),
//!     ScopedAuth::NotNeeded => println!("the registry asks for nothing"),
//! }
//! ```

use std::time::Duration;

use latchkey_protocol::secret::Secret;
use latchkey_protocol::server_url::RegistryKey;

use crate::Credential;
use crate::client::{Challenge, PlainHttp, parse_challenge};

/// What a request in the scope should carry.
#[derive(Debug)]
pub enum ScopedAuth {
    /// `/v2/` answered without a challenge: send nothing.
    NotNeeded,
    /// The registry asks for Basic: send the user name and password.
    Basic,
    /// A registry token for the scope, valid for `lifetime` from now.
    Bearer { token: Secret<String>, lifetime: Duration },
}

/// One scope of one registry, with the credential to present at its token service.
pub struct ScopedTokenRequest<'a> {
    pub registry: &'a RegistryKey,
    /// `repository:<name>:pull`.
    pub scope: &'a str,
    /// A user name and password, an identity token or a bearer JWT (anonymous asks the realm
    /// without credentials). A static bearer is not exchanged: send it as it is.
    pub credential: &'a Credential,
    /// Which registries get plain HTTP (and may name a plain-HTTP realm).
    pub plain_http: PlainHttp,
    /// Bounds each of the (at most two) requests.
    pub timeout: Duration,
}

fn plain_allowed(plain_http: PlainHttp, host: &str) -> bool {
    match plain_http {
        PlainHttp::Always => true,
        PlainHttp::Never => false,
        PlainHttp::Loopback => latchkey_http::is_loopback_host(host),
    }
}

/// Run the challenge flow for `request.scope`: at most one `GET /v2/` and one token request.
pub fn scoped_token(request: &ScopedTokenRequest) -> Result<ScopedAuth, String> {
    let registry = request.registry;
    if matches!(request.credential, Credential::StaticBearer(_)) {
        return Err(format!("{registry}: a static bearer is sent as it is, not exchanged for a scoped token"));
    }
    let host = registry.api_host();
    let scheme = if plain_allowed(request.plain_http, host) { "http" } else { "https" };
    let ping_url = format!("{scheme}://{host}/v2/");
    let mut client = latchkey_http::Client::new(&format!("registry {registry}"), request.timeout)?;
    for secret in secrets(request.credential) {
        client = client.redacting(&secret);
    }
    if let Credential::UsernamePassword { username, password } = request.credential {
        client = client.redacting_basic(username, password);
    }
    let ping = client.send(client.get(&ping_url), &ping_url)?;
    if (200..300).contains(&ping.status) {
        return Ok(ScopedAuth::NotNeeded);
    }
    if ping.status != 401 {
        return Err(format!(
            "the registry {registry} answered {} to GET {ping_url}: {}",
            ping.status,
            ping.server_message()
        ));
    }
    let values: Vec<&str> =
        ping.headers.get_all(reqwest::header::WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok()).collect();
    let (realm, service) = match parse_challenge(&values) {
        Some(Challenge::Basic) => {
            return match request.credential {
                Credential::UsernamePassword { .. } => Ok(ScopedAuth::Basic),
                other => Err(format!(
                    "the registry {registry} asks for Basic authentication, which a {} cannot answer",
                    other.kind()
                )),
            };
        }
        Some(Challenge::Bearer { realm, service }) => (realm, service),
        None => {
            return Err(format!(
                "the registry {registry} answered 401 to GET {ping_url} with no challenge latchkey can answer"
            ));
        }
    };
    let realm_url = url::Url::parse(&realm)
        .ok()
        .filter(|u| u.scheme() == "https" || (u.scheme() == "http" && plain_allowed(request.plain_http, u.host_str().unwrap_or(""))))
        .ok_or_else(|| {
            format!("the registry {registry} names a token realm that is not https (or plain http on a loopback host): {realm:?}")
        })?;
    let endpoint = format!("{}{}", realm_url.origin().ascii_serialization(), realm_url.path());
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = service.as_deref() {
        params.push(("service", service));
    }
    params.push(("scope", request.scope));
    let authorization = |value: String| {
        let mut v = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| "a credential holds a character no HTTP header can carry".to_owned())?;
        v.set_sensitive(true);
        Ok::<_, String>(v)
    };
    let mut token_client = latchkey_http::Client::new(&format!("token service of {registry}"), request.timeout)?;
    for secret in secrets(request.credential) {
        token_client = token_client.redacting(&secret);
    }
    if let Credential::UsernamePassword { username, password } = request.credential {
        token_client = token_client.redacting_basic(username, password);
    }
    let builder = match request.credential {
        Credential::IdentityToken { token, .. } => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.expose().as_str()),
                ("client_id", "latchkey"),
            ];
            form.extend(params.iter().copied());
            let body = serde_urlencoded::to_string(&form).expect("strings encode");
            token_client
                .post(realm_url.as_str())
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
        }
        Credential::UsernamePassword { username, password } => {
            let mut url = realm_url.clone();
            url.query_pairs_mut().extend_pairs(params.iter()).append_pair("account", username);
            let basic = basic_header(username, password.expose());
            token_client
                .get(url.as_str())
                .header(reqwest::header::AUTHORIZATION, authorization(basic.expose().clone())?)
        }
        Credential::BearerJwt(jwt) => {
            let mut url = realm_url.clone();
            url.query_pairs_mut().extend_pairs(params.iter());
            token_client
                .get(url.as_str())
                .header(reqwest::header::AUTHORIZATION, authorization(format!("Bearer {}", jwt.expose()))?)
        }
        Credential::Anonymous | Credential::StaticBearer(_) => {
            let mut url = realm_url.clone();
            url.query_pairs_mut().extend_pairs(params.iter());
            token_client.get(url.as_str())
        }
    };
    let answer = token_client.send(builder, &endpoint)?;
    if !(200..300).contains(&answer.status) {
        return Err(format!(
            "the token service of {registry} at {endpoint} refused the {} for {}: {} {}",
            request.credential.kind(),
            request.scope,
            answer.status,
            answer.server_message()
        ));
    }
    let (token, lifetime) = crate::client::parse_token_answer(&answer.body, &endpoint)?;
    Ok(ScopedAuth::Bearer { token, lifetime })
}

/// What a request built from `credential` carries, so that no error message quotes it.
fn secrets(credential: &Credential) -> Vec<Secret<String>> {
    match credential {
        Credential::StaticBearer(t) | Credential::BearerJwt(t) | Credential::IdentityToken { token: t, .. } => {
            vec![t.clone()]
        }
        Credential::UsernamePassword { username, password } => {
            vec![password.clone(), basic_header(username, password.expose())]
        }
        Credential::Anonymous => Vec::new(),
    }
}

/// `Basic base64(user:password)`.
pub fn basic_header(username: &str, password: &str) -> Secret<String> {
    let raw = Secret::new(format!("{username}:{password}"));
    Secret::new(format!("Basic {}", data_encoding::BASE64.encode(raw.expose().as_bytes())))
}
